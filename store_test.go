package lddynamodb_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/launchdarkly/go-sdk-common/v3/ldlog"
	"github.com/launchdarkly/go-sdk-common/v3/ldlogtest"
	"github.com/launchdarkly/go-sdk-common/v3/ldvalue"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoreimpl"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
	"github.com/launchdarkly/go-server-sdk/v7/testhelpers/storetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lddynamodb/lddynamodb"
	"github.com/lddynamodb/lddynamodb/internal/faults"
	"github.com/lddynamodb/lddynamodb/internal/testenv"
)

// clearPrefix deletes the data store rows of a prefix.
func clearPrefix(table string) func(prefix string) error {
	return func(prefix string) error {
		var namespaces []string
		for _, name := range []string{"features", "segments", "$inited"} {
			if prefix != "" {
				name = prefix + ":" + name
			}
			namespaces = append(namespaces, name)
		}
		return testenv.ClearNamespaces(table, namespaces...)
	}
}

func TestDataStoreConformance(t *testing.T) {
	table := testenv.NewTable(t)
	errorStore := lddynamodb.DataStore(table).
		ClientConfig(testenv.AWSConfig(), func(o *dynamodb.Options) {
			o.BaseEndpoint = aws.String(testenv.ClosedEndpoint(t))
			o.RetryMaxAttempts = 1
		})
	storetest.NewPersistentDataStoreTestSuite(
		func(prefix string) subsystems.ComponentConfigurer[subsystems.PersistentDataStore] {
			return testenv.DataStore(table).Prefix(prefix)
		},
		clearPrefix(table),
	).ErrorStoreFactory(errorStore, func(t assert.TestingT, err error) {
		assert.ErrorContains(t, err, table)
	}).ConcurrentModificationHook(lddynamodb.SetBeforeUpsertWrite).Run(t)
}

var (
	features = ldstoreimpl.Features()
	segments = ldstoreimpl.Segments()
)

func TestPrefixesKeepDataApart(t *testing.T) {
	table := testenv.NewTable(t)
	stores := map[string]subsystems.PersistentDataStore{}
	for _, prefix := range []string{"", "env1", "env2"} {
		stores[prefix], _ = testenv.Build(t, testenv.DataStore(table).Prefix(prefix))
		flag := testenv.Flag("flag-"+prefix, 1, 0)
		require.NoError(t, stores[prefix].Init(testenv.AllData([]ldstoretypes.KeyedSerializedItemDescriptor{flag}, nil)))
	}
	for prefix, store := range stores {
		all, err := store.GetAll(features)
		require.NoError(t, err)
		require.Len(t, all, 1)
		assert.Equal(t, "flag-"+prefix, all[0].Key)
		assert.True(t, store.IsInitialized())
	}
	// The rows are where the other SDKs and Relay look for them.
	assert.Len(t, testenv.Rows(t, table, "env1:features"), 1)
	assert.Len(t, testenv.Rows(t, table, "env1:$inited"), 1)
	assert.Len(t, testenv.Rows(t, table, "features"), 1)
	assert.Len(t, testenv.Rows(t, table, "$inited"), 1)

	uninitialized, _ := testenv.Build(t, testenv.DataStore(table).Prefix("env3"))
	assert.False(t, uninitialized.IsInitialized())
}

