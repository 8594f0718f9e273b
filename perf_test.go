package lddynamodb_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoreimpl"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lddynamodb/lddynamodb"
	"github.com/lddynamodb/lddynamodb/internal/testenv"
)

// perfBatchSize is DynamoDB's limit on the requests of one BatchWriteItem call.
const perfBatchSize = 25

// perfBatches is the number of BatchWriteItem calls that n writes need: ceil(n/25).
func perfBatches(n int) int64 { return int64((n + perfBatchSize - 1) / perfBatchSize) }

// perfRowBytes is the size of a row as DynamoDB bills it, the lengths of the attribute names and
// values, computed here independently of the store.
func perfRowBytes(namespace, key string, item ldstoretypes.SerializedItemDescriptor) int64 {
	return int64(len("namespace") + len(namespace) + len("key") + len(key) +
		len("version") + perfIntBytes(item.Version) + len("item") + len(item.SerializedItem))
}

// perfIntBytes is the size of a non-negative integer in DynamoDB: one byte per pair of digits,
// counted from the right, without the pairs of trailing zeros, plus one.
func perfIntBytes(n int) int {
	pairs := (len(strconv.Itoa(n)) + 1) / 2
	for n > 0 && n%100 == 0 {
		n /= 100
		pairs--
	}
	return pairs + 1
}

// perfMarkerBytes is the size of the initialized marker row (no prefix).
var perfMarkerBytes = int64(len("namespace") + len("$inited") + len("key") + len("$inited"))

