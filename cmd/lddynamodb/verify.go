package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/launchdarkly/go-sdk-common/v3/ldvalue"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
	"github.com/spf13/cobra"

	"github.com/lddynamodb/lddynamodb"
)

// nearLimitBytes is where verify starts warning that a row is close to DynamoDB's item limit: a
// flag that grows a little more can no longer be stored.
const nearLimitBytes = lddynamodb.MaxItemBytes * 9 / 10

// maxListed bounds the problems and warnings printed, so that a table full of foreign rows does
// not bury the summary.
const maxListed = 100

// Namespaces of the big segment rows (see the shared row layout): verify counts them but leaves
// their contents to the big segment store.
const (
	bigSegmentsMetadataName = "big_segments_metadata"
	bigSegmentsUserName     = "big_segments_user"
)

func (a *app) verifyCommand() *cobra.Command {
	var prefix string
	var noScan bool
	cmd := &cobra.Command{
		Use:   "verify TABLE",
		Short: "Check a table's keys, marker and rows the way the SDKs read them",
		Long: `verify checks that TABLE has the keys the SDKs need and that the initialized marker is
there, counts the flags and segments (and deleted ones) under the prefix, and reads every row
as the SDK would. It lists rows that cannot be decoded or parsed, rows whose JSON disagrees
with their key or version, rows too large for DynamoDB, rows in namespaces that no
LaunchDarkly store writes, and flags that the SDK cannot evaluate (it answers
MALFORMED_FLAG): a variation that does not exist, a rule or fallthrough with neither a
variation nor a rollout, an invalid attribute reference, prerequisites or segments in a
circle. Prerequisites and segments that are referenced but missing are warnings.

Items over DynamoDB's 400 KB item limit are stored in parts (docs/table.md): verify joins
each such item from its parts and checks their count, size and digest, so that a missing,
altered or misplaced part is a problem naming the item. Parts that no item's row names
(left by a crash, or by a write in progress while verify reads) are listed as orphan
parts; they harm no reader, and the next Init removes them.

A prefix with no initialized marker is a problem: an SDK in daemon mode would see an
uninitialized store. If the scan finds rows under other prefixes, verify names them.

Flags and segments, and the parts of large items, are read with Query. To find unknown rows it also scans the whole table
(reading keys only, but a Scan is charged for every row it passes); --no-scan skips that.`,
		Example: `  lddynamodb verify launchdarkly
  lddynamodb verify launchdarkly --prefix production --no-scan`,
		Args: args("TABLE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := a.client(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			v := &verifier{client: client, table: args[0], prefix: prefix, prog: a.progress()}
			err = v.run(cmd.Context(), !noScan)
			v.prog.done()
			if err != nil {
				return err
			}
			v.print(a.stdout)
			if len(v.problems) > 0 {
				return errProblems
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&prefix, "prefix", "", "the prefix the SDK or Relay Proxy was configured with (default: none)")
	cmd.Flags().BoolVar(&noScan, "no-scan", false, "skip the table scan that finds rows in unknown namespaces")
	return cmd
}

type kindCount struct {
	kind    ldstoretypes.DataKind
	items   int
	deleted int
	// large items whose data is in parts, their parts and the parts' bytes
	large     int
	parts     int
	partBytes int
}

// verifier reads one prefix of a table and collects what it finds.
type verifier struct {
	client *dynamodb.Client
	table  string
	prefix string
	prog   *progress

	marker          bool
	counts          []kindCount
	scanned         bool
	scannedRows     int
	bigSegmentMeta  bool
	bigSegmentUsers int
	otherRows       int
	otherPrefixes   map[string]bool
	items           items
	problems        []string
	warnings        []string
	orphans         []string
}

func (v *verifier) run(ctx context.Context, scan bool) error {
	if err := lddynamodb.CheckTable(ctx, v.client, v.table); err != nil {
		return err
	}
	if err := v.readMarker(ctx); err != nil {
		return err
	}
	rows := 0
	v.items = newItems()
	for _, kind := range kinds {
		count := kindCount{kind: kind}
		reader := &kindReader{client: v.client, table: v.table, prefix: v.prefix, kind: kind, prog: v.prog,
			item: func(row map[string]types.AttributeValue, parts *partSet) {
				rows++
				deleted, item, problems, warnings := checkItemRow(kind, row, parts)
				key, _ := stringAttr(row, lddynamodb.AttrKey)
				switch {
				case len(problems) > 0:
				case deleted:
					count.deleted++
					v.items.addDeleted(kind, key)
				default:
					count.items++
					v.items.add(key, item)
				}
				if parts != nil {
					count.large++
					count.parts += len(parts.rows)
					count.partBytes += parts.bytes
				}
				v.problems = append(v.problems, problems...)
				v.warnings = append(v.warnings, warnings...)
			},
			orphan: func(o orphanParts) { v.orphans = append(v.orphans, o.String()) },
		}
		if err := reader.read(ctx); err != nil {
			return err
		}
		v.counts = append(v.counts, count)
	}
	problems, warnings := v.items.check(v.prefix)
	v.problems = append(v.problems, problems...)
	v.warnings = append(v.warnings, warnings...)
	if scan {
		if err := v.scan(ctx); err != nil {
			return err
		}
	}
	v.checkMarker(rows)
	return nil
}

// readMarker reads whether the prefix has its initialized marker (one GetItem).
func (v *verifier) readMarker(ctx context.Context) error {
	marker := lddynamodb.InitedMarker(v.prefix)
	out, err := v.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(v.table),
		Key:            keyOf(marker, marker),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return fmt.Errorf("table %q: get marker %q: %w", v.table, marker, err)
	}
	v.marker = out.Item != nil
	return nil
}

// checkMarker adds a problem when the prefix has no initialized marker, saying whether it has
// rows and where else in the table there are some.
func (v *verifier) checkMarker(rows int) {
	if v.marker {
		return
	}
	marker := lddynamodb.InitedMarker(v.prefix)
	if rows > 0 {
		v.problems = append(v.problems, fmt.Sprintf(
			"no initialized marker %q but %d flag and segment rows: an Init did not finish, or another tool wrote them; SDKs in daemon mode will see an uninitialized store",
			marker, rows))
		return
	}
	v.problems = append(v.problems, v.nothingUnderPrefix("run without --no-scan to look for rows under other prefixes"))
}

// nothingUnderPrefix says that the prefix has neither marker nor rows, and where the scan, if
// one ran, found rows; noScanHint is what to say when none ran.
func (v *verifier) nothingUnderPrefix(noScanHint string) string {
	marker := lddynamodb.InitedMarker(v.prefix)
	msg := fmt.Sprintf("nothing under prefix %q: no initialized marker %q and no flags or segments", v.prefix, marker)
	switch {
	case len(v.otherPrefixes) > 0:
		var guesses []string
		for _, p := range sortedKeys(v.otherPrefixes) {
			if p == "" {
				guesses = append(guesses, "to leave out --prefix")
			} else {
				guesses = append(guesses, "--prefix "+p)
			}
		}
		msg += fmt.Sprintf("; the table has rows under other prefixes: did you mean %s?", strings.Join(guesses, ", or "))
	case v.scanned && v.scannedRows == 0:
		msg += `; the table is empty: write flags with "lddynamodb load", or let an SDK or the Relay Proxy fill it`
	case !v.scanned:
		msg += "; " + noScanHint
	}
	return msg
}

// scan reads the keys of every row in the table, to find rows that none of the stores writes.
func (v *verifier) scan(ctx context.Context) error {
	v.scanned = true
	v.otherPrefixes = map[string]bool{}
	proj := expression.NamesList(expression.Name(lddynamodb.AttrNamespace), expression.Name(lddynamodb.AttrKey))
	expr, err := expression.NewBuilder().WithProjection(proj).Build()
	if err != nil {
		return err
	}
	paginator := dynamodb.NewScanPaginator(v.client, &dynamodb.ScanInput{
		TableName:                aws.String(v.table),
		ProjectionExpression:     expr.Projection(),
		ExpressionAttributeNames: expr.Names(),
	})
	for paginator.HasMorePages() {
		page, err := paginator.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("table %q: scan: %w", v.table, err)
		}
		v.prog.add(len(page.Items))
		v.scannedRows += len(page.Items)
		for _, row := range page.Items {
			namespace, _ := stringAttr(row, lddynamodb.AttrNamespace)
			key, _ := stringAttr(row, lddynamodb.AttrKey)
			switch class, other := classify(v.prefix, namespace, key); class {
			case rowBigSegmentMetadata:
				v.bigSegmentMeta = true
			case rowBigSegmentUser:
				v.bigSegmentUsers++
			case rowOtherPrefix:
				v.otherRows++
				v.otherPrefixes[other] = true
			case rowUnknown:
				v.problems = append(v.problems, fmt.Sprintf(
					"unknown row namespace=%q key=%q: no LaunchDarkly store writes it", namespace, key))
			}
		}
	}
	return nil
}

