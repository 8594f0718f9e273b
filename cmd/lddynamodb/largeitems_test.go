package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
	"github.com/launchdarkly/go-sdk-common/v3/ldvalue"
	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldbuilders"
	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldmodel"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoreimpl"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lddynamodb/lddynamodb"
	"github.com/lddynamodb/lddynamodb/internal/testenv"
	"github.com/lddynamodb/lddynamodb/internal/testenv/av"
)

// incompressibleFlag is a flag whose JSON is about size bytes of random base64, which gzip
// shrinks by a quarter at most: over 400 KB, the store keeps it in parts.
func incompressibleFlag(key string, version, size int) ldmodel.FeatureFlag {
	random := make([]byte, size*3/4)
	rand.New(rand.NewSource(int64(version))).Read(random)
	return ldbuilders.NewFlagBuilder(key).Version(version).On(true).
		Variations(ldvalue.Bool(false), ldvalue.Bool(true), ldvalue.String(base64.StdEncoding.EncodeToString(random))).
		OffVariation(0).FallthroughVariation(1).Build()
}

// listSegment is a segment of n user keys, 24 bytes each: compressible, so that a segment
// of 26,000 keys (over 500 KB of JSON) is stored inline in its main row, compressed.
func listSegment(key string, version, n int) ldmodel.Segment {
	users := make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf("segment-user-%08d", i)
	}
	return ldbuilders.NewSegmentBuilder(key).Version(version).Included(users...).Build()
}

// fillLarge fills a table (no prefix) through the store's Init with a flag in parts, a segment
// stored inline and compressed, and a plain flag, and returns the flag in parts.
func fillLarge(t *testing.T, table string) ldmodel.FeatureFlag {
	t.Helper()
	big, small := incompressibleFlag("big", 1, 1_200_000), boolFlag("small", 1, true)
	seg := listSegment("many", 1, 26_000)
	fill(t, table, "", map[string]*ldmodel.FeatureFlag{"big": &big, "small": &small}, map[string]*ldmodel.Segment{"many": &seg})
	require.Len(t, testenv.Rows(t, table, "segments:parts"), 0, "the segment compresses into its main row")
	require.GreaterOrEqual(t, len(testenv.Rows(t, table, "features:parts")), 3, "the flag is in parts")
	return big
}

// partRows are the part rows of the flag "big" (table without prefix), in key order.
func partRows(t *testing.T, table string) []map[string]types.AttributeValue {
	t.Helper()
	var rows []map[string]types.AttributeValue
	for _, row := range testenv.Rows(t, table, "features:parts") {
		if key, _ := stringAttr(row, lddynamodb.AttrKey); strings.HasPrefix(key, "big/") {
			rows = append(rows, row)
		}
	}
	return rows
}

func deleteRow(t *testing.T, table string, row map[string]types.AttributeValue) {
	t.Helper()
	_, err := testenv.Client().DeleteItem(context.Background(), &dynamodb.DeleteItemInput{
		TableName: aws.String(table),
		Key:       map[string]types.AttributeValue{lddynamodb.AttrNamespace: row[lddynamodb.AttrNamespace], lddynamodb.AttrKey: row[lddynamodb.AttrKey]},
	})
	require.NoError(t, err)
}

// withKey is a copy of a part row under another sort key.
func withKey(row map[string]types.AttributeValue, key string) map[string]types.AttributeValue {
	out := map[string]types.AttributeValue{}
	for name, value := range row {
		out[name] = value
	}
	out[lddynamodb.AttrKey] = av.S(key)
	return out
}