// perfKeyQueryPages counts the pages of the Query that Init needs for a namespace (keys and versions
// only), by running the same Query with a plain client. Pages are 1 MB of whole rows, before the
// projection, so the count depends on the data and not on the store.
func perfKeyQueryPages(t testing.TB, table, namespace string) int64 {
	t.Helper()
	expr, err := expression.NewBuilder().
		WithKeyCondition(expression.Key("namespace").Equal(expression.Value(namespace))).
		WithProjection(expression.NamesList(expression.Name("key"), expression.Name("version"))).
		Build()
	require.NoError(t, err)
	paginator := dynamodb.NewQueryPaginator(testenv.Client(), &dynamodb.QueryInput{
		TableName:                 aws.String(table),
		ConsistentRead:            aws.Bool(true),
		KeyConditionExpression:    expr.KeyCondition(),
		ProjectionExpression:      expr.Projection(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
	})
	var pages int64
	for paginator.HasMorePages() {
		_, err := paginator.NextPage(context.Background())
		require.NoError(t, err)
		pages++
	}
	return pages
}

// perfAllKeyQueryPages is perfKeyQueryPages summed over the namespaces of data.
func perfAllKeyQueryPages(t testing.TB, table string, data []ldstoretypes.SerializedCollection) int64 {
	var pages int64
	for _, coll := range data {
		pages += perfKeyQueryPages(t, table, coll.Kind.GetName())
		pages += perfKeyQueryPages(t, table, lddynamodb.PartsNamespace("", coll.Kind))
	}
	return pages
}

// perfStoredVersions reads every row of a namespace with a plain client: key to version.
func perfStoredVersions(t testing.TB, table, namespace string) map[string]int {
	t.Helper()
	versions := map[string]int{}
	for _, row := range testenv.Rows(t, table, namespace) {
		key := row["key"].(*types.AttributeValueMemberS).Value
		version, err := strconv.Atoi(row["version"].(*types.AttributeValueMemberN).Value)
		require.NoError(t, err)
		versions[key] = version
	}
	return versions
}

// perfWriteCost is what a set of puts and deletes adds to ItemsWritten and BytesWritten.
func perfWriteCost(puts []ldstoretypes.SerializedCollection, deletes []int) (items, bytes int64) {
	for _, coll := range puts {
		for _, it := range coll.Items {
			items++
			bytes += perfRowBytes(coll.Kind.GetName(), it.Key, it.Item)
		}
	}
	for _, n := range deletes {
		items += int64(n)
	}
	return items, bytes
}

// perfCalls is a snapshot's calls without the operations that were never made, for comparison
// with an expected map.
func perfCalls(s lddynamodb.MetricsSnapshot) map[string]int64 {
	calls := map[string]int64{}
	for op, n := range s.Calls {
		if n != 0 {
			calls[op] = n
		}
	}
	return calls
}

// TestInitCallCounts follows one table through a cold Init and three re-Inits, checking each
// against the least DynamoDB work it needs: one Query per namespace page, ceil(w/25)
// BatchWriteItem calls for the w rows that changed of each namespace, then as many for the rows
// that disappeared (deletes go after every put, and each call writes to one partition key), and
// one PutItem (the marker).
func TestInitCallCounts(t *testing.T) {
	const flags, segments = 1100, 113 // 1213 items, not a multiple of 25; features take two Query pages
	table := testenv.NewTable(t)
	metrics := &lddynamodb.Metrics{}
	store, _ := testenv.Build(t, testenv.DataStore(table).Metrics(metrics))
	data := testenv.PerfData(flags, segments, 1)

	type step struct {
		name    string
		data    []ldstoretypes.SerializedCollection
		puts    []ldstoretypes.SerializedCollection // rows that must be written
		deletes []int                               // rows that must be deleted, of each namespace
		pages   int64                               // Query pages: one per namespace, two for 1.1 MB of features
	}
	changed := testenv.PerfWithChanges(data, []int{110, 11}, 2) // 10 % of the items
	removed := []ldstoretypes.SerializedCollection{
		{Kind: changed[0].Kind, Items: append(changed[0].Items[:flags-30:flags-30], testenv.PerfFlag(flags, 1))},
		{Kind: changed[1].Kind, Items: changed[1].Items[:segments-7]},
	}
	steps := []step{
		{name: "cold", data: data, puts: data, pages: 4},
		{name: "unchanged", data: data, pages: 5},
		{name: "10% changed", data: changed, pages: 5, puts: []ldstoretypes.SerializedCollection{
			{Kind: changed[0].Kind, Items: changed[0].Items[:110]},
			{Kind: changed[1].Kind, Items: changed[1].Items[:11]},
		}},
		{name: "keys removed and one added", data: removed, deletes: []int{30, 7}, pages: 5, puts: []ldstoretypes.SerializedCollection{
			{Kind: removed[0].Kind, Items: removed[0].Items[flags-30:]},
		}},
	}
	for _, st := range steps {
		// Pages of the Query that Init makes, counted on the table as Init will find it.
		pages := perfAllKeyQueryPages(t, table, st.data)
		require.Equal(t, st.pages, pages, "%s: Query pages that Init needs", st.name)
		metrics.Reset()
		require.NoError(t, store.Init(st.data), st.name)
		got := metrics.Snapshot()

		items, bytes := perfWriteCost(st.puts, st.deletes)
		want := map[string]int64{"Query": pages, "PutItem": 1}
		var batches int64
		for _, coll := range st.puts {
			batches += perfBatches(len(coll.Items))
		}
		for _, n := range st.deletes {
			batches += perfBatches(n)
		}
		if batches > 0 {
			want["BatchWriteItem"] = batches
		}
		assert.Equal(t, want, perfCalls(got), "%s: calls", st.name)
		assert.Equal(t, items+1, got.ItemsWritten, "%s: items written (with the marker)", st.name)
		assert.Equal(t, bytes+perfMarkerBytes, got.BytesWritten, "%s: bytes written (with the marker)", st.name)
		assert.Empty(t, perfCalls(lddynamodb.MetricsSnapshot{Calls: got.Errors}), "%s: errors", st.name)

		// The table holds exactly the new data.
		for _, coll := range st.data {
			want := map[string]int{}
			for _, it := range coll.Items {
				want[it.Key] = it.Item.Version
			}
			assert.Equal(t, want, perfStoredVersions(t, table, coll.Kind.GetName()), "%s: rows of %s", st.name, coll.Kind)
		}
	}
}

// TestColdInitCallCountMatchesFormula checks the formula for a cold Init of n items on
// an empty table: ceil(n/25) BatchWriteItem calls, one Query per namespace and per parts
// namespace (an empty namespace is one page), and the marker.
func TestColdInitCallCountMatchesFormula(t *testing.T) {
	for _, n := range []int{1, 25, 26, 1000} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			table := testenv.NewTable(t)
			metrics := &lddynamodb.Metrics{}
			store, _ := testenv.Build(t, testenv.DataStore(table).Metrics(metrics))
			require.NoError(t, store.Init(testenv.PerfData(n, 0, 1)))
			assert.Equal(t, map[string]int64{"Query": 4, "BatchWriteItem": perfBatches(n), "PutItem": 1},
				perfCalls(metrics.Snapshot()))
		})
	}
}

