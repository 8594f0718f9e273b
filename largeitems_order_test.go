package lddynamodb_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/launchdarkly/go-sdk-common/v3/ldvalue"
	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldbuilders"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lddynamodb/lddynamodb"
	"github.com/lddynamodb/lddynamodb/internal/faults"
	"github.com/lddynamodb/lddynamodb/internal/hold"
	"github.com/lddynamodb/lddynamodb/internal/testenv"
	"github.com/lddynamodb/lddynamodb/internal/testenv/av"
)

// sameItem says whether two items are the same version with the same JSON.
func sameItem(a, b ldstoretypes.SerializedItemDescriptor) bool {
	return a.Version == b.Version && string(a.SerializedItem) == string(b.SerializedItem)
}

// TestLargeItemReadsRacingAnUpsert holds a read of a large item after DynamoDB answered one of its
// calls, runs an Upsert of a newer version to the end (which deletes the old version's parts),
// then lets the read go on: it must return one whole version, never an error or a mix.
func TestLargeItemReadsRacingAnUpsert(t *testing.T) {
	v1, v2 := testenv.NoisyFlag("big", 1, 900_000, 1), testenv.NoisyFlag("big", 2, 900_000, 2)
	for _, tc := range []struct {
		name string
		op   string // the call held
		nth  int    // which call of op (0: the first)
		all  bool   // GetAll instead of Get
		want ldstoretypes.SerializedItemDescriptor
	}{
		{"Get whose main row was read before the Upsert", "GetItem", 0, false, v2.Item},
		{"Get whose parts were read before the Upsert", "Query", 0, false, v1.Item},
		{"GetAll whose main rows were read before the Upsert", "Query", 0, true, v2.Item},
		{"GetAll whose parts were read before the Upsert", "Query", 1, true, v1.Item},
	} {
		t.Run(tc.name, func(t *testing.T) {
			table := testenv.NewTable(t)
			hc := hold.New(testenv.Client())
			store, _ := testenv.Build(t, lddynamodb.DataStore(table).DynamoClient(hc))
			require.NoError(t, store.Init(testenv.AllData([]ldstoretypes.KeyedSerializedItemDescriptor{v1}, nil)))
			var skip []*hold.Call
			for range tc.nth {
				skip = append(skip, hc.Next(tc.op))
			}
			held := hc.Next(tc.op)
			for _, s := range skip {
				s.Release()
			}
			got := make(chan ldstoretypes.SerializedItemDescriptor, 1)
			errs := make(chan error, 1)
			go func() {
				if tc.all {
					all, err := store.GetAll(features)
					errs <- err
					if len(all) == 1 {
						got <- all[0].Item
					}
					close(got)
					return
				}
				item, err := store.Get(features, "big")
				errs <- err
				got <- item
			}()
			<-held.Answered()
			updated, err := store.Upsert(features, "big", v2.Item)
			require.NoError(t, err)
			require.True(t, updated)
			assert.Equal(t, wantParts(t, table, features, "big"), partCount(t, table, features), "the old parts are gone")
			held.Release()
			require.NoError(t, <-errs)
			item := <-got
			assert.True(t, sameItem(tc.want, item), "got version %d, %d bytes; want version %d", item.Version, len(item.SerializedItem), tc.want.Version)
		})
	}
}

// TestLargeItemReadersSeeWholeVersions runs readers against repeated Upserts of a large item:
// every read returns exactly one of the versions written.
func TestLargeItemReadersSeeWholeVersions(t *testing.T) {
	table := testenv.NewTable(t)
	metrics := &lddynamodb.Metrics{}
	store, _ := testenv.Build(t, testenv.DataStore(table).Metrics(metrics))
	const versions = 10
	written := map[int]ldstoretypes.SerializedItemDescriptor{}
	for v := 1; v <= versions; v++ {
		written[v] = testenv.NoisyFlag("big", v, 600_000, int64(v)).Item
	}
	require.NoError(t, store.Init(testenv.AllData([]ldstoretypes.KeyedSerializedItemDescriptor{{Key: "big", Item: written[1]}}, nil)))

	done := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	reads := 0
	read := func(get func() (ldstoretypes.SerializedItemDescriptor, error)) {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			item, err := get()
			if !assert.NoError(t, err) {
				return
			}
			assert.True(t, sameItem(written[item.Version], item), "version %d is whole", item.Version)
			mu.Lock()
			reads++
			mu.Unlock()
		}
	}
	wg.Add(2)
	go read(func() (ldstoretypes.SerializedItemDescriptor, error) { return store.Get(features, "big") })
	go read(func() (ldstoretypes.SerializedItemDescriptor, error) {
		all, err := store.GetAll(features)
		if err != nil || len(all) != 1 {
			return ldstoretypes.SerializedItemDescriptor{}, err
		}
		return all[0].Item, nil
	})
	for v := 2; v <= versions; v++ {
		updated, err := store.Upsert(features, "big", written[v])
		require.NoError(t, err)
		require.True(t, updated)
	}
	close(done)
	wg.Wait()
	m := metrics.Snapshot()
	t.Logf("%d reads during %d Upserts: %v calls", reads, versions-1, m.Calls)
	assert.Equal(t, wantParts(t, table, features, "big"), partCount(t, table, features), "only the last version's parts are left")
}

