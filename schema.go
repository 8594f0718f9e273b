package lddynamodb

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/launchdarkly/go-jsonstream/v3/jreader"
	"github.com/launchdarkly/go-sdk-common/v3/ldvalue"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
)

// The row layout below is shared with the Relay Proxy and every other LaunchDarkly SDK's
// DynamoDB store; changing any name breaks interoperability.
const (
	// AttrNamespace is the name of the table's partition key (S).
	AttrNamespace = "namespace"
	// AttrKey is the name of the table's sort key (S).
	AttrKey     = "key"
	attrVersion = "version"
	attrItem    = "item"

	initedKey       = "$inited"
	prefixSeparator = ":"

	// MaxItemBytes is DynamoDB's limit on the size of one item (row), 400 KB, as RowSize counts
	// it. Larger items cannot be stored: Init skips them (and removes their older row), Upsert
	// returns an error.
	MaxItemBytes = 400 * 1024
	// MaxPartitionKeyBytes is DynamoDB's limit on a partition key value (the namespace, with its
	// prefix), in UTF-8 bytes; MaxSortKeyBytes the limit on a sort key value (the flag or segment
	// key). Both must also be at least one byte. Items with other keys are handled like oversize
	// items.
	MaxPartitionKeyBytes = 2048
	MaxSortKeyBytes      = 1024

	// maxBatchWriteItems is DynamoDB's limit on the requests in one BatchWriteItem call.
	maxBatchWriteItems = 25
)

// The big segment rows, as the Relay Proxy writes them and every SDK's DynamoDB store reads them.
const (
	bigSegmentsMetadataKey  = "big_segments_metadata"
	bigSegmentsUserKey      = "big_segments_user"
	bigSegmentsSyncTimeAttr = "synchronizedOn"
	bigSegmentsIncludedAttr = "included"
	bigSegmentsExcludedAttr = "excluded"
)

// jsonNull is how the Java and .NET stores write a deleted item.
var jsonNull = []byte("null")

// prefixed puts the optional prefix before a namespace or key, as every LaunchDarkly store does.
func prefixed(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + prefixSeparator + name
}

// Namespace is the partition key under which the store keeps the items of one data kind: the
// kind's name, after "PREFIX:" when there is a prefix.
func Namespace(prefix string, kind ldstoretypes.DataKind) string {
	return prefixed(prefix, kind.GetName())
}

// InitedMarker is both the partition key and the sort key of the row that says the store with
// this prefix was initialized: "$inited", or "PREFIX:$inited".
func InitedMarker(prefix string) string {
	return prefixed(prefix, initedKey)
}

// initedRowKey is the primary key of the marker row.
func initedRowKey(prefix string) map[string]types.AttributeValue {
	marker := InitedMarker(prefix)
	return rowKey(marker, marker)
}

func rowKey(namespace, key string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		AttrNamespace: &types.AttributeValueMemberS{Value: namespace},
		AttrKey:       &types.AttributeValueMemberS{Value: key},
	}
}

// encodeRow is the row that stores one item. A deleted item without serialized form gets the
// tombstone JSON that the other stores also write, so that every row has an `item`.
func encodeRow(namespace, key string, item ldstoretypes.SerializedItemDescriptor) map[string]types.AttributeValue {
	row := rowKey(namespace, key)
	row[attrVersion] = &types.AttributeValueMemberN{Value: strconv.Itoa(item.Version)}
	row[attrItem] = &types.AttributeValueMemberS{Value: string(itemText(key, item))}
	return row
}

// itemText is what a row's `item` holds for an item.
func itemText(key string, item ldstoretypes.SerializedItemDescriptor) []byte {
	if len(item.SerializedItem) == 0 {
		return tombstoneJSON(key, item.Version)
	}
	return item.SerializedItem
}

func tombstoneJSON(key string, version int) []byte {
	return []byte(ldvalue.ObjectBuild().
		SetString("key", key).
		SetInt("version", version).
		SetBool("deleted", true).
		Build().JSONString())
}