// TestOperationCallCounts checks the single-call operations and what they add to the counts.
// Each case starts from a table of its own holding 40 flags at version 5.
func TestOperationCallCounts(t *testing.T) {
	features := ldstoreimpl.Features()
	newer, stored := testenv.PerfFlag(0, 6), testenv.PerfFlag(1, 5)
	cases := []struct {
		name         string
		op           func(t *testing.T, store subsystems.PersistentDataStore)
		calls        map[string]int64
		itemsWritten int64
		bytesWritten int64
	}{
		{
			name: "Upsert of a newer version",
			op: func(t *testing.T, store subsystems.PersistentDataStore) {
				updated, err := store.Upsert(features, newer.Key, newer.Item)
				require.NoError(t, err)
				assert.True(t, updated)
			},
			calls:        map[string]int64{"PutItem": 1},
			itemsWritten: 1,
			bytesWritten: perfRowBytes("features", newer.Key, newer.Item),
		},
		{
			name: "Upsert of a stale version",
			op: func(t *testing.T, store subsystems.PersistentDataStore) {
				stale := testenv.PerfFlag(1, 4)
				updated, err := store.Upsert(features, stale.Key, stale.Item)
				require.NoError(t, err)
				assert.False(t, updated)
			},
			calls: map[string]int64{"PutItem": 1},
		},
		{
			name: "Get",
			op: func(t *testing.T, store subsystems.PersistentDataStore) {
				item, err := store.Get(features, stored.Key)
				require.NoError(t, err)
				assert.Equal(t, stored.Item, item)
			},
			calls: map[string]int64{"GetItem": 1},
		},
		{
			name: "GetAll",
			op: func(t *testing.T, store subsystems.PersistentDataStore) {
				items, err := store.GetAll(features)
				require.NoError(t, err)
				assert.Len(t, items, 40)
			},
			calls: map[string]int64{"Query": 1},
		},
		{
			name:  "IsInitialized",
			op:    func(t *testing.T, store subsystems.PersistentDataStore) { assert.True(t, store.IsInitialized()) },
			calls: map[string]int64{"GetItem": 1},
		},
		{
			name:  "IsStoreAvailable",
			op:    func(t *testing.T, store subsystems.PersistentDataStore) { assert.True(t, store.IsStoreAvailable()) },
			calls: map[string]int64{"GetItem": 1},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			metrics := &lddynamodb.Metrics{}
			store, _ := testenv.Build(t, testenv.DataStore(testenv.NewTable(t)).Metrics(metrics))
			require.NoError(t, store.Init(testenv.PerfData(40, 0, 5)))
			metrics.Reset()
			c.op(t, store)
			got := metrics.Snapshot()
			assert.Equal(t, c.calls, perfCalls(got))
			assert.Equal(t, c.itemsWritten, got.ItemsWritten)
			assert.Equal(t, c.bytesWritten, got.BytesWritten)
			assert.Empty(t, perfCalls(lddynamodb.MetricsSnapshot{Calls: got.Errors}), "errors")
		})
	}
}

// TestCapacityUnitsAreCounted checks that the consumed capacity DynamoDB returns is added up.
// dynalite reports it as DynamoDB does: at least one write unit per row written (one per KB),
// half a read unit or more per read.
func TestCapacityUnitsAreCounted(t *testing.T) {
	table := testenv.NewTable(t)
	metrics := &lddynamodb.Metrics{}
	store, _ := testenv.Build(t, testenv.DataStore(table).Metrics(metrics))
	require.NoError(t, store.Init(testenv.PerfData(100, 10, 1)))
	written := metrics.Snapshot()
	assert.GreaterOrEqual(t, written.CapacityUnits, float64(written.ItemsWritten))

	metrics.Reset()
	_, err := store.Get(ldstoreimpl.Features(), "flag-00000")
	require.NoError(t, err)
	assert.Greater(t, metrics.Snapshot().CapacityUnits, 0.0)
}