// TestVerifyChecksLargeItems checks that verify reads large items whole, finds each way their
// parts can break (one missing, one altered), and lists orphan parts (of a version the item is
// no longer at, of an item that is gone) without failing for them.
func TestVerifyChecksLargeItems(t *testing.T) {
	t.Run("whole", func(t *testing.T) {
		table := testenv.NewTable(t)
		fillLarge(t, table)
		parts := partRows(t, table)
		r := cli(t, "verify", table)
		assert.Equal(t, exitOK, r.code)
		assert.Contains(t, r.stdout, "features: 2 live, 0 deleted\n")
		assert.Contains(t, r.stdout, "features: 1 in parts ("+fmt.Sprint(len(parts))+" part rows, ")
		assert.Contains(t, r.stdout, "segments: 1 live, 0 deleted\n")
		assert.NotContains(t, r.stdout, "unknown row", "the parts namespace is the store's own")
		assert.NotContains(t, r.stdout, "orphan")
		assert.Contains(t, r.stdout, "\nok\n")
	})

	broken := []struct {
		name   string
		damage func(t *testing.T, table string, parts []map[string]types.AttributeValue)
		want   string
	}{
		{"a part missing", func(t *testing.T, table string, parts []map[string]types.AttributeValue) {
			deleteRow(t, table, parts[1])
		}, `features "big" (namespace "features"): undecodable: `},
		{"the last part missing", func(t *testing.T, table string, parts []map[string]types.AttributeValue) {
			deleteRow(t, table, parts[len(parts)-1])
		}, "large item parts missing"},
		{"a part altered", func(t *testing.T, table string, parts []map[string]types.AttributeValue) {
			altered := withKey(parts[1], parts[1][lddynamodb.AttrKey].(*types.AttributeValueMemberS).Value)
			data := append([]byte(nil), altered["data"].(*types.AttributeValueMemberB).Value...)
			data[len(data)/2] ^= 1
			altered["data"] = &types.AttributeValueMemberB{Value: data}
			testenv.PutRow(t, table, altered)
		}, `features "big" (namespace "features"): undecodable: `},
		{"parts swapped", func(t *testing.T, table string, parts []map[string]types.AttributeValue) {
			first, second := parts[0][lddynamodb.AttrKey], parts[1][lddynamodb.AttrKey]
			testenv.PutRow(t, table, withKey(parts[0], second.(*types.AttributeValueMemberS).Value))
			testenv.PutRow(t, table, withKey(parts[1], first.(*types.AttributeValueMemberS).Value))
		}, `features "big" (namespace "features"): undecodable: `},
	}
	for _, c := range broken {
		t.Run(c.name, func(t *testing.T) {
			table := testenv.NewTable(t)
			fillLarge(t, table)
			c.damage(t, table, partRows(t, table))
			r := cli(t, "verify", table)
			assert.Equal(t, exitProblems, r.code)
			assert.Contains(t, r.stdout, "problems (1):")
			assert.Contains(t, r.stdout, c.want)
			assert.Contains(t, r.stdout, "features: 1 live, 0 deleted\n", "the broken item is not counted")
		})
	}

	t.Run("orphans", func(t *testing.T) {
		table := testenv.NewTable(t)
		fillLarge(t, table)
		old := partRows(t, table)
		store, _ := testenv.Build(t, testenv.DataStore(table))
		newer := incompressibleFlag("big", 2, 1_100_000)
		updated, err := store.Upsert(ldstoreimpl.Features(), "big", ldstoretypes.SerializedItemDescriptor{
			Version: 2, SerializedItem: ldstoreimpl.Features().Serialize(ldstoretypes.ItemDescriptor{Version: 2, Item: &newer})})
		require.NoError(t, err)
		require.True(t, updated)
		// A crash between the writes left version 1's parts, and parts of an item since deleted
		// (under a key as long as the flag's: its parts are as large as DynamoDB holds).
		testenv.PutRows(t, table, old)
		oldKey := old[0][lddynamodb.AttrKey].(*types.AttributeValueMemberS).Value
		testenv.PutRow(t, table, withKey(old[0], "bye/4/"+strings.Split(oldKey, "/")[2]+"/0000"))

		r := cli(t, "verify", table)
		assert.Equal(t, exitOK, r.code, "orphan parts harm no reader")
		assert.Contains(t, r.stdout, "orphan parts (no reader uses them; the next Init removes them) (2):")
		assert.Contains(t, r.stdout, `orphan parts "big/1/`)
		assert.Contains(t, r.stdout, `in "features:parts": `+fmt.Sprint(len(old))+` parts, `)
		assert.Contains(t, r.stdout, `item "big" is at version 2, these are of version 1`)
		assert.Contains(t, r.stdout, `orphan parts "bye/4/`)
		assert.Contains(t, r.stdout, `no item "bye"`)
		assert.Contains(t, r.stdout, "\nok\n")
	})
}