// TestInitFailingHalfwayKeepsTheOldVersion fails an Init of new versions of large items after
// their parts are written and before their main rows are: readers still get the old versions
// whole; the next Init writes the new ones and removes the old parts, and the parts the failed
// Init left once they are older than the grace for writes in progress.
func TestInitFailingHalfwayKeepsTheOldVersion(t *testing.T) {
	table := testenv.NewTable(t)
	store, _ := testenv.Build(t, testenv.DataStore(table))
	v1, v2 := largeData(1, "a", "b"), largeData(2, "a", "b")
	require.NoError(t, store.Init(v1))
	oldParts := partCount(t, table, features)
	require.Positive(t, oldParts)

	inj := faults.New(1, nil)
	t.Cleanup(inj.CloseIdleConnections)
	// One sender, and only the large flags: their parts go in the first batch, their main rows,
	// which wait for the parts, in the second, which fails in a way no retry fixes.
	inj.Script("BatchWriteItem", faults.Pass, faults.ExpiredToken)
	failing, _ := testenv.Build(t, testenv.DataStore(table).ClientOptions(dynamodb.Options{}, inj.ClientOption()).BatchConcurrency(1))
	onlyLarge := testenv.AllData(v2[0].Items[1:], nil)
	require.Error(t, failing.Init(onlyLarge))
	require.Greater(t, partCount(t, table, features), oldParts, "the failed Init wrote parts")
	readAll(t, store, v1)

	require.NoError(t, store.Init(v2))
	readAll(t, store, v2)
	newParts := wantParts(t, table, features, "a") + wantParts(t, table, features, "b")
	assert.Greater(t, partCount(t, table, features), newParts, "the failed Init's parts are too young to remove")

	defer lddynamodb.SetOrphanPartsGrace(0)()
	require.NoError(t, store.Init(v2))
	assert.Equal(t, newParts, partCount(t, table, features), "the next Init removed them")
	readAll(t, store, v2)
}

// readAll checks that a store reads exactly the flags of data.
func readAll(t *testing.T, store subsystems.PersistentDataStore, data []ldstoretypes.SerializedCollection) {
	t.Helper()
	all, err := store.GetAll(features)
	require.NoError(t, err)
	require.Len(t, all, len(data[0].Items))
	byKey := map[string]ldstoretypes.SerializedItemDescriptor{}
	for _, it := range all {
		byKey[it.Key] = it.Item
	}
	for _, it := range data[0].Items {
		assert.True(t, sameItem(it.Item, byKey[it.Key]), "%s", it.Key)
		got, err := store.Get(features, it.Key)
		require.NoError(t, err)
		assert.True(t, sameItem(it.Item, got), "%s", it.Key)
	}
}

// TestInitRemovesOrphanParts: parts that no main row names (a crashed writer's) are removed by
// the next Init once older than the grace, and those of a row another SDK replaced with a plain
// one too.
func TestInitRemovesOrphanParts(t *testing.T) {
	defer lddynamodb.SetOrphanPartsGrace(0)()
	table := testenv.NewTable(t)
	store, _ := testenv.Build(t, testenv.DataStore(table))
	data := largeData(1, "a", "b")
	require.NoError(t, store.Init(data))
	// Another SDK writes a plain version of "a" over the large row.
	testenv.PutRow(t, table, testenv.ItemRow("features", "a", testenv.Flag("a", 5, 0).Item))
	// An orphan from a writer that crashed between its parts and its main row.
	crashed := testenv.Rows(t, table, lddynamodb.PartsNamespace("", features))[0]
	crashed["key"] = av.S("c/1/019000000000deadbeef/0000")
	testenv.PutRow(t, table, crashed)

	data[0].Items[1] = testenv.Flag("a", 5, 0) // as the other SDK stored it: unchanged for Init
	require.NoError(t, store.Init(data))
	assert.Equal(t, wantParts(t, table, features, "b"), partCount(t, table, features), "only b's parts are left")
	readAll(t, store, data)
}