// RowSize is the size of a row as DynamoDB counts it against MaxItemBytes, and as the store
// counts it in Metrics.BytesWritten: the UTF-8 lengths of the attribute names plus the sizes of
// their values. A string is its UTF-8 bytes; a number is packed two digits to a byte (see
// numberSize). For the number encodings that DynamoDB documents only approximately, it counts
// the larger size, so that it never under-counts.
func RowSize(row map[string]types.AttributeValue) int {
	size := 0
	for name, value := range row {
		size += len(name)
		switch v := value.(type) {
		case *types.AttributeValueMemberS:
			size += len(v.Value)
		case *types.AttributeValueMemberN:
			size += numberSize(v.Value)
		case *types.AttributeValueMemberSS:
			for _, s := range v.Value {
				size += len(s)
			}
		case *types.AttributeValueMemberNS:
			for _, n := range v.Value {
				size += numberSize(n)
			}
		case *types.AttributeValueMemberB:
			size += len(v.Value)
		case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
			size++
		}
	}
	return size
}

// numberSize is the size of a number in DynamoDB: its significant digits packed in base 100,
// in pairs aligned on the decimal point, plus one byte of exponent, plus one more if negative
// (so "1" and "10" are 2 bytes, "123" is 3, "10010" is 4: 1|00|10). Zero is 1 byte. This is also
// dynalite's rule. A string that is not a plain decimal is counted as one byte per character
// plus two, more than any number of that length takes.
func numberSize(n string) int {
	s := n
	negative := strings.HasPrefix(s, "-")
	s = strings.TrimLeft(s, "+-")
	mantissa, exponent := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.Atoi(s[i+1:])
		if err != nil {
			return len(n) + 2
		}
		mantissa, exponent = s[:i], e
	}
	intPart, fracPart, _ := strings.Cut(mantissa, ".")
	digits := intPart + fracPart
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return len(n) + 2
	}
	// pos is the power of ten of the first digit of digits.
	pos := len(intPart) - 1 + exponent
	trimmed := strings.TrimLeft(digits, "0")
	pos -= len(digits) - len(trimmed)
	trimmed = strings.TrimRight(trimmed, "0")
	if trimmed == "" {
		return 1
	}
	// Pairs are aligned so that each starts at an odd power of ten: the first digit starts a
	// pair of its own if its power is even.
	count := len(trimmed)
	if pos%2 == 0 {
		count++
	}
	size := 1 + (count+1)/2
	if negative {
		size++
	}
	return size
}

// keyProblem says why DynamoDB would refuse a row with these keys, or "" if it would not.
func keyProblem(namespace, key string) string {
	switch {
	case key == "":
		return "the key is empty, and DynamoDB refuses an empty sort key"
	case len(key) > MaxSortKeyBytes:
		return fmt.Sprintf("the key is %d bytes, over DynamoDB's sort key limit of %d", len(key), MaxSortKeyBytes)
	case len(namespace) > MaxPartitionKeyBytes:
		return fmt.Sprintf("the namespace %q is %d bytes, over DynamoDB's partition key limit of %d",
			namespace, len(namespace), MaxPartitionKeyBytes)
	}
	return ""
}

// rowProblem says why DynamoDB cannot hold a row, its keys or its size, or "" if it can.
func rowProblem(namespace, key string, row map[string]types.AttributeValue) string {
	if problem := keyProblem(namespace, key); problem != "" {
		return problem
	}
	if size := RowSize(row); size > MaxItemBytes {
		return fmt.Sprintf("the row is %d bytes, over DynamoDB's item limit of %d", size, MaxItemBytes)
	}
	return ""
}

// RowError says that a row of the table could not be decoded. Reads that meet such a row fail
// with it (wrapped), so that a bad row is found rather than hidden.
type RowError struct {
	Namespace string
	Key       string
	Reason    string
}

func (e *RowError) Error() string {
	return fmt.Sprintf("row namespace=%q key=%q cannot be decoded: %s", e.Namespace, e.Key, e.Reason)
}