// perfCapacityClient is a real client that counts its calls by whether they ask DynamoDB for the
// consumed capacity.
type perfCapacityClient struct {
	*dynamodb.Client
	mu    sync.Mutex
	asked map[bool]int
}

func (c *perfCapacityClient) record(mode types.ReturnConsumedCapacity) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asked[mode == types.ReturnConsumedCapacityTotal]++
}

func (c *perfCapacityClient) GetItem(ctx context.Context, in *dynamodb.GetItemInput,
	optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.record(in.ReturnConsumedCapacity)
	return c.Client.GetItem(ctx, in, optFns...)
}

func (c *perfCapacityClient) Query(ctx context.Context, in *dynamodb.QueryInput,
	optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	c.record(in.ReturnConsumedCapacity)
	return c.Client.Query(ctx, in, optFns...)
}

func (c *perfCapacityClient) PutItem(ctx context.Context, in *dynamodb.PutItemInput,
	optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c.record(in.ReturnConsumedCapacity)
	return c.Client.PutItem(ctx, in, optFns...)
}

func (c *perfCapacityClient) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput,
	optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	c.record(in.ReturnConsumedCapacity)
	return c.Client.BatchWriteItem(ctx, in, optFns...)
}

// TestOnlyMeteredStoresAskForCapacity checks that a store pays for counting only when it was
// given a Metrics: without one, no call asks DynamoDB for the consumed capacity.
func TestOnlyMeteredStoresAskForCapacity(t *testing.T) {
	for _, metered := range []bool{false, true} {
		t.Run(fmt.Sprintf("metered=%v", metered), func(t *testing.T) {
			client := &perfCapacityClient{Client: testenv.Client(), asked: map[bool]int{}}
			builder := lddynamodb.DataStore(testenv.NewTable(t)).DynamoClient(client)
			if metered {
				builder.Metrics(&lddynamodb.Metrics{})
			}
			store, _ := testenv.Build(t, builder)
			data := testenv.PerfData(30, 3, 1)
			require.NoError(t, store.Init(data))
			_, err := store.Get(ldstoreimpl.Features(), data[0].Items[0].Key)
			require.NoError(t, err)
			_, err = store.GetAll(ldstoreimpl.Features())
			require.NoError(t, err)
			_, err = store.Upsert(ldstoreimpl.Features(), data[0].Items[0].Key, data[0].Items[0].Item)
			require.NoError(t, err)
			// Init: 4 Query (2 namespaces, 2 parts namespaces), 3 BatchWriteItem (2 of flags, 1 of
			// segments), the marker; then Get, GetAll, Upsert.
			assert.Equal(t, map[bool]int{metered: 11}, client.asked)
		})
	}
}

// perfHookedClient is a real client that runs a hook once, just before the first BatchWriteItem:
// in Init, that is after every Query and before any write, the window in which another writer's
// changes are invisible to Init.
type perfHookedClient struct {
	*dynamodb.Client
	once        sync.Once
	beforeWrite func()
}

func (c *perfHookedClient) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput,
	optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	c.once.Do(c.beforeWrite)
	return c.Client.BatchWriteItem(ctx, in, optFns...)
}

