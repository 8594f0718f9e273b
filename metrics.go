package lddynamodb

import (
	"context"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.opentelemetry.io/otel/metric"
)

// Metrics counts the DynamoDB work of the stores it is given to (see DataStoreBuilder.Metrics):
// API calls by operation, failed calls, items and bytes written, and the capacity units that
// DynamoDB reports as consumed. It is safe for concurrent use; the zero value is ready.
//
// A call is one API call made by the store; the AWS SDK's own retries of that call are not
// counted again. Only a store given a Metrics counts: that costs one mutex operation per call and
// asks DynamoDB to return consumed capacity, which adds a few bytes to each response. The same
// counts go to OpenTelemetry when the store is also given a MeterProvider (docs/metrics.md).
type Metrics struct {
	mu sync.Mutex
	s  MetricsSnapshot
}

// MetricsSnapshot is the state of a Metrics at one moment.
type MetricsSnapshot struct {
	// Calls is the number of API calls by operation name ("GetItem", "Query", ...).
	Calls map[string]int64
	// Errors is the number of calls that failed, by operation name. A conditional write that was
	// refused because the stored version was newer is not an error.
	Errors map[string]int64
	// ItemsWritten counts the rows put or deleted, by PutItem or BatchWriteItem, large items'
	// parts included.
	ItemsWritten int64
	// BytesWritten is the size of the rows put, as DynamoDB counts them (names plus values).
	BytesWritten int64
	// CapacityUnits is the sum of read and write capacity units that DynamoDB reported. DynamoDB
	// reports none for a conditional write it refused (an Upsert of an older version), although
	// it charges one write unit for it.
	CapacityUnits float64
	// StaleReads counts reads that failed and were answered from the stale-if-error cache.
	StaleReads int64
	// ThrottledItems counts the write requests of Init that DynamoDB did not take for lack of
	// capacity: returned in UnprocessedItems, or in a call refused with a throughput error.
	ThrottledItems int64
	// ResentItems counts the write requests that Init sent more than once (after a throttle, a
	// transient failure, or a reset connection), once per extra send. Like Calls, these count the
	// store's own sends: retries that the AWS SDK's retryer makes inside one call are not seen.
	ResentItems int64
	// SkippedItems counts the items that Init or Upsert did not write because DynamoDB cannot
	// hold them (over MaxItemBytes with LargeItems(false), over MaxLargeItemBytes, or a key
	// empty or over its limit).
	SkippedItems int64
	// PartsWritten counts the part rows of large items that were written (they are also in
	// ItemsWritten), and PartBytesWritten their size as DynamoDB counts it (also in
	// BytesWritten). PartsRead and PartBytesRead count the part rows that reads returned.
	PartsWritten, PartBytesWritten int64
	PartsRead, PartBytesRead       int64
}

// TotalCalls is the number of API calls of all operations.
func (s MetricsSnapshot) TotalCalls() int64 {
	var n int64
	for _, c := range s.Calls {
		n += c
	}
	return n
}

// Snapshot returns a copy of the counts so far.
func (m *Metrics) Snapshot() MetricsSnapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := m.s
	out.Calls = copyCounts(m.s.Calls)
	out.Errors = copyCounts(m.s.Errors)
	return out
}

// Reset sets every count back to zero.
func (m *Metrics) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.s = MetricsSnapshot{}
}

func copyCounts(in map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}

func (m *Metrics) record(op string, err error, capacityUnits float64, itemsWritten, bytesWritten int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.s.Calls == nil {
		m.s.Calls = map[string]int64{}
		m.s.Errors = map[string]int64{}
	}
	m.s.Calls[op]++
	if err != nil && !isConditionFailed(err) {
		m.s.Errors[op]++
	}
	m.s.CapacityUnits += capacityUnits
	m.s.ItemsWritten += int64(itemsWritten)
	m.s.BytesWritten += int64(bytesWritten)
}

// recorder is the one place where a store records its work, for a Metrics and for OpenTelemetry
// (telemetry.go), either of which may be nil. A store given neither has a nil recorder, and every
// method of a nil recorder does nothing.
type recorder struct {
	metrics *Metrics
	otel    *telemetry
}

// newRecorder returns the recorder of a store, nil if it records nothing.
func newRecorder(m *Metrics, t *telemetry) *recorder {
	if m == nil && t == nil {
		return nil
	}
	return &recorder{metrics: m, otel: t}
}

// call records one API call: the capacity that DynamoDB reported, and the rows put and deleted.
func (r *recorder) call(ctx context.Context, op string, err error, units float64, puts, deletes, bytes int) {
	if r.metrics != nil {
		r.metrics.record(op, err, units, puts+deletes, bytes)
	}
	if t := r.otel; t != nil {
		if units > 0 {
			if op == "GetItem" || op == "Query" {
				t.capacity.Add(ctx, units, t.readUnits...)
			} else {
				t.capacity.Add(ctx, units, t.writeUnits...)
			}
		}
		addCount(ctx, t.written, puts, t.store)
		addCount(ctx, t.deleted, deletes, t.store)
		addCount(ctx, t.bytes, bytes, t.store)
	}
}

func addCount(ctx context.Context, c metric.Int64Counter, n int, opts []metric.AddOption) {
	if n != 0 {
		c.Add(ctx, int64(n), opts...)
	}
}

// count names one of the store's own counts, each a field of MetricsSnapshot and a counter of
// OpenTelemetry. A new count is a constant, a line of counts, and its field.
type count int

