package lddynamodb_test

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoreimpl"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
	"github.com/stretchr/testify/require"

	"github.com/lddynamodb/lddynamodb"
	"github.com/lddynamodb/lddynamodb/internal/faults"
	"github.com/lddynamodb/lddynamodb/internal/testenv"
)

// The benchmarks run against the local DynamoDB (or DYNAMODB_ENDPOINT), so their times measure
// the server as much as the store: compare the DynamoDB work per operation they report
// (calls/op, items-written/op, bytes-written/op, capacity-units/op), which carries over to AWS.
// Each sub-benchmark gets its own store and Metrics, and counts only the timed operations.

var benchTables atomic.Int64

// benchTable creates an empty table and returns it with a function that deletes it, so that a
// benchmark that needs a fresh table per iteration does not keep them all in memory.
func benchTable(b *testing.B) (string, func()) {
	b.Helper()
	name := fmt.Sprintf("lddynamodb-bench-%d-%d", time.Now().UnixNano(), benchTables.Add(1))
	client := testenv.Client()
	require.NoError(b, lddynamodb.CreateTable(context.Background(), client, name))
	return name, func() {
		_, err := client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
		require.NoError(b, err)
	}
}

// reportWork reports the DynamoDB work counted in m per benchmark iteration.
func reportWork(b *testing.B, m *lddynamodb.Metrics) {
	s := m.Snapshot()
	n := float64(b.N)
	b.ReportMetric(float64(s.TotalCalls())/n, "calls/op")
	ops := make([]string, 0, len(s.Calls))
	for op := range s.Calls {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	for _, op := range ops {
		b.ReportMetric(float64(s.Calls[op])/n, op+"/op")
	}
	b.ReportMetric(float64(s.ItemsWritten)/n, "items-written/op")
	b.ReportMetric(float64(s.BytesWritten)/n, "bytes-written/op")
	b.ReportMetric(s.CapacityUnits/n, "capacity-units/op")
	if errs := (lddynamodb.MetricsSnapshot{Calls: s.Errors}).TotalCalls(); errs != 0 {
		b.Fatalf("%d DynamoDB calls failed: %v", errs, s.Errors)
	}
}

// benchData is n items, 90 % flags and 10 % segments, every item at the given version.
func benchData(n, version int) []ldstoretypes.SerializedCollection {
	return testenv.PerfData(n-n/10, n/10, version)
}

// benchColdInit times Init of data into a new empty table, once per iteration, by a store with
// the given options.
func benchColdInit(b *testing.B, data []ldstoretypes.SerializedCollection, options func(*lddynamodb.DataStoreBuilder)) {
	m := &lddynamodb.Metrics{}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		table, drop := benchTable(b)
		builder := testenv.DataStore(table).Metrics(m)
		options(builder)
		store, _ := testenv.Build(b, builder)
		b.StartTimer()
		err := store.Init(data)
		b.StopTimer()
		require.NoError(b, err)
		require.NoError(b, store.Close())
		drop()
		b.StartTimer()
	}
	b.StopTimer()
	reportWork(b, m)
}

// benchReInit times Init of a table that already holds initial: iteration i writes
// versions[i%len(versions)], so that each iteration changes the same share of the items.
func benchReInit(b *testing.B, initial []ldstoretypes.SerializedCollection, versions ...[]ldstoretypes.SerializedCollection) {
	table := testenv.NewTable(b)
	writer, _ := testenv.Build(b, testenv.DataStore(table))
	require.NoError(b, writer.Init(initial))
	m := &lddynamodb.Metrics{}
	store, _ := testenv.Build(b, testenv.DataStore(table).Metrics(m))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		require.NoError(b, store.Init(versions[i%len(versions)]))
	}
	b.StopTimer()
	reportWork(b, m)
}

// BenchmarkInit measures Init of 1,000 and 10,000 items (about 1 KB each): cold into an empty
// table, and again over the same table with nothing or 10 % of the items changed.
func BenchmarkInit(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		data := benchData(n, 1)
		changed := testenv.PerfWithChanges(data, []int{len(data[0].Items) / 10, len(data[1].Items) / 10}, 2)
		b.Run(fmt.Sprintf("items=%d/cold", n), func(b *testing.B) {
			benchColdInit(b, data, func(*lddynamodb.DataStoreBuilder) {})
		})
		b.Run(fmt.Sprintf("items=%d/unchanged", n), func(b *testing.B) {
			benchReInit(b, data, data)
		})
		// Alternating between the two data sets changes the same 10 % every time.
		b.Run(fmt.Sprintf("items=%d/changed=10%%", n), func(b *testing.B) {
			benchReInit(b, data, changed, data)
		})
	}
}

