package lddynamodb_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/launchdarkly/go-sdk-common/v3/ldcontext"
	"github.com/launchdarkly/go-sdk-common/v3/ldlog"
	"github.com/launchdarkly/go-sdk-common/v3/ldvalue"
	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldbuilders"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lddynamodb/lddynamodb"
	"github.com/lddynamodb/lddynamodb/internal/testenv"
)

// partCount is the number of part rows of a kind in a table with no prefix.
func partCount(t *testing.T, table string, kind ldstoretypes.DataKind) int {
	t.Helper()
	return len(testenv.Rows(t, table, lddynamodb.PartsNamespace("", kind)))
}

// mainRow is the row of key in a kind's namespace, or nil.
func mainRow(t *testing.T, table string, kind ldstoretypes.DataKind, key string) map[string]types.AttributeValue {
	t.Helper()
	for _, row := range testenv.Rows(t, table, kind.GetName()) {
		if row["key"].(*types.AttributeValueMemberS).Value == key {
			return row
		}
	}
	return nil
}

// wantParts is the number of parts that a large row says it has (0 for a plain or inline row).
func wantParts(t *testing.T, table string, kind ldstoretypes.DataKind, key string) int {
	t.Helper()
	_, _, count := lddynamodb.LargeRowParts(mainRow(t, table, kind, key))
	return count
}

// TestLargeItemsRoundTrip stores items over 400 KB through every operation, checking after each
// write that exact bytes come back from Get and GetAll, and that the parts namespace holds exactly
// the parts of the current version.
func TestLargeItemsRoundTrip(t *testing.T) {
	segment, _ := testenv.ListSegment("big-segment", 1, 26000, 4)
	cases := []struct {
		name      string
		kind      ldstoretypes.DataKind
		make      func(version int) ldstoretypes.KeyedSerializedItemDescriptor
		wantParts bool
	}{
		{"1.2 MB incompressible flag", features, func(v int) ldstoretypes.KeyedSerializedItemDescriptor {
			return testenv.NoisyFlag("big-flag", v, 1_200_000, int64(v))
		}, true},
		{"3 MB compressible flag", features, func(v int) ldstoretypes.KeyedSerializedItemDescriptor {
			return testenv.Flag("big-flag", v, 3_000_000+v)
		}, false},
		{"6 MB incompressible flag", features, func(v int) ldstoretypes.KeyedSerializedItemDescriptor {
			return testenv.NoisyFlag("big-flag", v, 6_000_000, int64(v))
		}, true},
		{"1 MB segment of 26,000 keys", segments, func(v int) ldstoretypes.KeyedSerializedItemDescriptor {
			s, _ := testenv.ListSegment("big-segment", v, 26000, int64(v))
			return s
		}, true},
	}
	require.Greater(t, len(segment.Item.SerializedItem), 1_000_000)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			table := testenv.NewTable(t)
			metrics := &lddynamodb.Metrics{}
			store, _ := testenv.Build(t, testenv.DataStore(table).Metrics(metrics))
			small := testenv.Flag("small", 1, 0)
			v1 := tc.make(1)
			data := func(items ...ldstoretypes.KeyedSerializedItemDescriptor) []ldstoretypes.SerializedCollection {
				if tc.kind == segments {
					return testenv.AllData([]ldstoretypes.KeyedSerializedItemDescriptor{small}, items)
				}
				return testenv.AllData(append([]ldstoretypes.KeyedSerializedItemDescriptor{small}, items...), nil)
			}
			// check reads the item back both ways and counts the parts left.
			check := func(step string, want ldstoretypes.SerializedItemDescriptor) {
				t.Helper()
				got, err := store.Get(tc.kind, v1.Key)
				require.NoError(t, err, step)
				assert.True(t, want.Version == got.Version && string(want.SerializedItem) == string(got.SerializedItem),
					"%s: Get gives version %d, %d bytes; want version %d, %d bytes", step, got.Version, len(got.SerializedItem),
					want.Version, len(want.SerializedItem))
				all, err := store.GetAll(tc.kind)
				require.NoError(t, err, step)
				found := false
				for _, it := range all {
					if it.Key == v1.Key {
						found = true
						assert.Equal(t, want.Version, it.Item.Version, "%s: GetAll", step)
						assert.True(t, string(want.SerializedItem) == string(it.Item.SerializedItem), "%s: GetAll gives the exact bytes", step)
					}
				}
				assert.Equal(t, want.Version >= 0, found, "%s: GetAll lists the item", step)
				assert.Equal(t, wantParts(t, table, tc.kind, v1.Key), partCount(t, table, tc.kind), "%s: the parts namespace holds the current parts only", step)
			}

			require.NoError(t, store.Init(data(v1)))
			check("Init", v1.Item)
			parts := wantParts(t, table, tc.kind, v1.Key)
			assert.Equal(t, tc.wantParts, parts > 0, "stored in parts: %d", parts)
			row := mainRow(t, table, tc.kind, v1.Key)
			_, asOthersSeeIt, err := lddynamodb.DecodeRow(map[string]types.AttributeValue{
				"namespace": row["namespace"], "key": row["key"], "version": row["version"], "item": row["item"]})
			require.NoError(t, err)
			assert.Equal(t, ldstoretypes.SerializedItemDescriptor{Version: 1, Deleted: true}, asOthersSeeIt, "other SDKs read a deleted item")
			assert.Equal(t, int64(parts), metrics.Snapshot().PartsWritten)

			metrics.Reset()
			require.NoError(t, store.Init(data(v1)))
			assert.Zero(t, metrics.Snapshot().PartsWritten, "an unchanged Init writes no part")
			assert.Equal(t, parts, partCount(t, table, tc.kind), "unchanged Init")

			v2 := tc.make(2)
			timed := func(step string, op func()) {
				metrics.Reset()
				start := time.Now()
				op()
				m := metrics.Snapshot()
				t.Logf("%s, %d bytes, %d parts: %s took %v, calls %v, parts read %d (%d bytes), written %d (%d bytes)",
					tc.name, len(v2.Item.SerializedItem), parts, step, time.Since(start), m.Calls, m.PartsRead, m.PartBytesRead,
					m.PartsWritten, m.PartBytesWritten)
			}
			timed("Upsert", func() {
				updated, err := store.Upsert(tc.kind, v2.Key, v2.Item)
				require.NoError(t, err)
				assert.True(t, updated)
			})
			timed("Get", func() { _, _ = store.Get(tc.kind, v2.Key) })
			timed("GetAll", func() { _, _ = store.GetAll(tc.kind) })
			check("Upsert of a newer version", v2.Item)

			updated, err := store.Upsert(tc.kind, v1.Key, v1.Item)
			require.NoError(t, err)
			assert.False(t, updated)
			got, err := store.Get(tc.kind, v1.Key)
			require.NoError(t, err)
			assert.Equal(t, 2, got.Version, "Upsert of an older version")
			assert.Equal(t, wantParts(t, table, tc.kind, v1.Key), partCount(t, table, tc.kind), "a refused Upsert leaves no part")

			deleted := ldstoretypes.SerializedItemDescriptor{Version: 3, Deleted: true}
			updated, err = store.Upsert(tc.kind, v1.Key, deleted)
			require.NoError(t, err)
			assert.True(t, updated)
			got, err = store.Get(tc.kind, v1.Key)
			require.NoError(t, err)
			assert.Equal(t, 3, got.Version)
			assert.True(t, got.Deleted)
			assert.Zero(t, partCount(t, table, tc.kind), "a delete leaves no parts")

			v4 := tc.make(4)
			_, err = store.Upsert(tc.kind, v4.Key, v4.Item)
			require.NoError(t, err)
			check("Upsert after a delete", v4.Item)

			require.NoError(t, store.Init(data()))
			check("Init without it", ldstoretypes.SerializedItemDescriptor{}.NotFound())
			assert.Zero(t, partCount(t, table, tc.kind))
		})
	}
}