// partWrites lists, in order, what each call did to large items: "parts" for a BatchWriteItem
// that put parts, "delete parts" for one that deleted them, "main" for a PutItem.
func partWrites(calls []faults.Call) []string {
	var out []string
	for _, c := range calls {
		switch c.Op {
		case "PutItem":
			out = append(out, "main")
		case "BatchWriteItem":
			kind := "parts"
			if c.Writes[0].Delete {
				kind = "delete parts"
			}
			out = append(out, kind)
		}
	}
	return out
}

// TestUpsertWritesPartsBeforeTheMainRow checks the order of an Upsert's calls on the wire: the new
// parts, answered before the main row is sent; the old parts deleted after it was answered; and
// a refused Upsert's own parts deleted after its refusal.
func TestUpsertWritesPartsBeforeTheMainRow(t *testing.T) {
	table := testenv.NewTable(t)
	inj := faults.New(1, nil)
	t.Cleanup(inj.CloseIdleConnections)
	store, _ := testenv.Build(t, testenv.DataStore(table).ClientOptions(dynamodb.Options{}, inj.ClientOption()))
	require.NoError(t, store.Init(largeData(1, "big")))

	for _, tc := range []struct {
		name    string
		version int
		updated bool
	}{{"newer", 2, true}, {"older, refused", 1, false}} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(inj.Calls())
			updated, err := store.Upsert(features, "big", testenv.NoisyFlag("big", tc.version, 900_000, 9).Item)
			require.NoError(t, err)
			require.Equal(t, tc.updated, updated)
			calls := inj.Calls()[before:]
			require.Equal(t, []string{"parts", "main", "delete parts"}, partWrites(calls))
			assert.False(t, calls[1].Sent.Before(calls[0].Answered), "the main row is sent once its parts are written")
			assert.False(t, calls[2].Sent.Before(calls[1].Answered), "parts are deleted once the main row is answered")
			assert.Equal(t, wantParts(t, table, features, "big"), partCount(t, table, features))
		})
	}
}

// TestInitWritesPartsBeforeTheirMainRows sends Inits of large items (a large segment that a
// flag uses, and large flags) through calls answered with jittered latency: no main row may go
// out before every one of its parts was answered, no delete before every put was.
func TestInitWritesPartsBeforeTheirMainRows(t *testing.T) {
	table := testenv.NewTable(t)
	inj := faults.New(1, nil)
	t.Cleanup(inj.CloseIdleConnections)
	inj.SetAll(faults.Fault{Jitter: 8 * time.Millisecond, UnprocessedRate: 0.3})
	store, _ := testenv.Build(t, testenv.DataStore(table).ClientOptions(dynamodb.Options{}, inj.ClientOption()))
	for version := 1; version <= 2; version++ {
		data := largeData(version, "a", "b", "c")
		segment, _ := testenv.ListSegment("s", version, 26000, int64(version))
		data[1].Items = append(data[1].Items, segment)
		data[0].Items = append(data[0].Items, flagUsingSegment("uses-s", version, "s"))
		before := len(inj.Calls())
		require.NoError(t, store.Init(data))
		calls := inj.Calls()[before:]
		partsDone := map[string]time.Time{} // by part key prefix "KEY/", when the last was answered
		var lastPut time.Time
		for _, c := range calls {
			for _, w := range c.Writes {
				if w.Held || w.Delete {
					continue
				}
				lastPut = maxTime(lastPut, c.Answered)
				if w.Namespace == "features:parts" || w.Namespace == "segments:parts" {
					item := w.Key[:strings.Index(w.Key, "/")]
					partsDone[w.Namespace+item] = maxTime(partsDone[w.Namespace+item], c.Answered)
				}
			}
		}
		require.Len(t, partsDone, 4, "a, b, c and s were written in parts")
		for _, c := range calls {
			for _, w := range c.Writes {
				if w.Delete {
					assert.False(t, c.Sent.Before(lastPut), "delete of %s %s sent before the last put was answered", w.Namespace, w.Key)
					continue
				}
				if done, ok := partsDone[w.Namespace+":parts"+w.Key]; ok {
					assert.False(t, c.Sent.Before(done), "main row %s sent before its parts were written", w.Key)
				}
			}
		}
		readAll(t, store, data)
		assert.Equal(t, 4, len(partsDone))
	}
	assert.Equal(t, wantParts(t, table, features, "a")+wantParts(t, table, features, "b")+wantParts(t, table, features, "c"),
		partCount(t, table, features), "the first Init's parts were deleted")
}

