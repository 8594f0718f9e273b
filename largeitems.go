package lddynamodb

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
)

// The row format of large items: items whose plain row would be over MaxItemBytes. Their JSON is
// gzip-compressed into a Binary attribute of the main row when that fits, and otherwise split
// across part rows under a partition key of their own ("features:parts"), which no other SDK
// reads. The main row keeps the item's key and version in `features`/`segments`, with an `item`
// that every other SDK reads as a deleted item of that version. Part keys name the item, its
// version and the write that stored them, so parts of two versions or of two writes never mix.
// docs/table.md shows each row.

// The attributes of a large item's main row and of its parts. None of them is read by other SDKs.
const (
	attrEncoding = "encoding" // S: how the data is encoded; its presence marks a large row
	attrSize     = "size"     // N: the length of the item's JSON
	attrDigest   = "digest"   // S: hex SHA-256 of the item's JSON
	attrParts    = "parts"    // N: the number of parts; 0 when the data is inline
	attrPartsID  = "partsId"  // S: the write that stored the parts (see newPartsID)
	attrData     = "data"     // B: the encoded data (main row when inline, or one part)

	encodingGzip = "gzip"
	partsSuffix  = ":parts"
)

const (
	// MaxLargeItemBytes is the largest item JSON, in bytes, that the store keeps as a large item
	// (32 MiB). A larger item is not stored: Init skips it (and removes its older rows), Upsert
	// returns an error naming its size and this limit.
	MaxLargeItemBytes = 32 << 20

	// partPositionDigits is the width of a part's position in its key, so that parts sort in
	// order; it bounds the number of parts far above what MaxLargeItemBytes needs (about 85).
	partPositionDigits = 4
	maxParts           = 9999
	// Item keys longer than maxLiteralRefBytes are named in part keys by their first refCutBytes
	// and their digest, so that a part key stays under MaxSortKeyBytes; the named form is always
	// longer than maxLiteralRefBytes, so it never equals a key written out whole.
	maxLiteralRefBytes = 960
	refCutBytes        = 896
)

// PartsNamespace is the partition key under which the store keeps the parts of the large items
// of one kind: "features:parts", or "PREFIX:features:parts". No other SDK reads it.
func PartsNamespace(prefix string, kind ldstoretypes.DataKind) string {
	return Namespace(prefix, kind) + partsSuffix
}

// partsNamespaceOf is the parts namespace that belongs to a kind's namespace.
func partsNamespaceOf(namespace string) string { return namespace + partsSuffix }

// partItemRef names an item inside part keys: its key, or for a key too long to fit in a sort key
// with the rest, its beginning and its digest.
func partItemRef(key string) string {
	if len(key) <= maxLiteralRefBytes {
		return key
	}
	cut := refCutBytes
	for cut > 0 && !utf8.RuneStart(key[cut]) {
		cut--
	}
	sum := sha256.Sum256([]byte(key))
	return key[:cut] + "~sha256:" + hex.EncodeToString(sum[:])
}

// partKeyPrefix is what the sort keys of the parts of one write of an item begin with:
// "KEY/VERSION/PARTSID/".
func partKeyPrefix(key string, version int, partsID string) string {
	return partItemRef(key) + "/" + strconv.Itoa(version) + "/" + partsID + "/"
}

// partKey is the sort key of the part at position pos (from 0): the prefix and the position,
// zero-padded so that parts sort in order.
func partKey(prefix string, pos int) string {
	return fmt.Sprintf("%s%0*d", prefix, partPositionDigits, pos)
}

// parsePartKey splits a part's sort key into the prefix that its write's parts share and its
// position. Keys are read from the right, since an item key may hold "/".
func parsePartKey(sortKey string) (prefix string, pos int, ok bool) {
	i := strings.LastIndexByte(sortKey, '/')
	if i < 0 || len(sortKey)-i-1 != partPositionDigits {
		return "", 0, false
	}
	pos, err := strconv.Atoi(sortKey[i+1:])
	if err != nil || pos < 0 {
		return "", 0, false
	}
	return sortKey[:i+1], pos, true
}

