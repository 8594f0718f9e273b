package lddynamodb_test

import (
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoreimpl"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
	"github.com/stretchr/testify/require"

	"github.com/lddynamodb/lddynamodb"
	"github.com/lddynamodb/lddynamodb/internal/testenv"
)

// The costs of items over DynamoDB's 400 KB limit, which the store keeps in parts: besides the
// work that reportWork reports, the parts read and written and the bytes on the wire each way
// (the JSON request and response bodies, where binary parts travel in base64).

// wireBytes counts the bytes of HTTP request and response bodies that a client sends and
// receives.
type wireBytes struct {
	next           http.RoundTripper
	sent, received atomic.Int64
}

func (w *wireBytes) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.ContentLength > 0 {
		w.sent.Add(req.ContentLength)
	}
	resp, err := w.next.RoundTrip(req)
	if resp != nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &w.received}
	}
	return resp, err
}

// newWireBytes is a counter over a transport of its own, closed when the benchmark ends.
func newWireBytes(b *testing.B) *wireBytes {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 2 * lddynamodb.DefaultBatchConcurrency
	b.Cleanup(transport.CloseIdleConnections)
	return &wireBytes{next: transport}
}

// option gives a client this counter as its HTTP transport.
func (w *wireBytes) option(o *dynamodb.Options) { o.HTTPClient = &http.Client{Transport: w} }

// reset sets the counts back to zero.
func (w *wireBytes) reset() {
	w.sent.Store(0)
	w.received.Store(0)
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// reportLargeWork reports reportWork's figures, the parts read and written, and the bytes on the
// wire, per iteration.
func reportLargeWork(b *testing.B, m *lddynamodb.Metrics, wire *wireBytes) {
	reportWork(b, m)
	s, n := m.Snapshot(), float64(b.N)
	b.ReportMetric(float64(s.PartsWritten)/n, "parts-written/op")
	b.ReportMetric(float64(s.PartsRead)/n, "parts-read/op")
	b.ReportMetric(float64(s.PartBytesRead)/n, "part-bytes-read/op")
	b.ReportMetric(float64(wire.sent.Load())/n, "wire-bytes-sent/op")
	b.ReportMetric(float64(wire.received.Load())/n, "wire-bytes-received/op")
}

// largeSizes are the item sizes of the Get, GetAll and Upsert benchmarks: 1 MB, as a
// list-targeted segment of about 25,000 keys, and 6 MB.
var largeSizes = []struct {
	name  string
	bytes int
}{{"1MB", 1 << 20}, {"6MB", 6 << 20}}

// largeBenchStore is a store, counting into m and wire, over a table of 1,000 small items and
// the given one.
func largeBenchStore(b *testing.B, item ldstoretypes.KeyedSerializedItemDescriptor, m *lddynamodb.Metrics, wire *wireBytes) subsystems.PersistentDataStore {
	table := testenv.NewTable(b)
	writer, _ := testenv.Build(b, testenv.DataStore(table))
	data := testenv.PerfData(900, 100, 1)
	data[0].Items = append(data[0].Items, item)
	require.NoError(b, writer.Init(data))
	store, _ := testenv.Build(b, testenv.DataStore(table).Metrics(m).ClientOptions(dynamodb.Options{}, wire.option))
	return store
}

// BenchmarkLargeItemGet measures Get of a flag of 1 MB and of 6 MB of JSON that does not
// compress much (random letters), kept in 2 and 12 parts: one GetItem and one Query of its parts.
func BenchmarkLargeItemGet(b *testing.B) {
	for _, size := range largeSizes {
		b.Run("size="+size.name, func(b *testing.B) {
			item := testenv.NoisyFlag("large", 1, size.bytes, 1)
			m, wire := &lddynamodb.Metrics{}, newWireBytes(b)
			store := largeBenchStore(b, item, m, wire)
			m.Reset()
			wire.reset()
			b.SetBytes(int64(len(item.Item.SerializedItem)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				got, err := store.Get(ldstoreimpl.Features(), item.Key)
				if err != nil || len(got.SerializedItem) != len(item.Item.SerializedItem) {
					b.Fatalf("get: %d bytes, error %v", len(got.SerializedItem), err)
				}
			}
			b.StopTimer()
			reportLargeWork(b, m, wire)
		})
	}
}

// BenchmarkLargeItemGetAll measures GetAll of the 901 flags, one of them large, beside 1,000
// small items: the Query pages of the flags and one Query (pages as needed) of their parts.
func BenchmarkLargeItemGetAll(b *testing.B) {
	for _, size := range largeSizes {
		b.Run("size="+size.name, func(b *testing.B) {
			item := testenv.NoisyFlag("large", 1, size.bytes, 1)
			m, wire := &lddynamodb.Metrics{}, newWireBytes(b)
			store := largeBenchStore(b, item, m, wire)
			m.Reset()
			wire.reset()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				items, err := store.GetAll(ldstoreimpl.Features())
				if err != nil || len(items) != 901 {
					b.Fatalf("get all: %d items, error %v", len(items), err)
				}
			}
			b.StopTimer()
			reportLargeWork(b, m, wire)
		})
	}
}

// BenchmarkLargeItemUpsert measures Upsert of a newer version of such a flag: its parts, the
// main row, and the delete of the old version's parts.
func BenchmarkLargeItemUpsert(b *testing.B) {
	for _, size := range largeSizes {
		b.Run("size="+size.name, func(b *testing.B) {
			m, wire := &lddynamodb.Metrics{}, newWireBytes(b)
			store := largeBenchStore(b, testenv.NoisyFlag("large", 1, size.bytes, 1), m, wire)
			m.Reset()
			wire.reset()
			b.SetBytes(int64(size.bytes))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				item := testenv.NoisyFlag("large", 2+i, size.bytes, int64(2+i))
				b.StartTimer()
				updated, err := store.Upsert(ldstoreimpl.Features(), item.Key, item.Item)
				if err != nil || !updated {
					b.Fatalf("upsert version %d: updated %v, error %v", item.Item.Version, updated, err)
				}
			}
			b.StopTimer()
			reportLargeWork(b, m, wire)
		})
	}
}