// TestInitKeepsConcurrentNewerVersions tests the claim in store.Init: a row that Init skips
// because it already holds the new version keeps whatever newer version another writer puts
// there after Init's Query, where a rewrite would have replaced it. Rows that Init does write
// never end below the version Init wrote. The other writer is a second store on the same table,
// and writes exactly in the window between Init's Query and its writes.
func TestInitKeepsConcurrentNewerVersions(t *testing.T) {
	table := testenv.NewTable(t)
	features := ldstoreimpl.Features()
	other, _ := testenv.Build(t, testenv.DataStore(table))
	upsert := func(i, version int, want bool) {
		item := testenv.PerfFlag(i, version)
		updated, err := other.Upsert(features, item.Key, item.Item)
		require.NoError(t, err)
		assert.Equal(t, want, updated, "concurrent upsert of %s version %d", item.Key, version)
	}
	client := &perfHookedClient{Client: testenv.Client(), beforeWrite: func() {
		upsert(0, 30, true)  // unchanged by Init, raised by the other writer
		upsert(1, 5, false)  // unchanged by Init, a stale write that DynamoDB refuses
		upsert(2, 15, true)  // changed by Init to 20, raised to 15 first
		upsert(3, 30, true)  // changed by Init to 20, raised to 30 first
		upsert(4, 30, true)  // removed by Init, raised first
		upsert(90, 30, true) // not in either data set: a new key
	}}
	store, _ := testenv.Build(t, lddynamodb.DataStore(table).DynamoClient(client))

	flagsAt := func(versions map[int]int) []ldstoretypes.SerializedCollection {
		var items []ldstoretypes.KeyedSerializedItemDescriptor
		for i := 0; i < 10; i++ {
			if v, ok := versions[i]; ok {
				items = append(items, testenv.PerfFlag(i, v))
			}
		}
		return []ldstoretypes.SerializedCollection{{Kind: features, Items: items}}
	}
	initial := map[int]int{0: 10, 1: 10, 2: 10, 3: 10, 4: 10, 5: 10}
	writer, _ := testenv.Build(t, testenv.DataStore(table))
	require.NoError(t, writer.Init(flagsAt(initial)))

	// Flags 0, 1 and 5 unchanged, 2 and 3 changed, 4 removed, 6 added.
	require.NoError(t, store.Init(flagsAt(map[int]int{0: 10, 1: 10, 2: 20, 3: 20, 5: 10, 6: 10})))

	want := map[string]int{
		"flag-00000": 30, // kept: Init did not rewrite it
		"flag-00001": 10,
		"flag-00002": 20,
		"flag-00003": 20, // Init writes a changed row unconditionally, as a full rewrite would
		"flag-00005": 10,
		"flag-00006": 10,
		"flag-00090": 30, // written after the Query, so Init did not know to delete it
	}
	assert.Equal(t, want, perfStoredVersions(t, table, "features"))
	// Each row's item is the one written with its version, never a mix of two writes.
	for key, version := range want {
		item, err := store.Get(features, key)
		require.NoError(t, err)
		var i int
		_, err = fmt.Sscanf(key, "flag-%05d", &i)
		require.NoError(t, err)
		assert.Equal(t, testenv.PerfFlag(i, version).Item, item, key)
	}
}

// TestInitRacingUpserts runs a differential Init against a stream of Upserts from another store
// instance, with real concurrency, and checks the invariant that store.Init's comment relies on:
// afterwards every item that Init wrote or skipped is at Init's version or higher, and a higher
// version is one that the other writer wrote. Run with -race.
func TestInitRacingUpserts(t *testing.T) {
	const flags = 200
	table := testenv.NewTable(t)
	features := ldstoreimpl.Features()
	store, _ := testenv.Build(t, testenv.DataStore(table))
	other, _ := testenv.Build(t, testenv.DataStore(table))
	require.NoError(t, store.Init(testenv.PerfData(flags, 0, 10)))

	// Half the flags keep version 10, the other half move to 20.
	next := testenv.PerfWithChanges(testenv.PerfData(flags, 0, 10), []int{flags / 2, 0}, 20)
	initVersion := map[string]int{}
	for _, it := range next[0].Items {
		initVersion[it.Key] = it.Item.Version
	}

	// The other writer walks the flags with versions below, between and above Init's.
	written := map[string]map[int]bool{} // key to the versions its upserts wrote
	done := make(chan struct{})
	go func() {
		defer close(done)
		for round, version := range []int{5, 15, 30} {
			for i := 0; i < flags; i++ {
				item := testenv.PerfFlag((i+round*67)%flags, version)
				updated, err := other.Upsert(features, item.Key, item.Item)
				if !assert.NoError(t, err) {
					return
				}
				if updated {
					if written[item.Key] == nil {
						written[item.Key] = map[int]bool{}
					}
					written[item.Key][version] = true
				}
			}
		}
	}()
	require.NoError(t, store.Init(next))
	<-done

	stored := perfStoredVersions(t, table, "features")
	require.Len(t, stored, flags)
	for key, version := range stored {
		assert.GreaterOrEqual(t, version, initVersion[key], "%s fell below the version Init wrote", key)
		if version != initVersion[key] {
			assert.True(t, written[key][version], "%s is at version %d, which nobody wrote after Init", key, version)
		}
	}
}