// flagUsingSegment is a flag with a rule that matches a segment.
func flagUsingSegment(key string, version int, segment string) ldstoretypes.KeyedSerializedItemDescriptor {
	flag := ldbuilders.NewFlagBuilder(key).Version(version).On(true).Variations(ldvalue.Bool(false), ldvalue.Bool(true)).
		FallthroughVariation(0).AddRule(ldbuilders.NewRuleBuilder().ID("r").Variation(1).Clauses(ldbuilders.SegmentMatchClause(segment))).Build()
	return ldstoretypes.KeyedSerializedItemDescriptor{Key: key, Item: ldstoretypes.SerializedItemDescriptor{
		Version: version, SerializedItem: features.Serialize(ldstoretypes.ItemDescriptor{Version: version, Item: &flag})}}
}

// TestStaleIfErrorKeepsLargeItems: a large item read or written before an outage is served whole
// during it, by Get and GetAll, also when only the Query of its parts fails.
func TestStaleIfErrorKeepsLargeItems(t *testing.T) {
	table := testenv.NewTable(t)
	inj := faults.New(1, nil)
	t.Cleanup(inj.CloseIdleConnections)
	store, _ := testenv.Build(t, testenv.DataStore(table).ClientOptions(dynamodb.Options{}, inj.ClientOption(),
		func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 }).StaleIfError(time.Hour))
	data := largeData(1, "big")
	require.NoError(t, store.Init(data))
	v2 := testenv.NoisyFlag("big", 2, 900_000, 2)
	_, err := store.Upsert(features, "big", v2.Item)
	require.NoError(t, err)
	data[0].Items[1] = v2

	// The main row is read, the Query of its parts fails: the Get is answered from the layer.
	inj.Set("Query", faults.Fault{ErrorRate: 1})
	got, err := store.Get(features, "big")
	require.NoError(t, err)
	assert.True(t, sameItem(v2.Item, got), "the version written before")

	inj.SetAll(faults.Fault{Outage: true})
	readAll(t, store, data)
}

// TestBrokenPartSets: a large item whose part is gone (deleted by hand, say) or corrupt is a
// *RowError naming the item, after reads again, for Get and GetAll. The next Init of the same
// data rewrites an item whose parts are missing, though its version and digest are unchanged
// (it reads the keys of the parts, not their data, so a corrupt part stays until a new version).
func TestBrokenPartSets(t *testing.T) {
	defer lddynamodb.SetOrphanPartsGrace(0)()
	table := testenv.NewTable(t)
	store, _ := testenv.Build(t, testenv.DataStore(table))
	data := largeData(1, "big")
	partsNamespace := lddynamodb.PartsNamespace("", features)
	for _, tc := range []struct {
		name     string
		break_   func(part map[string]types.AttributeValue)
		want     string
		repaired bool
	}{
		{"a part missing", func(part map[string]types.AttributeValue) {
			_, err := testenv.Client().DeleteItem(context.Background(), &dynamodb.DeleteItemInput{TableName: &table,
				Key: map[string]types.AttributeValue{"namespace": part["namespace"], "key": part["key"]}})
			require.NoError(t, err)
		}, "large item parts missing after 4 reads", true},
		{"a part corrupt", func(part map[string]types.AttributeValue) {
			data := part["data"].(*types.AttributeValueMemberB).Value
			part["data"] = &types.AttributeValueMemberB{Value: data[:len(data)-1]}
			testenv.PutRow(t, table, part)
		}, "large item data", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, store.Init(data))
			tc.break_(testenv.Rows(t, table, partsNamespace)[0])
			_, err := store.Get(features, "big")
			var rowErr *lddynamodb.RowError
			require.ErrorAs(t, err, &rowErr)
			assert.Equal(t, "big", rowErr.Key)
			assert.Contains(t, err.Error(), tc.want)
			_, err = store.GetAll(features)
			require.ErrorAs(t, err, &rowErr)
			assert.Equal(t, "big", rowErr.Key)

			if tc.repaired {
				require.NoError(t, store.Init(data))
				readAll(t, store, data)
				assert.Equal(t, wantParts(t, table, features, "big"), partCount(t, table, features))
			}
			require.NoError(t, store.Init(testenv.AllData(nil, nil)))
		})
	}
}
