package benchmarks

import (
	"fmt"
	"testing"

	"github.com/launchdarkly/go-server-sdk/v7/subsystems"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoreimpl"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"

	"github.com/lddynamodb/lddynamodb"
	"github.com/lddynamodb/lddynamodb/internal/testenv"
)

// Every benchmark runs once per network and store, named .../net=N/store=S, so that
// `benchstat -col /store` puts the stores side by side: lddynamodb and the official store with
// their defaults, and for Get, GetAll and Upsert also lddynamodb counting its work in a Metrics,
// and recording OpenTelemetry metrics with a no-op and with the SDK's meter provider. Besides
// ns/op, B/op and allocs/op each reports cpu-ns/op (the benchmark process's user and system CPU
// time, not the server's), calls/op and rows-written/op (counted on the wire for both stores
// alike), and Init reports dropped-rows/op: rows that did not hold what Init was given when it
// returned, read back from the table.

// BenchmarkInit measures Init of 5,000 and 10,000 items (about 1 KB each, 90 % flags): cold into
// an empty table, again with nothing changed, and again with 10 % of the items changed.
func BenchmarkInit(b *testing.B) {
	for _, n := range []int{5000, 10000} {
		data := testenv.PerfData(n-n/10, n/10, 1)
		changed := testenv.PerfWithChanges(data, []int{len(data[0].Items) / 10, len(data[1].Items) / 10}, 2)
		b.Run(fmt.Sprintf("items=%d/init=cold", n), func(b *testing.B) {
			eachPeer(b, []network{direct, slow, partial}, []peer{ours, theirs}, func(b *testing.B, p peer, net network) {
				benchColdInit(b, p, net, data)
			})
		})
		b.Run(fmt.Sprintf("items=%d/init=unchanged", n), func(b *testing.B) {
			eachPeer(b, []network{direct, slow, partial}, []peer{ours, theirs}, func(b *testing.B, p peer, net network) {
				benchReInit(b, p, net, data, data)
			})
		})
		// Alternating between the two data sets changes the same 10 % every time.
		b.Run(fmt.Sprintf("items=%d/init=changed-10%%", n), func(b *testing.B) {
			eachPeer(b, []network{direct, slow, partial}, []peer{ours, theirs}, func(b *testing.B, p peer, net network) {
				benchReInit(b, p, net, data, changed, data)
			})
		})
	}
}

// benchColdInit times Init of data into a new empty table, once per iteration.
func benchColdInit(b *testing.B, p peer, net network, data []ldstoretypes.SerializedCollection) {
	httpClient, count := net.client()
	m := newMeter(b)
	dropped := 0
	for i := 0; i < b.N; i++ {
		table := testenv.NewTable(b)
		store := build(b, p, table, httpClient)
		dropped += m.init(store, table, data)
		_ = store.Close()
		deleteTable(b, table)
	}
	m.report(count)
	b.ReportMetric(float64(dropped)/float64(b.N), "dropped-rows/op")
}

// benchReInit times Init of a table that already holds initial: iteration i writes
// versions[i%len(versions)].
func benchReInit(b *testing.B, p peer, net network, initial []ldstoretypes.SerializedCollection, versions ...[]ldstoretypes.SerializedCollection) {
	table := filledTable(b, initial)
	httpClient, count := net.client()
	store := build(b, p, table, httpClient)
	m := newMeter(b)
	dropped := 0
	for i := 0; i < b.N; i++ {
		dropped += m.init(store, table, versions[i%len(versions)])
	}
	m.report(count)
	b.ReportMetric(float64(dropped)/float64(b.N), "dropped-rows/op")
}

// init times one Init of data by store, and returns the rows it dropped.
func (m *meter) init(store subsystems.PersistentDataStore, table string, data []ldstoretypes.SerializedCollection) int {
	m.start()
	err := store.Init(data)
	m.stop()
	if err != nil {
		m.b.Fatalf("init: %v", err)
	}
	return droppedRows(m.b, table, data)
}