// perfRecordingClient is a real client that records whether each read asked for strong consistency.
type perfRecordingClient struct {
	*dynamodb.Client
	mu         sync.Mutex
	consistent map[string][]bool // by operation
}

func (c *perfRecordingClient) record(op string, consistent *bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.consistent[op] = append(c.consistent[op], aws.ToBool(consistent))
}

func (c *perfRecordingClient) take() map[string][]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.consistent
	c.consistent = map[string][]bool{}
	return out
}

func (c *perfRecordingClient) Query(ctx context.Context, in *dynamodb.QueryInput,
	optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	c.record("Query", in.ConsistentRead)
	return c.Client.Query(ctx, in, optFns...)
}

func (c *perfRecordingClient) GetItem(ctx context.Context, in *dynamodb.GetItemInput,
	optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.record("GetItem", in.ConsistentRead)
	return c.Client.GetItem(ctx, in, optFns...)
}

// TestEventuallyConsistentReads checks which reads ConsistentReads(false) relaxes: the reads
// that serve flags, but never the Query of Init, which must see every row written so far: an
// eventually consistent one could miss a row written a moment ago (which Init would then leave
// behind) or still show one just deleted at the new version (which Init would then skip).
func TestEventuallyConsistentReads(t *testing.T) {
	features := ldstoreimpl.Features()
	for _, consistent := range []bool{true, false} {
		t.Run(fmt.Sprintf("ConsistentReads(%v)", consistent), func(t *testing.T) {
			client := &perfRecordingClient{Client: testenv.Client(), consistent: map[string][]bool{}}
			store, _ := testenv.Build(t, lddynamodb.DataStore(testenv.NewTable(t)).DynamoClient(client).ConsistentReads(consistent))
			require.NoError(t, store.Init(testenv.PerfData(3, 2, 1)))
			assert.Equal(t, map[string][]bool{"Query": {true, true, true, true}}, client.take(), "Init")

			_, err := store.Get(features, "flag-00000")
			require.NoError(t, err)
			_, err = store.GetAll(features)
			require.NoError(t, err)
			assert.True(t, store.IsInitialized())
			assert.Equal(t, map[string][]bool{"GetItem": {consistent, consistent}, "Query": {consistent}},
				client.take(), "Get, GetAll, IsInitialized")

			// The availability probe is the cheapest read there is, whatever ConsistentReads says.
			assert.True(t, store.IsStoreAvailable())
			assert.Equal(t, map[string][]bool{"GetItem": {false}}, client.take(), "IsStoreAvailable")
		})
	}
}

// TestInitStopsAtFirstFailedBatch makes DynamoDB refuse Init's first batch (two requests for
// one key, which it rejects as a whole) and checks that no other batch is sent, that Init
// returns the error, and that the marker is not written.
func TestInitStopsAtFirstFailedBatch(t *testing.T) {
	table := testenv.NewTable(t)
	metrics := &lddynamodb.Metrics{}
	store, _ := testenv.Build(t, testenv.DataStore(table).Metrics(metrics).BatchConcurrency(1))
	data := testenv.PerfData(100, 0, 1)
	data[0].Items[1] = testenv.PerfFlag(0, 2)

	err := store.Init(data)
	require.Error(t, err)
	assert.ErrorContains(t, err, table)
	got := metrics.Snapshot()
	assert.Equal(t, int64(1), got.Calls["BatchWriteItem"], "batches sent")
	assert.Equal(t, int64(1), got.Errors["BatchWriteItem"], "batches failed")
	assert.Zero(t, got.Calls["PutItem"], "marker writes")
	assert.False(t, store.IsInitialized())
}