// partsIDTime is when the write named by a parts ID started, read from the ID.
func partsIDTime(prefix string) (time.Time, bool) {
	rest := strings.TrimSuffix(prefix, "/")
	id := rest[strings.LastIndexByte(rest, '/')+1:]
	if len(id) < 12 {
		return time.Time{}, false
	}
	ms, err := strconv.ParseInt(id[:12], 16, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(ms), true
}

// newPartsID names one write of a large item's parts: 12 hex digits of the time in
// milliseconds, so that Init can tell the parts of a write still in progress from those that a
// crash left behind, and 8 random ones, so that two writers of the same version never share
// parts.
func newPartsID(now time.Time) string {
	var random [4]byte
	_, _ = rand.Read(random[:]) // never fails (crypto/rand)
	return fmt.Sprintf("%012x%s", now.UnixMilli(), hex.EncodeToString(random[:]))
}

// itemRows are the rows that store one item: a plain row alone, or a large item's main row and
// its parts (none when the data is inline).
type itemRows struct {
	main  map[string]types.AttributeValue
	parts []map[string]types.AttributeValue
	// digest is the SHA-256 of the item's JSON (of its tombstone, for a deleted item).
	digest [sha256.Size]byte
}

// encodeItem returns the rows that store an item in namespace, or why DynamoDB cannot hold it.
// An item whose plain row fits is stored plain, exactly as every other SDK stores it. A larger
// one is stored large if large is set, with its parts (if any) named by partsID.
func encodeItem(namespace, key string, item ldstoretypes.SerializedItemDescriptor, large bool, partsID string) (itemRows, string) {
	text := itemText(key, item)
	rows := itemRows{main: encodeRow(namespace, key, item), digest: sha256.Sum256(text)}
	problem := rowProblem(namespace, key, rows.main)
	if problem == "" || !large || keyProblem(namespace, key) != "" {
		return rows, problem
	}
	if len(text) > MaxLargeItemBytes {
		return rows, fmt.Sprintf("the item is %d bytes of JSON, over the large item limit of %d", len(text), MaxLargeItemBytes)
	}
	partsNamespace := partsNamespaceOf(namespace)
	if len(partsNamespace) > MaxPartitionKeyBytes {
		return rows, fmt.Sprintf("the parts namespace %q is %d bytes, over DynamoDB's partition key limit of %d",
			partsNamespace, len(partsNamespace), MaxPartitionKeyBytes)
	}
	data := gzipData(text)
	main := encodeRow(namespace, key, ldstoretypes.SerializedItemDescriptor{Version: item.Version, Deleted: true})
	main[attrEncoding] = &types.AttributeValueMemberS{Value: encodingGzip}
	main[attrSize] = &types.AttributeValueMemberN{Value: strconv.Itoa(len(text))}
	main[attrDigest] = &types.AttributeValueMemberS{Value: hex.EncodeToString(rows.digest[:])}
	main[attrParts] = &types.AttributeValueMemberN{Value: "0"}
	main[attrData] = &types.AttributeValueMemberB{Value: data}
	rows.main = main
	if RowSize(main) <= MaxItemBytes {
		return rows, ""
	}
	delete(main, attrData)
	prefix := partKeyPrefix(key, item.Version, partsID)
	capacity := partCapacity(partsNamespace, prefix)
	count := (len(data) + capacity - 1) / capacity
	if count > maxParts {
		return rows, fmt.Sprintf("the item needs %d parts, over the limit of %d", count, maxParts)
	}
	main[attrParts] = &types.AttributeValueMemberN{Value: strconv.Itoa(count)}
	main[attrPartsID] = &types.AttributeValueMemberS{Value: partsID}
	rows.parts = make([]map[string]types.AttributeValue, count)
	for pos := range rows.parts {
		chunk := data[pos*capacity : min((pos+1)*capacity, len(data))]
		part := rowKey(partsNamespace, partKey(prefix, pos))
		part[attrData] = &types.AttributeValueMemberB{Value: chunk}
		rows.parts[pos] = part
	}
	return rows, ""
}

// partCapacity is how many bytes of data one part row holds with keys of these lengths, so that
// the row is exactly MaxItemBytes when full.
func partCapacity(partsNamespace, prefix string) int {
	overhead := len(AttrNamespace) + len(partsNamespace) + len(AttrKey) + len(prefix) + partPositionDigits + len(attrData)
	return MaxItemBytes - overhead
}

// gzipData compresses an item's JSON. gzip at its default level shrinks flag and segment JSON
// five to ten times; data that does not compress grows by a few bytes in 64 KB.
func gzipData(text []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(text)/4 + 64)
	w := gzip.NewWriter(&buf)
	_, _ = w.Write(text) // writes to a bytes.Buffer do not fail
	_ = w.Close()
	return buf.Bytes()
}

