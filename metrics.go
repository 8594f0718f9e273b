package lddynamodb

import (
	"context"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Metrics counts the DynamoDB work of the stores it is given to (see DataStoreBuilder.Metrics):
// API calls by operation, failed calls, items and bytes written, and the capacity units that
// DynamoDB reports as consumed. It is safe for concurrent use; the zero value is ready.
//
// A call is one API call made by the store; the AWS SDK's own retries of that call are not
// counted again. Only a store given a Metrics counts: that costs one mutex operation per call and
// asks DynamoDB to return consumed capacity, which adds a few bytes to each response.
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
	// ItemsWritten counts the rows put or deleted, by PutItem or BatchWriteItem.
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
	// hold them (over MaxItemBytes, or a key empty or over its limit).
	SkippedItems int64
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

// recordInit adds what one BatchWriteItem call of Init met: items throttled and items sent
// again.
func (m *Metrics) recordInit(throttled, resent int) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.s.ThrottledItems += int64(throttled)
	m.s.ResentItems += int64(resent)
}

func (m *Metrics) recordSkipped() {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.s.SkippedItems++
}

func (m *Metrics) recordStaleRead() {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.s.StaleReads++
}

// meteredClient adds every call to a Metrics and asks DynamoDB for the consumed capacity. A store
// uses one only when it was given a Metrics, so that a store whose counts nobody reads does not
// pay for them.
type meteredClient struct {
	inner   Client
	metrics *Metrics
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
	c.metrics.record("GetItem", err, units, 0, 0)
	return out, err
}

func (c meteredClient) Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	out, err := c.inner.Query(ctx, in, optFns...)
	units := 0.0
	if out != nil {
		units = unitsOf(out.ConsumedCapacity)
	}
	c.metrics.record("Query", err, units, 0, 0)
	return out, err
}

func (c meteredClient) PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	out, err := c.inner.PutItem(ctx, in, optFns...)
	units, items, size := 0.0, 0, 0
	if err == nil {
		units, items, size = unitsOf(out.ConsumedCapacity), 1, RowSize(in.Item)
	}
	c.metrics.record("PutItem", err, units, items, size)
	return out, err
}

func (c meteredClient) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	out, err := c.inner.BatchWriteItem(ctx, in, optFns...)
	units, items, size := 0.0, 0, 0
	if err == nil {
		for i := range out.ConsumedCapacity {
			units += unitsOf(&out.ConsumedCapacity[i])
		}
		items, size = writtenBy(in.RequestItems, out.UnprocessedItems)
	}
	c.metrics.record("BatchWriteItem", err, units, items, size)
	return out, err
}

// writtenBy counts the requests of a batch that DynamoDB processed, and the bytes of their puts.
func writtenBy(sent, unprocessed map[string][]types.WriteRequest) (items, size int) {
	for _, reqs := range sent {
		for _, r := range reqs {
			items++
			if r.PutRequest != nil {
				size += RowSize(r.PutRequest.Item)
			}
		}
	}
	for _, reqs := range unprocessed {
		for _, r := range reqs {
			items--
			if r.PutRequest != nil {
				size -= RowSize(r.PutRequest.Item)
			}
		}
	}
	return items, size
}