// DecodeRow reads one row of a flag or segment namespace as the store's Get and GetAll do, so
// that tools can read a table exactly as the store does. It returns the row's key and the item's
// version and serialized JSON, passed on unparsed for the SDK to read (and report, if it
// cannot). Every tombstone shape that a LaunchDarkly store writes (an `item` of JSON null, no
// `item` at all, or a JSON object whose top-level "deleted" is true) decodes as a deleted item of
// the row's version, with no serialized form. A large item's main row (see largeitems.go) whose
// data is inline decodes as its item; one whose data is in parts gives a *RowError saying so:
// read those with DecodeRowWithParts. A row that cannot be decoded gives a *RowError.
func DecodeRow(row map[string]types.AttributeValue) (key string, item ldstoretypes.SerializedItemDescriptor, err error) {
	if isLargeRow(row) {
		return DecodeRowWithParts(row, nil)
	}
	namespace, _ := stringAttr(row, AttrNamespace)
	key, ok := stringAttr(row, AttrKey)
	fail := func(format string, args ...any) (string, ldstoretypes.SerializedItemDescriptor, error) {
		return key, ldstoretypes.SerializedItemDescriptor{}, &RowError{Namespace: namespace, Key: key, Reason: fmt.Sprintf(format, args...)}
	}
	if !ok {
		return fail("%q is missing or not a string", AttrKey)
	}
	version, err := versionAttr(row)
	if err != nil {
		return fail("%v", err)
	}
	deleted := ldstoretypes.SerializedItemDescriptor{Version: version, Deleted: true}
	rawItem, present := row[attrItem]
	if !present {
		return key, deleted, nil
	}
	itemAttr, ok := rawItem.(*types.AttributeValueMemberS)
	if !ok {
		return fail("%q is not a string", attrItem)
	}
	data := []byte(itemAttr.Value)
	if len(data) == 0 || bytes.Equal(bytes.TrimSpace(data), jsonNull) {
		return key, deleted, nil
	}
	if isTombstone(data) {
		return key, deleted, nil
	}
	return key, ldstoretypes.SerializedItemDescriptor{Version: version, SerializedItem: data}, nil
}

// isTombstone says whether the item's top-level "deleted" property is true. Every flag and segment
// that the SDK serializes has a "deleted" property, false unless it is a tombstone, so items are
// first searched for a "deleted" name followed by true: only then is the top level read as a
// stream, skipping the other values without building them, to tell a top-level property from a
// nested one. Items of any size are checked: the tombstone of an item with a long key is long.
func isTombstone(data []byte) bool {
	if !hasDeletedTrue(data) {
		return false
	}
	r := jreader.NewReader(data)
	for obj := r.Object(); obj.Next(); {
		if string(obj.Name()) == "deleted" {
			return r.Bool()
		}
		if r.SkipValue() != nil {
			return false
		}
	}
	return false
}

// hasDeletedTrue says whether data holds `"deleted"`, then a colon and true, with any JSON white
// space between them: the form a "deleted": true property has wherever it is.
func hasDeletedTrue(data []byte) bool {
	const name = `"deleted"`
	for {
		i := bytes.Index(data, []byte(name))
		if i < 0 {
			return false
		}
		data = data[i+len(name):]
		rest := bytes.TrimLeft(data, jsonSpace)
		if len(rest) > 0 && rest[0] == ':' && bytes.HasPrefix(bytes.TrimLeft(rest[1:], jsonSpace), []byte("true")) {
			return true
		}
	}
}

// jsonSpace is the white space that JSON allows between tokens.
const jsonSpace = " \t\r\n"

func stringAttr(row map[string]types.AttributeValue, name string) (string, bool) {
	v, ok := row[name].(*types.AttributeValueMemberS)
	if !ok {
		return "", false
	}
	return v.Value, true
}

// versionAttr reads `version`, which must be a number; other stores have been seen writing it as
// a string, which is reported rather than guessed at.
func versionAttr(row map[string]types.AttributeValue) (int, error) {
	switch v := row[attrVersion].(type) {
	case *types.AttributeValueMemberN:
		n, err := strconv.Atoi(v.Value)
		if err != nil {
			return 0, fmt.Errorf("%q is not an integer: %q", attrVersion, v.Value)
		}
		return n, nil
	case nil:
		return 0, fmt.Errorf("%q is missing", attrVersion)
	default:
		return 0, fmt.Errorf("%q is not a number (type %T)", attrVersion, v)
	}
}