// largeRow is what a large item's main row says about its data.
type largeRow struct {
	version int
	size    int
	digest  [sha256.Size]byte
	data    []byte // the data, when inline
	parts   int
	// partsPrefix is what the keys of its parts begin with ("" when inline).
	partsPrefix string
}

// isLargeRow says whether a row of a flag or segment namespace is a large item's main row.
func isLargeRow(row map[string]types.AttributeValue) bool {
	_, ok := row[attrEncoding]
	return ok
}

// parseLargeRow reads a large item's main row, or says what is wrong with it.
func parseLargeRow(key string, row map[string]types.AttributeValue) (*largeRow, string) {
	encoding, _ := stringAttr(row, attrEncoding)
	if encoding != encodingGzip {
		return nil, fmt.Sprintf("large item encoding %q is not one this version reads (%q)", encoding, encodingGzip)
	}
	version, err := versionAttr(row)
	if err != nil {
		return nil, err.Error()
	}
	l := &largeRow{version: version}
	size, okSize := intAttr(row, attrSize)
	parts, okParts := intAttr(row, attrParts)
	digest, _ := stringAttr(row, attrDigest)
	sum, err := hex.DecodeString(digest)
	if !okSize || !okParts || size < 0 || parts < 0 || parts > maxParts || err != nil || len(sum) != sha256.Size {
		return nil, fmt.Sprintf("large item attributes %q, %q or %q are missing or malformed", attrSize, attrParts, attrDigest)
	}
	l.size, l.parts = size, parts
	copy(l.digest[:], sum)
	if parts == 0 {
		data, ok := row[attrData].(*types.AttributeValueMemberB)
		if !ok {
			return nil, fmt.Sprintf("large item with no parts has no %q", attrData)
		}
		l.data = data.Value
		return l, ""
	}
	id, ok := stringAttr(row, attrPartsID)
	if !ok || id == "" || strings.Contains(id, "/") {
		return nil, fmt.Sprintf("large item attribute %q is missing or malformed", attrPartsID)
	}
	l.partsPrefix = partKeyPrefix(key, version, id)
	return l, ""
}

// largeRowDigest reads the digest of a large item's main row, where its parts are and how many,
// from the attributes that Init projects (not its data or size).
func largeRowDigest(key string, row map[string]types.AttributeValue) (digest [sha256.Size]byte, partsPrefix string, parts int, ok bool) {
	hexDigest, _ := stringAttr(row, attrDigest)
	sum, err := hex.DecodeString(hexDigest)
	version, verr := versionAttr(row)
	parts, okParts := intAttr(row, attrParts)
	if err != nil || len(sum) != sha256.Size || verr != nil || !okParts || parts < 0 {
		return digest, "", 0, false
	}
	copy(digest[:], sum)
	if parts > 0 {
		id, _ := stringAttr(row, attrPartsID)
		partsPrefix = partKeyPrefix(key, version, id)
	}
	return digest, partsPrefix, parts, true
}