func TestEveryTombstoneShapeReadsAsDeleted(t *testing.T) {
	table := testenv.NewTable(t)
	shapes := map[string]map[string]types.AttributeValue{
		"go-relay": {"item": &types.AttributeValueMemberS{Value: `{"key":"go-relay","version":4,"deleted":true}`}},
		"node":     {"item": &types.AttributeValueMemberS{Value: `{"key": "node", "version": 4, "deleted": true}`}},
		"java-net": {"item": &types.AttributeValueMemberS{Value: "null"}},
		"no-item":  {},
	}
	for key, row := range shapes {
		row["namespace"] = &types.AttributeValueMemberS{Value: "features"}
		row["key"] = &types.AttributeValueMemberS{Value: key}
		row["version"] = &types.AttributeValueMemberN{Value: "4"}
		testenv.PutRow(t, table, row)
	}
	store, _ := testenv.Build(t, testenv.DataStore(table))
	for key := range shapes {
		t.Run(key, func(t *testing.T) {
			item, err := store.Get(features, key)
			require.NoError(t, err)
			assert.Equal(t, ldstoretypes.SerializedItemDescriptor{Version: 4, Deleted: true}, item)
			// A deleted item is still versioned: an older update must not resurrect it.
			updated, err := store.Upsert(features, key, testenv.Flag(key, 3, 0).Item)
			require.NoError(t, err)
			assert.False(t, updated)
		})
	}
	all, err := store.GetAll(features)
	require.NoError(t, err)
	assert.Len(t, all, len(shapes))
	for _, item := range all {
		assert.True(t, item.Item.Deleted, item.Key)
		assert.Equal(t, 4, item.Item.Version, item.Key)
	}
}

// TestInitSkipsOversizeItemsAndWritesTheRest: with LargeItems(false), as before large items.
func TestInitSkipsOversizeItemsAndWritesTheRest(t *testing.T) {
	table := testenv.NewTable(t)
	store, mockLog := testenv.Build(t, testenv.DataStore(table).LargeItems(false))
	flags := []ldstoretypes.KeyedSerializedItemDescriptor{
		testenv.Flag("small", 1, 0),
		testenv.Flag("huge", 1, lddynamodb.MaxItemBytes),
		testenv.Flag("also-small", 1, 0),
	}
	require.NoError(t, store.Init(testenv.AllData(flags, nil)))

	all, err := store.GetAll(features)
	require.NoError(t, err)
	var keys []string
	for _, item := range all {
		keys = append(keys, item.Key)
	}
	assert.ElementsMatch(t, []string{"small", "also-small"}, keys)
	assert.True(t, store.IsInitialized())
	errs := mockLog.GetOutput(ldlog.Error)
	require.Len(t, errs, 1)
	assert.Contains(t, errs[0], `features "huge"`)
	assert.Contains(t, errs[0], table)
	assert.Regexp(t, `is 4\d{5} bytes`, errs[0])
}

// TestUpsertRefusesOversizeItem: with LargeItems(false), as before large items.
func TestUpsertRefusesOversizeItem(t *testing.T) {
	table := testenv.NewTable(t)
	store, _ := testenv.Build(t, testenv.DataStore(table).LargeItems(false))
	updated, err := store.Upsert(features, "huge", testenv.Flag("huge", 1, lddynamodb.MaxItemBytes).Item)
	assert.False(t, updated)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `features "huge"`)
	assert.Contains(t, err.Error(), table)
}

func TestUndecodableRowIsAnErrorNamingIt(t *testing.T) {
	table := testenv.NewTable(t)
	testenv.PutRow(t, table, map[string]types.AttributeValue{
		"namespace": &types.AttributeValueMemberS{Value: "features"},
		"key":       &types.AttributeValueMemberS{Value: "bad"},
		"version":   &types.AttributeValueMemberS{Value: "3"},
		"item":      &types.AttributeValueMemberS{Value: `{"key":"bad","version":3}`},
	})
	store, _ := testenv.Build(t, testenv.DataStore(table))
	_, err := store.Get(features, "bad")
	var rowErr *lddynamodb.RowError
	require.ErrorAs(t, err, &rowErr)
	assert.Equal(t, "bad", rowErr.Key)
	assert.Equal(t, "features", rowErr.Namespace)
	assert.Contains(t, err.Error(), table)

	_, err = store.GetAll(features)
	require.ErrorAs(t, err, &rowErr)
	assert.Contains(t, err.Error(), table)
}