// TestTombstoneCheckReadsTopLevelOnly covers the streaming check that decides, on every read,
// whether a small item is a tombstone: only the top-level "deleted" property counts.
func TestTombstoneCheckReadsTopLevelOnly(t *testing.T) {
	cases := []struct {
		name    string
		item    string
		deleted bool
	}{
		{"top level, after nested objects", `{"key":"f","rules":[{"deleted":false}],"version":3,"deleted":true}`, true},
		{"top level, with spaces", `{ "key" : "f" , "deleted" : true }`, true},
		{"only in a variation value", `{"key":"f","variations":[{"deleted":true}],"version":3,"deleted":false}`, false},
		{"only as a string", `{"key":"f","values":["deleted",true],"version":3}`, false},
		{"not a boolean", `{"key":"f","deleted":"true"}`, false},
		{"not JSON", `{"deleted":tru`, false},
		{"top level, with tabs and line breaks", "{\"key\":\"f\",\n\t\"deleted\"\t:\r\n true}", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, item, err := lddynamodb.DecodeRow(map[string]types.AttributeValue{
				"namespace": &types.AttributeValueMemberS{Value: "features"},
				"key":       &types.AttributeValueMemberS{Value: "f"},
				"version":   &types.AttributeValueMemberN{Value: "3"},
				"item":      &types.AttributeValueMemberS{Value: c.item},
			})
			require.NoError(t, err)
			assert.Equal(t, c.deleted, item.Deleted)
			if !c.deleted {
				assert.Equal(t, c.item, string(item.SerializedItem))
			}
		})
	}
}

// perfGate is a transport that counts the BatchWriteItem calls in flight and holds each one until
// as many are in flight as the store may send at once (or as there are batches left), so that a
// store which keeps to its limit always reaches it, and one that does not shows it, however
// loaded the machine is.
type perfGate struct {
	next    http.RoundTripper
	limit   int
	batches int // how many BatchWriteItem calls the Init makes

	mu                   sync.Mutex
	inFlight, done, most int
	stuck                bool // the limit was never reached
}

func (g *perfGate) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(req.Header.Get("X-Amz-Target"), ".BatchWriteItem") {
		return g.next.RoundTrip(req)
	}
	g.mu.Lock()
	g.inFlight++
	g.most = max(g.most, g.inFlight)
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.inFlight--
		g.done++
		g.mu.Unlock()
	}()
	// Only a store that sends fewer calls at once than its limit waits out this bound.
	deadline := time.Now().Add(30 * time.Second)
	for {
		g.mu.Lock()
		if !g.stuck && g.inFlight < min(g.limit, g.batches-g.done) && time.Now().After(deadline) {
			g.stuck = true // and from then on no call waits
		}
		full := g.stuck || g.inFlight >= min(g.limit, g.batches-g.done)
		g.mu.Unlock()
		if full {
			break
		}
		time.Sleep(time.Millisecond)
	}
	return g.next.RoundTrip(req)
}

// TestBatchConcurrencyLimit checks, at the transport, that Init never has more BatchWriteItem
// calls in flight than BatchConcurrency allows, and that it does use that many.
func TestBatchConcurrencyLimit(t *testing.T) {
	const flags = 500 // 20 batches
	for _, limit := range []int{1, 3, lddynamodb.DefaultBatchConcurrency} {
		t.Run(strconv.Itoa(limit), func(t *testing.T) {
			gate := &perfGate{next: http.DefaultTransport.(*http.Transport).Clone(), limit: limit, batches: int(perfBatches(flags))}
			t.Cleanup(gate.next.(*http.Transport).CloseIdleConnections)
			flagItems := make([]ldstoretypes.KeyedSerializedItemDescriptor, flags)
			for i := range flagItems {
				flagItems[i] = testenv.Flag(fmt.Sprintf("flag-%05d", i), 1, 0)
			}
			table := testenv.NewTable(t)
			builder := testenv.DataStore(table).ClientOptions(dynamodb.Options{HTTPClient: &http.Client{Transport: gate}})
			if limit != lddynamodb.DefaultBatchConcurrency {
				builder.BatchConcurrency(limit)
			}
			store, _ := testenv.Build(t, builder)
			require.NoError(t, store.Init(testenv.AllData(flagItems, nil)))
			assert.Len(t, perfStoredVersions(t, table, "features"), flags)
			assert.Equal(t, gate.batches, gate.done, "BatchWriteItem calls")
			assert.LessOrEqual(t, gate.most, limit, "BatchWriteItem calls in flight at once")
			assert.False(t, gate.stuck, "Init never had %d calls in flight", limit)
			t.Logf("BatchConcurrency %d: at most %d calls in flight", limit, gate.most)
		})
	}
}