// BenchmarkInitBatchConcurrency measures a cold Init of 10,000 items with BatchWriteItem calls
// one at a time and with more in flight: the speedup of BatchConcurrency. The local server
// answers in about a millisecond, where DynamoDB in a region takes 5-10 ms, so the rtt=10ms
// cases add 10 ms to every call to show the speedup where latency, not the server, dominates.
func BenchmarkInitBatchConcurrency(b *testing.B) {
	data := benchData(10000, 1)
	for _, rtt := range []time.Duration{0, 10 * time.Millisecond} {
		for _, concurrency := range []int{1, 2, 4, lddynamodb.DefaultBatchConcurrency, 16} {
			b.Run(fmt.Sprintf("items=10000/rtt=%v/concurrency=%d", rtt, concurrency), func(b *testing.B) {
				benchColdInit(b, data, func(d *lddynamodb.DataStoreBuilder) {
					d.BatchConcurrency(concurrency)
					if rtt > 0 {
						d.ClientOptions(dynamodb.Options{}, func(o *dynamodb.Options) { o.HTTPClient = slowHTTPClient{o.HTTPClient, rtt} })
					}
				})
			})
		}
	}
}

// slowHTTPClient delays every request, like the round trip to a DynamoDB region.
type slowHTTPClient struct {
	inner dynamodb.HTTPClient
	delay time.Duration
}

func (c slowHTTPClient) Do(req *http.Request) (*http.Response, error) {
	select {
	case <-req.Context().Done():
		return nil, req.Context().Err()
	case <-time.After(c.delay):
	}
	return c.inner.Do(req)
}

// benchStore is a store over a table initialized with 1,000 items, counting into m.
func benchStore(b *testing.B, m *lddynamodb.Metrics) subsystems.PersistentDataStore {
	table := testenv.NewTable(b)
	writer, _ := testenv.Build(b, testenv.DataStore(table))
	require.NoError(b, writer.Init(testenv.PerfData(1000, 100, 10)))
	store, _ := testenv.Build(b, testenv.DataStore(table).Metrics(m))
	return store
}

// BenchmarkGet measures Get of one flag out of 1,000.
func BenchmarkGet(b *testing.B) {
	m := &lddynamodb.Metrics{}
	store := benchStore(b, m)
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = testenv.PerfFlag(i, 10).Key
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		item, err := store.Get(ldstoreimpl.Features(), keys[i%len(keys)])
		if err != nil || item.Version != 10 {
			b.Fatalf("get %s: version %d, error %v", keys[i%len(keys)], item.Version, err)
		}
	}
	b.StopTimer()
	reportWork(b, m)
}

// BenchmarkGetAll measures GetAll of 1,000 flags (about 1 MB, one Query page).
func BenchmarkGetAll(b *testing.B) {
	m := &lddynamodb.Metrics{}
	store := benchStore(b, m)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		items, err := store.GetAll(ldstoreimpl.Features())
		if err != nil || len(items) != 1000 {
			b.Fatalf("get all: %d items, error %v", len(items), err)
		}
	}
	b.StopTimer()
	reportWork(b, m)
}

// BenchmarkUpsert measures Upsert of a flag newer than the stored one (written) and of one
// older (refused by DynamoDB's condition, no write).
func BenchmarkUpsert(b *testing.B) {
	features := ldstoreimpl.Features()
	b.Run("newer", func(b *testing.B) {
		m := &lddynamodb.Metrics{}
		store := benchStore(b, m)
		// Each iteration raises one of the flags by one version, as a stream of updates would.
		items := make([]ldstoretypes.KeyedSerializedItemDescriptor, b.N)
		for i := range items {
			items[i] = testenv.PerfFlag(i%1000, 11+i/1000)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for _, it := range items {
			updated, err := store.Upsert(features, it.Key, it.Item)
			if err != nil || !updated {
				b.Fatalf("upsert %s version %d: updated %v, error %v", it.Key, it.Item.Version, updated, err)
			}
		}
		b.StopTimer()
		reportWork(b, m)
	})
	b.Run("stale", func(b *testing.B) {
		m := &lddynamodb.Metrics{}
		store := benchStore(b, m)
		stale := testenv.PerfFlag(0, 9)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			updated, err := store.Upsert(features, stale.Key, stale.Item)
			if err != nil || updated {
				b.Fatalf("upsert of a stale version: updated %v, error %v", updated, err)
			}
		}
		b.StopTimer()
		reportWork(b, m)
	})
}