func TestInitOverExistingDataRemovesLeftovers(t *testing.T) {
	table := testenv.NewTable(t)
	store, _ := testenv.Build(t, testenv.DataStore(table).Prefix("p"))
	other, _ := testenv.Build(t, testenv.DataStore(table).Prefix("other"))
	require.NoError(t, other.Init(testenv.AllData([]ldstoretypes.KeyedSerializedItemDescriptor{testenv.Flag("keep", 1, 0)}, nil)))

	require.NoError(t, store.Init(testenv.AllData(
		[]ldstoretypes.KeyedSerializedItemDescriptor{testenv.Flag("a", 1, 0), testenv.Flag("b", 1, 0)},
		[]ldstoretypes.KeyedSerializedItemDescriptor{testenv.Segment("s", 1)})))
	require.NoError(t, store.Init(testenv.AllData(
		[]ldstoretypes.KeyedSerializedItemDescriptor{testenv.Flag("b", 2, 0), testenv.Flag("c", 1, 0)}, nil)))

	flags, err := store.GetAll(features)
	require.NoError(t, err)
	versions := map[string]int{}
	for _, f := range flags {
		versions[f.Key] = f.Item.Version
	}
	assert.Equal(t, map[string]int{"b": 2, "c": 1}, versions)
	segs, err := store.GetAll(segments)
	require.NoError(t, err)
	assert.Empty(t, segs)
	// Another prefix's rows are not this Init's business.
	assert.Len(t, testenv.Rows(t, table, "other:features"), 1)
}

func TestGetAllReadsPastOneMegabytePages(t *testing.T) {
	table := testenv.NewTable(t)
	metrics := &lddynamodb.Metrics{}
	store, _ := testenv.Build(t, testenv.DataStore(table).Metrics(metrics))
	const count, size = 40, 100 * 1024 // 4 MB in all
	var flags []ldstoretypes.KeyedSerializedItemDescriptor
	for i := 0; i < count; i++ {
		flags = append(flags, testenv.Flag(fmt.Sprintf("flag-%02d", i), 1, size))
	}
	require.NoError(t, store.Init(testenv.AllData(flags, nil)))

	metrics.Reset()
	all, err := store.GetAll(features)
	require.NoError(t, err)
	require.Len(t, all, count)
	for i, item := range all {
		assert.Equal(t, flags[i].Item.SerializedItem, item.Item.SerializedItem, item.Key)
	}
	assert.GreaterOrEqual(t, metrics.Snapshot().Calls["Query"], int64(4), "4 MB needs at least 4 pages")
}

func TestBuildRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name    string
		builder *lddynamodb.DataStoreBuilder
		wantErr string
	}{
		{"empty table", lddynamodb.DataStore(""), "table name is empty"},
		{"batch concurrency", testenv.DataStore("t").BatchConcurrency(0), "batch concurrency must be at least 1"},
		{"init timeout", testenv.DataStore("t").InitTimeout(0), "init timeout must be positive"},
		{"operation timeout", testenv.DataStore("t").OperationTimeout(-time.Second), "operation timeout must be positive"},
		{"stale max age", testenv.DataStore("t").StaleIfError(-time.Second), "stale-if-error max age must not be negative"},
		{"no region", lddynamodb.DataStore("t").ClientConfig(aws.Config{Credentials: testenv.AWSConfig().Credentials}), "no AWS region"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, _ := testenv.Context()
			store, err := tt.builder.Build(ctx)
			assert.Nil(t, store)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestDescribeConfigurationNamesDynamoDB(t *testing.T) {
	ctx, _ := testenv.Context()
	assert.Equal(t, ldvalue.String("DynamoDB"), lddynamodb.DataStore("t").DescribeConfiguration(ctx))
}

// The file data source keeps a flag's version when the file changes, so Init must compare the
// JSON as well as the version before it skips a row. Whether the identical row was sent again is
// read from the calls on the wire as well as from Metrics, so that a broken counter cannot hide
// a rewrite (which would leave the table looking the same).
func TestInitRewritesChangedItemOfSameVersion(t *testing.T) {
	table := testenv.NewTable(t)
	metrics := &lddynamodb.Metrics{}
	wire := faults.New(1, nil) // no faults: it only records the calls
	t.Cleanup(wire.CloseIdleConnections)
	store, _ := testenv.Build(t, testenv.DataStore(table).Metrics(metrics).ClientOptions(dynamodb.Options{}, wire.ClientOption()))
	before := testenv.Flag("from-file", 0, 0)
	after := testenv.Flag("from-file", 0, 10) // same version, another variation
	require.NotEqual(t, before.Item.SerializedItem, after.Item.SerializedItem)
	itemInTable := func() string {
		rows := testenv.Rows(t, table, "features")
		require.Len(t, rows, 1)
		return rows[0]["item"].(*types.AttributeValueMemberS).Value
	}

	require.NoError(t, store.Init(testenv.AllData([]ldstoretypes.KeyedSerializedItemDescriptor{before}, nil)))
	require.NoError(t, store.Init(testenv.AllData([]ldstoretypes.KeyedSerializedItemDescriptor{after}, nil)))
	assert.Equal(t, string(after.Item.SerializedItem), itemInTable())
	item, err := store.Get(features, "from-file")
	require.NoError(t, err)
	assert.Equal(t, string(after.Item.SerializedItem), string(item.SerializedItem))

	sent := wire.CountByOp()["BatchWriteItem"]
	require.Equal(t, 2, sent, "each Init that changed the item sent one batch")
	metrics.Reset()
	require.NoError(t, store.Init(testenv.AllData([]ldstoretypes.KeyedSerializedItemDescriptor{after}, nil)))
	assert.Equal(t, sent, wire.CountByOp()["BatchWriteItem"], "an identical item is not rewritten: BatchWriteItem calls on the wire")
	assert.Zero(t, metrics.Snapshot().Calls["BatchWriteItem"], "an identical item is not rewritten: Metrics")
	assert.Equal(t, string(after.Item.SerializedItem), itemInTable())
}

func TestBuildWithoutClientContext(t *testing.T) {
	store, err := testenv.DataStore(testenv.NewTable(t)).Build(nil)
	require.NoError(t, err)
	defer store.Close()
	assert.False(t, store.IsInitialized())
}

// TestUpsertOverBrokenVersion upserts over rows that another writer left with a version that
// cannot be compared: missing, or a string. Such a row is overwritten (as Init rewrites it),
// never refused with (false, nil), which would make the SDK believe a newer version is stored.
func TestUpsertOverBrokenVersion(t *testing.T) {
	table := testenv.NewTable(t)
	store, _ := testenv.Build(t, testenv.DataStore(table))
	item := testenv.Flag("f", 1, 0).Item
	tests := []struct {
		name    string
		version types.AttributeValue // nil: no version attribute
		written bool
	}{
		{"version is a string", &types.AttributeValueMemberS{Value: "5"}, true},
		{"no version", nil, true},
		{"version is a number set", &types.AttributeValueMemberNS{Value: []string{"5"}}, true},
		{"older version (control)", &types.AttributeValueMemberN{Value: "0"}, true},
		{"newer version (control)", &types.AttributeValueMemberN{Value: "5"}, false},
		{"same version (control)", &types.AttributeValueMemberN{Value: "1"}, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := fmt.Sprintf("f%d", i)
			row := map[string]types.AttributeValue{
				"namespace": &types.AttributeValueMemberS{Value: "features"},
				"key":       &types.AttributeValueMemberS{Value: key},
				"item":      &types.AttributeValueMemberS{Value: `{"key":"` + key + `","version":5}`},
			}
			if tt.version != nil {
				row["version"] = tt.version
			}
			testenv.PutRow(t, table, row)

			updated, err := store.Upsert(features, key, item)
			require.NoError(t, err)
			assert.Equal(t, tt.written, updated)
			stored := testenv.Rows(t, table, "features")
			var got map[string]types.AttributeValue
			for _, r := range stored {
				if r["key"].(*types.AttributeValueMemberS).Value == key {
					got = r
				}
			}
			if tt.written {
				assert.Equal(t, &types.AttributeValueMemberN{Value: "1"}, got["version"], "the row now holds the upserted item")
				desc, err := store.Get(features, key)
				require.NoError(t, err)
				assert.Equal(t, 1, desc.Version)
			} else {
				assert.Equal(t, row, got, "a row with a comparable version is left alone")
			}
		})
	}
}

// TestMissingMarkerWarnsOncePerStore reads a table that has no initialized marker for the
// store's prefix: each store warns once, naming the table and prefix, and not again.
func TestMissingMarkerWarnsOncePerStore(t *testing.T) {
	table := testenv.NewTable(t)
	other, _ := testenv.Build(t, testenv.DataStore(table).Prefix("other"))
	require.NoError(t, other.Init(testenv.AllData(nil, nil))) // data under another prefix only
	noMarkerWarnings := func(log *ldlogtest.MockLog) []string {
		var found []string
		for _, msg := range log.GetOutput(ldlog.Warn) {
			if strings.Contains(msg, "no initialized marker") {
				found = append(found, msg)
			}
		}
		return found
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"env1", []string{strconv.Quote(table), `prefix "env1"`, `"env1:$inited"`, "check the table name and prefix"}},
		{"", []string{strconv.Quote(table), "no prefix", `"$inited"`}},
	}
	for _, tt := range tests {
		t.Run("prefix "+strconv.Quote(tt.prefix), func(t *testing.T) {
			store, log := testenv.Build(t, testenv.DataStore(table).Prefix(tt.prefix))
			for i := 0; i < 3; i++ {
				assert.False(t, store.IsInitialized())
			}
			warnings := noMarkerWarnings(log)
			require.Len(t, warnings, 1, "one warning per store")
			for _, want := range tt.want {
				assert.Contains(t, warnings[0], want)
			}

			require.NoError(t, store.Init(testenv.AllData(nil, nil)))
			assert.True(t, store.IsInitialized())
			assert.Len(t, noMarkerWarnings(log), 1)

			fresh, freshLog := testenv.Build(t, testenv.DataStore(table).Prefix(tt.prefix))
			assert.True(t, fresh.IsInitialized())
			assert.Empty(t, noMarkerWarnings(freshLog), "no warning when the marker is there")
		})
	}
}