const (
	countThrottled        count = iota // Init's write requests that DynamoDB did not take for lack of capacity
	countResent                        // Init's write requests sent again, once per extra send
	countSkipped                       // items not written because DynamoDB cannot hold them
	countStaleReads                    // failed reads answered from the StaleIfError layer
	countPartsWritten                  // part rows of large items written
	countPartBytesWritten              // their size
	countPartsRead                     // part rows of large items that reads returned
	countPartBytesRead                 // their size
)

// counts gives each count its field and its OpenTelemetry counter (docs/metrics.md).
var counts = [...]struct {
	field            func(*MetricsSnapshot) *int64
	name, unit, desc string
}{
	countThrottled: {func(s *MetricsSnapshot) *int64 { return &s.ThrottledItems }, "lddynamodb.items.throttled", "{item}",
		"Write requests of Init that DynamoDB did not take for lack of capacity."},
	countResent: {func(s *MetricsSnapshot) *int64 { return &s.ResentItems }, "lddynamodb.items.resent", "{item}",
		"Write requests that Init sent again, once per extra send."},
	countSkipped: {func(s *MetricsSnapshot) *int64 { return &s.SkippedItems }, "lddynamodb.items.skipped", "{item}",
		"Items not written because DynamoDB cannot hold them."},
	countStaleReads: {func(s *MetricsSnapshot) *int64 { return &s.StaleReads }, "lddynamodb.stale.reads", "{read}",
		"Failed reads answered from the StaleIfError layer."},
	countPartsWritten: {func(s *MetricsSnapshot) *int64 { return &s.PartsWritten }, "lddynamodb.parts.written", "{part}",
		"Part rows of large items put and acknowledged by DynamoDB (also in lddynamodb.items.written)."},
	countPartBytesWritten: {func(s *MetricsSnapshot) *int64 { return &s.PartBytesWritten }, "lddynamodb.parts.bytes.written", "By",
		"Size of the part rows of large items put (also in lddynamodb.bytes.written)."},
	countPartsRead: {func(s *MetricsSnapshot) *int64 { return &s.PartsRead }, "lddynamodb.parts.read", "{part}",
		"Part rows of large items that reads returned."},
	countPartBytesRead: {func(s *MetricsSnapshot) *int64 { return &s.PartBytesRead }, "lddynamodb.parts.bytes.read", "By",
		"Size of the part rows of large items that reads returned."},
}

// add adds n to a count.
func (r *recorder) add(c count, n int) {
	if r == nil || n == 0 {
		return
	}
	if m := r.metrics; m != nil {
		m.mu.Lock()
		*counts[c].field(&m.s) += int64(n)
		m.mu.Unlock()
	}
	if t := r.otel; t != nil {
		t.counts[c].Add(context.Background(), int64(n), t.store...)
	}
}

// initDone records how long an Init that started at start took, and how it ended.
func (r *recorder) initDone(start time.Time, err error) {
	if r == nil || r.otel == nil {
		return
	}
	r.otel.initDuration.Record(context.Background(), time.Since(start).Seconds(), r.otel.inits.get(errorType(err))...)
}

// meteredClient records every call and asks DynamoDB for the consumed capacity. A store uses one
// only when it was given a Metrics or a MeterProvider, so that a store whose counts nobody reads
// does not pay for them.
type meteredClient struct {
	inner Client
	rec   *recorder
}

// unitsOf is the capacity that DynamoDB reported for a call, if it did.
func unitsOf(c *types.ConsumedCapacity) float64 {
	if c == nil || c.CapacityUnits == nil {
		return 0
	}
	return *c.CapacityUnits
}

func (c meteredClient) GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	out, err := c.inner.GetItem(ctx, in, optFns...)
	units := 0.0
	if out != nil {
		units = unitsOf(out.ConsumedCapacity)
	}
	c.rec.call(ctx, "GetItem", err, units, 0, 0, 0)
	return out, err
}

func (c meteredClient) Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	out, err := c.inner.Query(ctx, in, optFns...)
	units := 0.0
	if out != nil {
		units = unitsOf(out.ConsumedCapacity)
	}
	c.rec.call(ctx, "Query", err, units, 0, 0, 0)
	return out, err
}

func (c meteredClient) PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	out, err := c.inner.PutItem(ctx, in, optFns...)
	units, puts, size := 0.0, 0, 0
	if err == nil {
		units, puts, size = unitsOf(out.ConsumedCapacity), 1, RowSize(in.Item)
	}
	c.rec.call(ctx, "PutItem", err, units, puts, 0, size)
	return out, err
}

func (c meteredClient) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	out, err := c.inner.BatchWriteItem(ctx, in, optFns...)
	units, puts, deletes, size := 0.0, 0, 0, 0
	if err == nil {
		for i := range out.ConsumedCapacity {
			units += unitsOf(&out.ConsumedCapacity[i])
		}
		puts, deletes, size = writtenBy(in.RequestItems, out.UnprocessedItems)
	}
	c.rec.call(ctx, "BatchWriteItem", err, units, puts, deletes, size)
	return out, err
}

// writtenBy counts the puts and deletes of a batch that DynamoDB processed, and the bytes of the
// puts.
func writtenBy(sent, unprocessed map[string][]types.WriteRequest) (puts, deletes, size int) {
	count := func(reqs []types.WriteRequest, sign int) {
		for _, r := range reqs {
			if r.PutRequest != nil {
				puts += sign
				size += sign * RowSize(r.PutRequest.Item)
			} else {
				deletes += sign
			}
		}
	}
	for _, reqs := range sent {
		count(reqs, 1)
	}
	for _, reqs := range unprocessed {
		count(reqs, -1)
	}
	return puts, deletes, size
}