// TestLargeItemBoundaries writes items at each size where the form changes, through Upsert, so
// that the server checks every row against its own item limit.
func TestLargeItemBoundaries(t *testing.T) {
	capacity := lddynamodb.PartCapacity("f", 1)
	cases := []struct {
		name      string
		item      ldstoretypes.SerializedItemDescriptor
		wantLarge bool
		wantParts int
	}{
		{"row exactly at the limit: plain", flagOfRowSize(t, "f", 1, lddynamodb.MaxItemBytes).Item, false, 0},
		{"row one byte over: large, inline", flagOfRowSize(t, "f", 1, lddynamodb.MaxItemBytes+1).Item, true, 0},
		{"compressed row exactly at the limit: inline", lddynamodb.CompressedItemAt(t, lddynamodb.MaxItemBytes), true, 0},
		{"compressed row one byte over: one part", lddynamodb.CompressedItemAt(t, lddynamodb.MaxItemBytes+1), true, 1},
		{"data filling one part", lddynamodb.GzipItemAt(t, capacity), true, 1},
		{"data one byte over one part", lddynamodb.GzipItemAt(t, capacity+1), true, 2},
	}
	table := testenv.NewTable(t)
	store, _ := testenv.Build(t, testenv.DataStore(table))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, store.Init(testenv.AllData(nil, nil)))
			updated, err := store.Upsert(features, "f", tc.item)
			require.NoError(t, err)
			require.True(t, updated)
			row := mainRow(t, table, features, "f")
			assert.Equal(t, tc.wantLarge, row["encoding"] != nil, "stored large")
			assert.Equal(t, tc.wantParts, partCount(t, table, features))
			for _, part := range testenv.Rows(t, table, lddynamodb.PartsNamespace("", features)) {
				assert.LessOrEqual(t, lddynamodb.RowSize(part), lddynamodb.MaxItemBytes)
			}
			got, err := store.Get(features, "f")
			require.NoError(t, err)
			assert.True(t, string(tc.item.SerializedItem) == string(got.SerializedItem), "exact bytes back")
		})
	}
}