// flatFlags is n small flags that use nothing, so that Init has no order to keep.
func flatFlags(n int) []ldstoretypes.SerializedCollection {
	flags := make([]ldstoretypes.KeyedSerializedItemDescriptor, n)
	for i := range flags {
		flags[i] = testenv.Flag(fmt.Sprintf("flag-%05d", i), 1, 0)
	}
	return testenv.AllData(flags, nil)
}

// withoutUses is data with the same items, keys and sizes, but whose references name items
// that do not exist, so that Init has no order to keep: the unordered baseline of data.
func withoutUses(data []ldstoretypes.SerializedCollection) []ldstoretypes.SerializedCollection {
	out := make([]ldstoretypes.SerializedCollection, len(data))
	for k, coll := range data {
		items := make([]ldstoretypes.KeyedSerializedItemDescriptor, len(coll.Items))
		for i, it := range coll.Items {
			text := strings.ReplaceAll(string(it.Item.SerializedItem), `"segment-`, `"unknown-`)
			text = strings.ReplaceAll(text, `"key":"flag-`, `"key":"unknown`)
			it.Item.SerializedItem = []byte(text)
			items[i] = it
		}
		out[k] = ldstoretypes.SerializedCollection{Kind: coll.Kind, Items: items}
	}
	return out
}

// BenchmarkInitOrder measures a cold Init with 10 ms added to every call, as in a region: of
// 5,000 flat flags one batch at a time and BatchConcurrency at once (the speedup of concurrent
// batches), and of the dependent data set (200 segments, half using another in chains three
// deep; 3,000 flags, a third matching segments, prerequisite chains five deep) written in the
// SDK's order, next to the same items with the references cut (unordered: nothing to wait for).
func BenchmarkInitOrder(b *testing.B) {
	slow := func(concurrency int) func(*lddynamodb.DataStoreBuilder) {
		return func(d *lddynamodb.DataStoreBuilder) {
			d.BatchConcurrency(concurrency).
				ClientOptions(dynamodb.Options{}, func(o *dynamodb.Options) { o.HTTPClient = slowHTTPClient{o.HTTPClient, 10 * time.Millisecond} })
		}
	}
	flat := flatFlags(5000)
	b.Run("flat=5000/concurrency=1", func(b *testing.B) { benchColdInit(b, flat, slow(1)) })
	b.Run(fmt.Sprintf("flat=5000/concurrency=%d", lddynamodb.DefaultBatchConcurrency), func(b *testing.B) {
		benchColdInit(b, flat, slow(lddynamodb.DefaultBatchConcurrency))
	})
	deep, _ := testenv.DependentData(1, 200, 3000, 1)
	b.Run("dependent/ordered", func(b *testing.B) { benchColdInit(b, deep, slow(lddynamodb.DefaultBatchConcurrency)) })
	b.Run("dependent/unordered", func(b *testing.B) {
		benchColdInit(b, withoutUses(deep), slow(lddynamodb.DefaultBatchConcurrency))
	})
}

// pacedInit runs a cold Init of data into a new table through a fault injector that setup
// configures, and returns how long it took, how many writes went on the wire (the AWS SDK's
// retries included), the BatchWriteItem calls and the items lost.
func pacedInit(b *testing.B, seed int64, data []ldstoretypes.SerializedCollection, setup func(*faults.Injector)) (elapsed time.Duration, sent, calls, lost int) {
	b.Helper()
	table, drop := benchTable(b)
	defer drop()
	inj := faults.New(seed, nil)
	setup(inj)
	store, _ := testenv.Build(b, testenv.DataStore(table).ClientOptions(dynamodb.Options{}, inj.ClientOption()))
	defer func() { require.NoError(b, store.Close()) }()
	start := time.Now()
	require.NoError(b, store.Init(data))
	elapsed = time.Since(start)
	for _, c := range inj.Calls() {
		sent += len(c.Writes)
		if c.Op == "BatchWriteItem" {
			calls++
		}
	}
	return elapsed, sent, calls, testenv.Lost(b, table, data)
}

// pacedResults adds up the runs of a pacing benchmark and reports them per run: the time against
// a reference (x-floor or x-nofault), the share of items sent more than once, BatchWriteItem
// calls and items lost.
type pacedResults struct {
	items                   int
	elapsed, reference      time.Duration
	runs, sent, calls, lost int
}