// TestInitRewritesSameJSONUnderAnotherVersion leaves rows whose item JSON is the one Init
// writes but whose version attribute is another (a writer that bumped it, or stored it as a
// string): the differential Init must compare versions too, and rewrite them.
func TestInitRewritesSameJSONUnderAnotherVersion(t *testing.T) {
	flag := testenv.Flag("f", 1, 0)
	tests := []struct {
		name    string
		version types.AttributeValue
	}{
		{"higher version", &types.AttributeValueMemberN{Value: "7"}},
		{"version as a string", &types.AttributeValueMemberS{Value: "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table := testenv.NewTable(t)
			testenv.PutRow(t, table, map[string]types.AttributeValue{
				"namespace": &types.AttributeValueMemberS{Value: "features"},
				"key":       &types.AttributeValueMemberS{Value: "f"},
				"version":   tt.version,
				"item":      &types.AttributeValueMemberS{Value: string(flag.Item.SerializedItem)},
			})
			store, _ := testenv.Build(t, testenv.DataStore(table))
			require.NoError(t, store.Init(testenv.AllData([]ldstoretypes.KeyedSerializedItemDescriptor{flag}, nil)))
			rows := testenv.Rows(t, table, "features")
			require.Len(t, rows, 1)
			assert.Equal(t, &types.AttributeValueMemberN{Value: "1"}, rows[0]["version"], "Init discards the old row whatever its version")
			got, err := store.Get(features, "f")
			require.NoError(t, err)
			assert.Equal(t, flag.Item, got)
		})
	}
}