// checkItemRow reads one row of a flag or segment namespace as the SDK would: the store decodes
// it, with the parts of a large item (their count, size and digest), then the SDK parses its
// JSON. It says whether the row is a deleted item, the item that the SDK parsed, and what is
// wrong with it.
func checkItemRow(kind ldstoretypes.DataKind, row map[string]types.AttributeValue, parts *partSet) (deleted bool, item any, problems, warnings []string) {
	namespace, _ := stringAttr(row, lddynamodb.AttrNamespace)
	rowKey, _ := stringAttr(row, lddynamodb.AttrKey)
	name := fmt.Sprintf("%s %q (namespace %q)", kind, rowKey, namespace)
	if size := lddynamodb.RowSize(row); size > lddynamodb.MaxItemBytes {
		problems = append(problems, fmt.Sprintf("%s: oversize: %d bytes, over DynamoDB's item limit of %d; the store cannot write it",
			name, size, lddynamodb.MaxItemBytes))
	} else if size > nearLimitBytes && !compressedInline(row) {
		warnings = append(warnings, fmt.Sprintf("%s: %d bytes, near DynamoDB's item limit of %d; a little more and it is stored as a large item, which other SDKs read as deleted",
			name, size, lddynamodb.MaxItemBytes))
	}
	for _, k := range []struct {
		what, value string
		limit       int
	}{
		{"sort key", rowKey, lddynamodb.MaxSortKeyBytes},
		{"partition key", namespace, lddynamodb.MaxPartitionKeyBytes},
	} {
		switch {
		case len(k.value) > k.limit:
			problems = append(problems, fmt.Sprintf("%s: its %s is %d bytes, over DynamoDB's limit of %d; the store cannot write it",
				name, k.what, len(k.value), k.limit))
		case len(k.value) == k.limit:
			warnings = append(warnings, fmt.Sprintf("%s: its %s is %d bytes, at DynamoDB's limit of %d; a longer one cannot be stored",
				name, k.what, len(k.value), k.limit))
		}
	}
	key, decoded, err := lddynamodb.DecodeRowWithParts(row, parts.list())
	if err != nil {
		return false, nil, append(problems, fmt.Sprintf("%s: undecodable: %v", name, err)), warnings
	}
	if decoded.Deleted {
		return true, nil, problems, warnings
	}
	parsed, err := kind.Deserialize(decoded.SerializedItem)
	if err != nil {
		return false, nil, append(problems, fmt.Sprintf("%s: undecodable: the SDK cannot parse its JSON: %v", name, err)), warnings
	}
	if parsed.Item == nil {
		return true, nil, problems, warnings
	}
	if jsonKey := ldvalue.Parse(decoded.SerializedItem).GetByKey("key").StringValue(); jsonKey != key {
		problems = append(problems, fmt.Sprintf("%s: its JSON has key %q", name, jsonKey))
	}
	if parsed.Version != decoded.Version {
		problems = append(problems, fmt.Sprintf("%s: the row has version %d but its JSON has version %d", name, decoded.Version, parsed.Version))
	}
	return false, parsed.Item, problems, warnings
}