// droppedRows reads the table back and counts the items of data whose row is missing or holds
// another version or JSON, and the rows of their kinds that data does not have.
func droppedRows(b *testing.B, table string, data []ldstoretypes.SerializedCollection) int {
	b.Helper()
	dropped := 0
	for _, coll := range data {
		rows, err := testenv.ReadRows(table, lddynamodb.Namespace("", coll.Kind))
		if err != nil {
			b.Fatalf("reading back %s: %v", coll.Kind, err)
		}
		stored := map[string]ldstoretypes.SerializedItemDescriptor{}
		for _, row := range rows {
			key, item, err := lddynamodb.DecodeRow(row)
			if err != nil {
				b.Fatalf("reading back %s: %v", coll.Kind, err)
			}
			stored[key] = item
		}
		for _, it := range coll.Items {
			got, ok := stored[it.Key]
			if !ok || got.Version != it.Item.Version || string(got.SerializedItem) != string(it.Item.SerializedItem) {
				dropped++
			}
			delete(stored, it.Key)
		}
		dropped += len(stored)
	}
	return dropped
}

// benchCalls times operations of each store, on each network but partial batches, over a table
// that holds data. prepare runs untimed, for each store, and returns the operation to time:
// iteration i calls it with i.
func benchCalls(b *testing.B, data []ldstoretypes.SerializedCollection,
	prepare func(b *testing.B, store subsystems.PersistentDataStore) func(i int)) {
	eachPeer(b, []network{direct, slow}, []peer{ours, theirs, metered, otelNoop, otelSDK}, func(b *testing.B, p peer, net network) {
		httpClient, count := net.client()
		op := prepare(b, build(b, p, filledTable(b, data), httpClient))
		m := newMeter(b)
		m.start()
		for i := 0; i < b.N; i++ {
			op(i)
		}
		m.stop()
		m.report(count)
	})
}

// BenchmarkGet measures Get of one flag out of 1,000.
func BenchmarkGet(b *testing.B) {
	data := testenv.PerfData(1000, 100, 10)
	benchCalls(b, data, func(b *testing.B, store subsystems.PersistentDataStore) func(int) {
		return func(i int) {
			key := data[0].Items[i%len(data[0].Items)].Key
			item, err := store.Get(ldstoreimpl.Features(), key)
			if err != nil || item.Version != 10 {
				b.Fatalf("get %s: version %d, error %v", key, item.Version, err)
			}
		}
	})
}

// BenchmarkGetAll measures GetAll of 100 and of 1,000 flags (about 1 MB, one Query page).
func BenchmarkGetAll(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("flags=%d", n), func(b *testing.B) {
			benchCalls(b, testenv.PerfData(n, 0, 10), func(b *testing.B, store subsystems.PersistentDataStore) func(int) {
				return func(int) {
					items, err := store.GetAll(ldstoreimpl.Features())
					if err != nil || len(items) != n {
						b.Fatalf("get all: %d items, error %v", len(items), err)
					}
				}
			})
		})
	}
}

// BenchmarkUpsert measures Upsert of a flag newer than the stored one (written) and of one
// older (refused by DynamoDB's condition, no row written).
func BenchmarkUpsert(b *testing.B) {
	data := testenv.PerfData(1000, 100, 10)
	b.Run("version=newer", func(b *testing.B) {
		benchCalls(b, data, func(b *testing.B, store subsystems.PersistentDataStore) func(int) {
			// Each iteration raises one of the flags by one version, as a stream of updates would.
			items := make([]ldstoretypes.KeyedSerializedItemDescriptor, b.N)
			for i := range items {
				items[i] = testenv.PerfFlag(i%1000, 11+i/1000)
			}
			return func(i int) {
				it := items[i]
				updated, err := store.Upsert(ldstoreimpl.Features(), it.Key, it.Item)
				if err != nil || !updated {
					b.Fatalf("upsert %s version %d: updated %v, error %v", it.Key, it.Item.Version, updated, err)
				}
			}
		})
	})
	b.Run("version=stale", func(b *testing.B) {
		stale := testenv.PerfFlag(0, 9)
		benchCalls(b, data, func(b *testing.B, store subsystems.PersistentDataStore) func(int) {
			return func(int) {
				updated, err := store.Upsert(ldstoreimpl.Features(), stale.Key, stale.Item)
				if err != nil || updated {
					b.Fatalf("upsert of a stale version: updated %v, error %v", updated, err)
				}
			}
		})
	})
}