// largeInitData is 5,000 items, 90 % flags and 10 % segments, of which 20 are large: 10 flags of
// 1 MB of random letters (2 parts each) and 10 segments of 26,000 user keys (1 MB of JSON,
// 2 parts each); the others are about 1 KB. With large=false, the 20 are small ones instead.
func largeInitData(large bool) []ldstoretypes.SerializedCollection {
	if !large {
		return benchData(5000, 1)
	}
	data := testenv.PerfData(4490, 490, 1)
	for i := 0; i < 10; i++ {
		data[0].Items = append(data[0].Items, testenv.NoisyFlag(fmt.Sprintf("large-flag-%d", i), 1, 1<<20, int64(i)))
		segment, _ := testenv.ListSegment(fmt.Sprintf("large-segment-%d", i), 1, 26_000, int64(i))
		data[1].Items = append(data[1].Items, segment)
	}
	return data
}

// BenchmarkLargeItemInit measures a cold Init of 5,000 items with 20 large ones among them, next
// to the same Init with 20 small items in their place.
func BenchmarkLargeItemInit(b *testing.B) {
	for _, large := range []bool{false, true} {
		data := largeInitData(large)
		size := 0
		for _, coll := range data {
			for _, it := range coll.Items {
				size += len(it.Item.SerializedItem)
			}
		}
		b.Run(fmt.Sprintf("items=5000/large=%v", map[bool]int{false: 0, true: 20}[large]), func(b *testing.B) {
			m, wire := &lddynamodb.Metrics{}, newWireBytes(b)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				table, drop := benchTable(b)
				store, _ := testenv.Build(b, testenv.DataStore(table).Metrics(m).ClientOptions(dynamodb.Options{}, wire.option))
				b.StartTimer()
				err := store.Init(data)
				b.StopTimer()
				require.NoError(b, err)
				require.NoError(b, store.Close())
				drop()
				b.StartTimer()
			}
			b.StopTimer()
			reportLargeWork(b, m, wire)
		})
	}
}