// compressedInline says whether a row is a large item's main row with its data compressed in
// it, the only flag or segment row with a Binary attribute: near the limit, it grows into parts,
// which is no news to other SDKs, which already read it as deleted.
func compressedInline(row map[string]types.AttributeValue) bool {
	for _, value := range row {
		if _, ok := value.(*types.AttributeValueMemberB); ok {
			return true
		}
	}
	return false
}

type rowClass int

const (
	rowOwnData rowClass = iota
	rowOwnParts
	rowOwnMarker
	rowBigSegmentMetadata
	rowBigSegmentUser
	rowOtherPrefix
	rowUnknown
)

// classify says what a row is to the store with the given prefix, from its keys alone. For a row
// of another prefix it also returns that prefix ("" for none).
func classify(prefix, namespace, key string) (rowClass, string) {
	own := map[string]rowClass{
		lddynamodb.InitedMarker(prefix):             rowOwnMarker,
		withPrefix(prefix, bigSegmentsMetadataName): rowBigSegmentMetadata,
		withPrefix(prefix, bigSegmentsUserName):     rowBigSegmentUser,
	}
	for _, kind := range kinds {
		own[lddynamodb.Namespace(prefix, kind)] = rowOwnData
		own[lddynamodb.PartsNamespace(prefix, kind)] = rowOwnParts
	}
	if class, ok := own[namespace]; ok {
		if (class == rowOwnMarker || class == rowBigSegmentMetadata) && key != namespace {
			return rowUnknown, ""
		}
		return class, ""
	}
	names := []string{"$inited", bigSegmentsMetadataName, bigSegmentsUserName}
	for _, kind := range kinds {
		names = append(names, lddynamodb.Namespace("", kind), lddynamodb.PartsNamespace("", kind))
	}
	for _, name := range names {
		if namespace == name {
			return rowOtherPrefix, ""
		}
		if other, ok := strings.CutSuffix(namespace, ":"+name); ok && other != "" {
			return rowOtherPrefix, other
		}
	}
	return rowUnknown, ""
}