// TestLargeItemsOffAndOverTheLimit: with LargeItems(false) an item over 400 KB is skipped as
// before; with it on, an item over MaxLargeItemBytes is, with an error naming its size.
func TestLargeItemsOffAndOverTheLimit(t *testing.T) {
	table := testenv.NewTable(t)
	off, offLog := testenv.Build(t, testenv.DataStore(table).LargeItems(false))
	big := testenv.NoisyFlag("big", 1, 500_000, 1)
	require.NoError(t, off.Init(testenv.AllData([]ldstoretypes.KeyedSerializedItemDescriptor{big}, nil)))
	assert.Nil(t, mainRow(t, table, features, "big"))
	assert.Contains(t, strings.Join(offLog.GetOutput(ldlog.Error), "\n"), `features "big" not stored: the row is`)
	_, err := off.Upsert(features, "big", big.Item)
	assert.ErrorContains(t, err, "over DynamoDB's item limit of 409600")

	on, _ := testenv.Build(t, testenv.DataStore(table))
	huge := testenv.Flag("huge", 1, lddynamodb.MaxLargeItemBytes)
	_, err = on.Upsert(features, "huge", huge.Item)
	assert.ErrorContains(t, err, fmt.Sprintf(`upsert features "huge" version 1: not stored: the item is %d bytes of JSON, over the large item limit of %d`,
		len(huge.Item.SerializedItem), lddynamodb.MaxLargeItemBytes))
	assert.Nil(t, mainRow(t, table, features, "huge"))
	assert.Zero(t, partCount(t, table, features))
}

// TestLargeSegmentInDaemonMode evaluates, in a daemon-mode SDK client, a flag whose rule matches
// a 1 MB list segment stored in parts.
func TestLargeSegmentInDaemonMode(t *testing.T) {
	table := testenv.NewTable(t)
	writer, _ := testenv.Build(t, testenv.DataStore(table))
	segment, members := testenv.ListSegment("beta-users", 1, 26000, 9)
	flag := ldbuilders.NewFlagBuilder("beta").Version(1).On(true).Variations(ldvalue.Bool(false), ldvalue.Bool(true)).
		FallthroughVariation(0).OffVariation(0).
		AddRule(ldbuilders.NewRuleBuilder().ID("in-beta").Variation(1).Clauses(ldbuilders.SegmentMatchClause("beta-users"))).Build()
	flagItem := ldstoretypes.KeyedSerializedItemDescriptor{Key: "beta", Item: ldstoretypes.SerializedItemDescriptor{
		Version: 1, SerializedItem: features.Serialize(ldstoretypes.ItemDescriptor{Version: 1, Item: &flag})}}
	require.NoError(t, writer.Init(testenv.AllData([]ldstoretypes.KeyedSerializedItemDescriptor{flagItem},
		[]ldstoretypes.KeyedSerializedItemDescriptor{segment})))
	require.Positive(t, partCount(t, table, segments))

	client, _ := testenv.DaemonClient(t, testenv.DataStore(table), 30)
	for _, tc := range []struct {
		key  string
		want bool
	}{{members[0], true}, {members[25999], true}, {"not-a-member", false}} {
		value, detail, err := client.BoolVariationDetail("beta", ldcontext.New(tc.key), false)
		require.NoError(t, err)
		assert.Equal(t, tc.want, value, "%s: %v", tc.key, detail.Reason)
	}
}

// largeData is the flags of a store whose items are all large but one.
func largeData(version int, keys ...string) []ldstoretypes.SerializedCollection {
	flags := []ldstoretypes.KeyedSerializedItemDescriptor{testenv.Flag("small", version, 0)}
	for i, key := range keys {
		flags = append(flags, testenv.NoisyFlag(key, version, 900_000, int64(version*100+i)))
	}
	return testenv.AllData(flags, nil)
}

// storeOf is a store of table, for tests that need more than one.
func storeOf(t *testing.T, table string, opts ...func(*lddynamodb.DataStoreBuilder)) subsystems.PersistentDataStore {
	t.Helper()
	b := testenv.DataStore(table)
	for _, opt := range opts {
		opt(b)
	}
	store, _ := testenv.Build(t, b)
	return store
}