// TestDumpAndLoadLargeItems dumps a prefix holding large items, in parts and inline, and loads
// the file into another table: the dump holds each item whole, and the copy reads back the same
// items, stored large again.
func TestDumpAndLoadLargeItems(t *testing.T) {
	table := testenv.NewTable(t)
	big := fillLarge(t, table)
	file := filepath.Join(t.TempDir(), "dump.json")
	r := cli(t, "dump", table, "-o", file)
	require.Equal(t, exitOK, r.code)

	raw, err := os.ReadFile(file)
	require.NoError(t, err)
	var dumped struct {
		Flags    map[string]ldmodel.FeatureFlag
		Segments map[string]ldmodel.Segment
	}
	require.NoError(t, json.Unmarshal(raw, &dumped))
	assert.Equal(t, big.Variations, dumped.Flags["big"].Variations, "the flag in parts is whole")
	assert.Len(t, dumped.Segments["many"].Included, 26_000, "the compressed segment is whole")

	copyTable := testenv.NewTable(t)
	r = cli(t, "load", copyTable, file)
	require.Equal(t, exitOK, r.code)
	assert.GreaterOrEqual(t, len(testenv.Rows(t, copyTable, "features:parts")), 3, "the copy keeps the flag in parts")
	r = cli(t, "verify", copyTable)
	assert.Equal(t, exitOK, r.code)

	from, _ := testenv.Build(t, testenv.DataStore(table))
	to, _ := testenv.Build(t, testenv.DataStore(copyTable))
	for _, kind := range kinds {
		want, err := from.GetAll(kind)
		require.NoError(t, err)
		got, err := to.GetAll(kind)
		require.NoError(t, err)
		require.Len(t, got, len(want))
		for i := range want {
			assert.Equal(t, want[i].Key, got[i].Key)
			assert.Equal(t, want[i].Item.Version, got[i].Item.Version)
			assert.JSONEq(t, string(want[i].Item.SerializedItem), string(got[i].Item.SerializedItem), "%s %q", kind, want[i].Key)
		}
	}
}

// afterFirstCall is a client option that runs fn once, after the client's first call returns.
func afterFirstCall(fn func()) func(*dynamodb.Options) {
	var once sync.Once
	return func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("afterFirstCall", func(ctx context.Context,
				in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleInitialize(ctx, in)
				once.Do(fn)
				return out, md, err
			}), middleware.After)
		})
	}
}

// TestReaderRereadsAnItemReplacedWhileRead replaces a large flag by a newer version between the
// reader's Query of the flags and its Query of their parts, as an Upsert racing verify or dump
// does: the reader reads the flag again and hands over the new version whole, and takes its
// parts for no orphans.
func TestReaderRereadsAnItemReplacedWhileRead(t *testing.T) {
	table := testenv.NewTable(t)
	fillLarge(t, table)
	store, _ := testenv.Build(t, testenv.DataStore(table))
	newer := incompressibleFlag("big", 2, 1_100_000)
	replace := func() {
		updated, err := store.Upsert(ldstoreimpl.Features(), "big", ldstoretypes.SerializedItemDescriptor{
			Version: 2, SerializedItem: ldstoreimpl.Features().Serialize(ldstoretypes.ItemDescriptor{Version: 2, Item: &newer})})
		assert.NoError(t, err)
		assert.True(t, updated)
	}
	client := dynamodb.NewFromConfig(testenv.AWSConfig(), testenv.WithEndpoint, afterFirstCall(replace))

	read := map[string]int{}
	var orphans []orphanParts
	reader := &kindReader{client: client, table: table, kind: ldstoreimpl.Features(),
		item: func(row map[string]types.AttributeValue, parts *partSet) {
			key, item, err := lddynamodb.DecodeRowWithParts(row, parts.list())
			assert.NoError(t, err, key)
			read[key] = item.Version
		},
		orphan: func(o orphanParts) { orphans = append(orphans, o) }}
	require.NoError(t, reader.read(context.Background()))
	assert.Equal(t, map[string]int{"big": 2, "small": 1}, read)
	assert.Empty(t, orphans)
}

// TestVerifyDoesNotWarnOfACompressedRowNearTheLimit stores a flag whose compressed JSON is just
// under DynamoDB's limit, inline in its main row: verify does not warn that it nears the limit,
// as it does for a plain row, since growing only moves its data into parts.
func TestVerifyDoesNotWarnOfACompressedRowNearTheLimit(t *testing.T) {
	table := testenv.NewTable(t)
	store, _ := testenv.Build(t, testenv.DataStore(table))
	require.NoError(t, store.Init(testenv.AllData([]ldstoretypes.KeyedSerializedItemDescriptor{testenv.NoisyFlag("near", 1, 500_000, 1)}, nil)))
	rows := testenv.Rows(t, table, "features")
	require.Len(t, rows, 1)
	require.Greater(t, lddynamodb.RowSize(rows[0]), nearLimitBytes, "the row is near the limit")
	require.Empty(t, testenv.Rows(t, table, "features:parts"), "and holds its data inline")

	r := cli(t, "verify", table)
	assert.Equal(t, exitOK, r.code)
	assert.NotContains(t, r.stdout, "warnings")
	assert.Contains(t, r.stdout, "features: 1 live, 0 deleted\n")
}