func intAttr(row map[string]types.AttributeValue, name string) (int, bool) {
	v, ok := row[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(v.Value)
	return n, err == nil
}

// partsOf picks, from part rows of any items, the data of this row's parts in order. It returns
// false if any is missing: a writer switched versions while they were read, or the set is broken.
func (l *largeRow) partsOf(parts []map[string]types.AttributeValue) ([][]byte, bool) {
	chunks := make([][]byte, l.parts)
	found := 0
	for _, part := range parts {
		sortKey, _ := stringAttr(part, AttrKey)
		prefix, pos, ok := parsePartKey(sortKey)
		if !ok || prefix != l.partsPrefix || pos >= l.parts || chunks[pos] != nil {
			continue
		}
		data, ok := part[attrData].(*types.AttributeValueMemberB)
		if !ok {
			continue
		}
		chunks[pos] = data.Value
		found++
	}
	return chunks, found == l.parts
}

// decode joins the data and decompresses it into the item's JSON, checking its size and digest.
func (l *largeRow) decode(chunks [][]byte) ([]byte, string) {
	data := l.data
	if l.parts > 0 {
		data = bytes.Join(chunks, nil)
	}
	r, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Sprintf("large item data is not gzip: %v", err)
	}
	// The preallocation is bounded: a row's size attribute is not trusted before the data agrees.
	buf := bytes.NewBuffer(make([]byte, 0, min(l.size, MaxLargeItemBytes)))
	if _, err := io.Copy(buf, io.LimitReader(r, int64(l.size)+1)); err != nil {
		return nil, fmt.Sprintf("large item data cannot be decompressed: %v", err)
	}
	text := buf.Bytes()
	if len(text) != l.size {
		return nil, fmt.Sprintf("large item data is %d bytes of JSON, its row says %d", len(text), l.size)
	}
	if sha256.Sum256(text) != l.digest {
		return nil, "large item data does not match its digest"
	}
	return text, ""
}

// DecodeRowWithParts is DecodeRow for a large item's main row, with part rows read from its
// parts namespace (PartsNamespace): it picks this row's parts among them (others are ignored),
// joins and decompresses them and checks their size and digest. Parts that are missing, or data
// that does not match, give a *RowError naming the item. Any other row decodes as with DecodeRow.
// It makes no DynamoDB call.
func DecodeRowWithParts(row map[string]types.AttributeValue, parts []map[string]types.AttributeValue) (key string, item ldstoretypes.SerializedItemDescriptor, err error) {
	if !isLargeRow(row) {
		return DecodeRow(row)
	}
	namespace, _ := stringAttr(row, AttrNamespace)
	key, ok := stringAttr(row, AttrKey)
	if !ok {
		return key, ldstoretypes.SerializedItemDescriptor{}, &RowError{Namespace: namespace, Reason: fmt.Sprintf("%q is missing or not a string", AttrKey)}
	}
	l, problem := parseLargeRow(key, row)
	var chunks [][]byte
	if problem == "" && l.parts > 0 {
		var complete bool
		if chunks, complete = l.partsOf(parts); !complete {
			problem = fmt.Sprintf("large item parts missing: %d parts with keys %q... were expected in %q",
				l.parts, l.partsPrefix, partsNamespaceOf(namespace))
		}
	}
	var text []byte
	if problem == "" {
		text, problem = l.decode(chunks)
	}
	if problem != "" {
		return key, ldstoretypes.SerializedItemDescriptor{}, &RowError{Namespace: namespace, Key: key, Reason: problem}
	}
	return key, ldstoretypes.SerializedItemDescriptor{Version: l.version, SerializedItem: text}, nil
}

// LargeRowParts says where the parts of a row are: the namespace and the sort key prefix that
// its part rows' keys begin with, and how many there are. For a plain row, or a large item whose
// data is inline, count is 0. Tools use it to read a large item's parts with one Query and to
// find parts that no main row names. It makes no DynamoDB call.
func LargeRowParts(row map[string]types.AttributeValue) (namespace, keyPrefix string, count int) {
	if !isLargeRow(row) {
		return "", "", 0
	}
	ns, _ := stringAttr(row, AttrNamespace)
	key, _ := stringAttr(row, AttrKey)
	l, problem := parseLargeRow(key, row)
	if problem != "" || l.parts == 0 {
		return "", "", 0
	}
	return partsNamespaceOf(ns), l.partsPrefix, l.parts
}