func withPrefix(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + ":" + name
}

func (v *verifier) print(w io.Writer) {
	fmt.Fprintf(w, "table %q: keys ok\n", v.table)
	if v.prefix == "" {
		fmt.Fprintln(w, "prefix: none")
	} else {
		fmt.Fprintf(w, "prefix: %q\n", v.prefix)
	}
	marker := lddynamodb.InitedMarker(v.prefix)
	empty := true
	for _, c := range v.counts {
		empty = empty && c.items == 0 && c.deleted == 0
	}
	switch {
	case v.marker:
		fmt.Fprintf(w, "initialized marker %q: present\n", marker)
	case empty:
		fmt.Fprintf(w, "initialized marker %q: absent (no SDK or Relay Proxy has written this prefix yet)\n", marker)
	default:
		fmt.Fprintf(w, "initialized marker %q: absent\n", marker)
	}
	for _, c := range v.counts {
		fmt.Fprintf(w, "%s: %d live, %d deleted\n", c.kind, c.items, c.deleted)
		if c.large > 0 {
			fmt.Fprintf(w, "%s: %d in parts (%d part rows, %d bytes)\n", c.kind, c.large, c.parts, c.partBytes)
		}
	}
	if v.scanned {
		fmt.Fprintf(w, "scanned %d rows\n", v.scannedRows)
		if v.bigSegmentMeta || v.bigSegmentUsers > 0 {
			fmt.Fprintf(w, "big segments: metadata row %s, %d membership rows\n", presence(v.bigSegmentMeta), v.bigSegmentUsers)
		}
		if v.otherRows > 0 {
			var prefixes []string
			for _, p := range sortedKeys(v.otherPrefixes) {
				prefixes = append(prefixes, fmt.Sprintf("%q", p))
			}
			fmt.Fprintf(w, "rows of other prefixes: %d (prefixes %s)\n", v.otherRows, strings.Join(prefixes, ", "))
		}
	}
	printList(w, "warnings", v.warnings)
	printList(w, "orphan parts (no reader uses them; the next Init removes them)", v.orphans)
	printList(w, "problems", v.problems)
	if len(v.problems) == 0 {
		fmt.Fprintln(w, "ok")
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func presence(present bool) string {
	if present {
		return "present"
	}
	return "absent"
}

func printList(w io.Writer, title string, lines []string) {
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(w, "%s (%d):\n", title, len(lines))
	for i, line := range lines {
		if i == maxListed {
			fmt.Fprintf(w, "  ... and %d more\n", len(lines)-maxListed)
			break
		}
		fmt.Fprintf(w, "  %s\n", line)
	}
}

func keyOf(namespace, key string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		lddynamodb.AttrNamespace: &types.AttributeValueMemberS{Value: namespace},
		lddynamodb.AttrKey:       &types.AttributeValueMemberS{Value: key},
	}
}

func stringAttr(row map[string]types.AttributeValue, name string) (string, bool) {
	v, ok := row[name].(*types.AttributeValueMemberS)
	if !ok {
		return "", false
	}
	return v.Value, true
}