func (r *pacedResults) add(elapsed, reference time.Duration, sent, calls, lost int) {
	r.runs++
	r.elapsed += elapsed
	r.reference += reference
	r.sent += sent
	r.calls += calls
	r.lost += lost
}

func (r *pacedResults) report(b *testing.B, versus string) {
	runs := float64(r.runs)
	b.ReportMetric(r.reference.Seconds()/runs, versus+"-s")
	b.ReportMetric(r.elapsed.Seconds()/r.reference.Seconds(), "x-"+versus)
	b.ReportMetric(float64(r.sent-r.items*r.runs)/float64(r.items*r.runs)*100, "%resent")
	b.ReportMetric(float64(r.calls)/runs, "BatchWriteItem/op")
	b.ReportMetric(float64(r.lost)/runs, "lost/op")
	if r.lost > 0 {
		b.Errorf("%d items lost", r.lost)
	}
}

// limitedInit runs pacedInit under a write limit that follows schedule, and adds it to r with
// its floor: the least time under the schedule of a sender as fast as the same Init with no
// limit, run just before (on a busy machine, the time to send the first second's units at all
// is part of the floor).
func limitedInit(b *testing.B, r *pacedResults, seed int64, data []ldstoretypes.SerializedCollection, schedule faults.Schedule) {
	clean, _, _, _ := pacedInit(b, seed, data, func(*faults.Injector) {})
	elapsed, sent, calls, lost := pacedInit(b, seed, data, func(inj *faults.Injector) { inj.SetWriteSchedule(schedule...) })
	r.add(elapsed, schedule.FloorAt(float64(r.items), float64(r.items)/clean.Seconds()), sent, calls, lost)
}

// BenchmarkInitPaced measures a cold Init of 6,000 small flags (one write unit each) against a
// limit of 1,000 write units a second on the partition key, as DynamoDB has: the bucket starts
// with one second's units, so the floor is 5 s (a little more for a slow sender). It reports
// the floor, the time against it, the share of items sent more than once (on the wire, the AWS
// SDK's retries included) and calls.
func BenchmarkInitPaced(b *testing.B) {
	const n = 6000
	data := flatFlags(n)
	r := pacedResults{items: n}
	for i := 0; i < b.N; i++ {
		limitedInit(b, &r, int64(i), data, faults.Schedule{{At: 0, Rate: 1000}})
	}
	r.report(b, "floor")
}

// BenchmarkInitPacing measures a cold Init of 5,000 small flags (one write unit each) where
// DynamoDB hands writes back for different reasons, against what the best sender could do:
//   - unrelated: 10 % of BatchWriteItem calls handed back in part whatever the send rate, and no
//     write limit, against the same Init with no faults, run alongside (x-nofault);
//   - steady, falling, rising: a write limit per partition key of 1,000 units a second, of 2,000
//     falling to 500 after 1 s, and of 400 rising to 2,000 after 2 s, against the floor of the
//     schedule for a sender as fast as the same Init with no limit (x-floor).
//
// It reports the share of items sent more than once, BatchWriteItem calls and items lost.
func BenchmarkInitPacing(b *testing.B) {
	const n = 5000
	data := flatFlags(n)
	b.Run("unrelated=10%", func(b *testing.B) {
		r := pacedResults{items: n}
		for i := 0; i < b.N; i++ {
			clean, _, _, _ := pacedInit(b, int64(i), data, func(*faults.Injector) {})
			elapsed, sent, calls, lost := pacedInit(b, int64(i), data, func(inj *faults.Injector) {
				inj.Set("BatchWriteItem", faults.Fault{UnprocessedRate: 0.1})
			})
			r.add(elapsed, clean, sent, calls, lost)
		}
		r.report(b, "nofault")
	})
	for _, limit := range []struct {
		name     string
		schedule faults.Schedule
	}{
		{"steady=1000", faults.Schedule{{At: 0, Rate: 1000}}},
		{"falling=2000-500", faults.Schedule{{At: 0, Rate: 2000}, {At: time.Second, Rate: 500}}},
		{"rising=400-2000", faults.Schedule{{At: 0, Rate: 400}, {At: 2 * time.Second, Rate: 2000}}},
	} {
		b.Run(limit.name, func(b *testing.B) {
			r := pacedResults{items: n}
			for i := 0; i < b.N; i++ {
				limitedInit(b, &r, int64(i), data, limit.schedule)
			}
			r.report(b, "floor")
		})
	}
}
