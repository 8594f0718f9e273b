package lddynamodb_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/lddynamodb/lddynamodb"
	"github.com/lddynamodb/lddynamodb/internal/faults"
	"github.com/lddynamodb/lddynamodb/internal/testenv"
)

// collected is what a ManualReader holds, by instrument name.
type collected map[string]metricdata.Aggregation

func collect(t *testing.T, reader *sdkmetric.ManualReader) collected {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	out := collected{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			assert.Equal(t, lddynamodb.MeterName, sm.Scope.Name)
			out[m.Name] = m.Data
		}
	}
	return out
}

// durationPoints are the points of db.client.operation.duration.
func (c collected) durationPoints(t *testing.T) []metricdata.HistogramDataPoint[float64] {
	t.Helper()
	h, ok := c["db.client.operation.duration"].(metricdata.Histogram[float64])
	require.True(t, ok, "db.client.operation.duration is recorded as a float histogram")
	return h.DataPoints
}

// sum is the sum of a counter's points that have every attribute of want.
func (c collected) sum(t *testing.T, name string, want ...attribute.KeyValue) float64 {
	t.Helper()
	total := 0.0
	switch data := c[name].(type) {
	case metricdata.Sum[int64]:
		for _, p := range data.DataPoints {
			if hasAll(p.Attributes, want) {
				total += float64(p.Value)
			}
		}
	case metricdata.Sum[float64]:
		for _, p := range data.DataPoints {
			if hasAll(p.Attributes, want) {
				total += p.Value
			}
		}
	case nil: // nothing recorded
	default:
		t.Fatalf("%s is a %T, not a counter", name, data)
	}
	return total
}

func hasAll(set attribute.Set, want []attribute.KeyValue) bool {
	for _, kv := range want {
		if v, ok := set.Value(kv.Key); !ok || v != kv.Value {
			return false
		}
	}
	return true
}

func attr(set attribute.Set, key string) string {
	v, _ := set.Value(attribute.Key(key))
	return v.AsString()
}

func newReader() (*sdkmetric.ManualReader, *sdkmetric.MeterProvider) {
	reader := sdkmetric.NewManualReader()
	return reader, sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
}

// TestMeterProviderRecordsEveryRequestAndTheMetricsCounts runs a cold Init (with a batch that
// DynamoDB handles in part and an item too large to store), a Get that DynamoDB throttles once,
// a GetAll and a refused Upsert, and checks the OpenTelemetry measurements against the calls
// counted on the wire and against the Metrics of the same store.
func TestMeterProviderRecordsEveryRequestAndTheMetricsCounts(t *testing.T) {
	table := testenv.NewTable(t)
	inj := faults.New(1, nil)
	t.Cleanup(inj.CloseIdleConnections)
	inj.Script("BatchWriteItem", faults.Unprocessed)
	inj.Script("GetItem", faults.Throttling)
	reader, provider := newReader()
	metrics := &lddynamodb.Metrics{}
	store, _ := testenv.Build(t, testenv.DataStore(table).Prefix("env").ClientOptions(dynamodb.Options{}, inj.ClientOption()).
		Metrics(metrics).MeterProvider(provider))

	var flags []ldstoretypes.KeyedSerializedItemDescriptor
	for i := range 60 {
		flags = append(flags, testenv.Flag(fmt.Sprintf("flag-%d", i), 1, 100))
	}
	// A large item stored in parts, and an item that no row can hold (its key is empty).
	flags = append(flags, testenv.NoisyFlag("huge", 1, 1_000_000, 1), testenv.Flag("", 1, 0))
	require.NoError(t, store.Init(testenv.AllData(flags, []ldstoretypes.KeyedSerializedItemDescriptor{testenv.Segment("s", 1)})))
	_, err := store.Get(features, "flag-0")
	require.NoError(t, err)
	_, err = store.GetAll(features)
	require.NoError(t, err)
	updated, err := store.Upsert(features, "flag-1", testenv.Flag("flag-1", 1, 0).Item)
	require.NoError(t, err)
	require.False(t, updated, "an Upsert of the stored version is refused")

	got := collect(t, reader)
	wire := inj.CountByOp()
	points := map[string]uint64{}
	errorTypes := map[string]string{}
	for _, p := range got.durationPoints(t) {
		op := attr(p.Attributes, "db.operation.name")
		points[op] += p.Count
		assert.Equal(t, "aws.dynamodb", attr(p.Attributes, "db.system.name"))
		assert.Equal(t, table, attr(p.Attributes, "db.collection.name"))
		if e := attr(p.Attributes, "error.type"); e != "" {
			errorTypes[op] = e
		}
		require.Equal(t, []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10}, p.Bounds)
	}
	for op, n := range wire {
		assert.Equal(t, uint64(n), points[op], "duration points of %s: one per request on the wire", op)
	}
	assert.Len(t, points, len(wire), "no points for operations that were not sent")
	assert.Equal(t, map[string]string{"GetItem": "ThrottlingException", "PutItem": "ConditionalCheckFailedException"}, errorTypes)

	snap := metrics.Snapshot()
	store2 := []attribute.KeyValue{attribute.String("db.collection.name", table), attribute.String("lddynamodb.prefix", "env")}
	require.Positive(t, snap.ThrottledItems, "the scripted partial batch hands items back")
	require.Equal(t, int64(1), snap.SkippedItems)
	for name, want := range map[string]float64{
		"lddynamodb.items.throttled":     float64(snap.ThrottledItems),
		"lddynamodb.items.resent":        float64(snap.ResentItems),
		"lddynamodb.items.skipped":       float64(snap.SkippedItems),
		"lddynamodb.bytes.written":       float64(snap.BytesWritten),
		"lddynamodb.stale.reads":         float64(snap.StaleReads),
		"lddynamodb.parts.written":       float64(snap.PartsWritten),
		"lddynamodb.parts.bytes.written": float64(snap.PartBytesWritten),
		"lddynamodb.parts.read":          float64(snap.PartsRead),
		"lddynamodb.parts.bytes.read":    float64(snap.PartBytesRead),
	} {
		assert.Equal(t, want, got.sum(t, name, store2...), name)
	}
	assert.Equal(t, float64(snap.ItemsWritten),
		got.sum(t, "lddynamodb.items.written", store2...)+got.sum(t, "lddynamodb.items.deleted", store2...))
	require.Positive(t, snap.PartsWritten)
	require.Positive(t, snap.PartsRead, "GetAll read the large item's parts")
	assert.Equal(t, float64(63+snap.PartsWritten), got.sum(t, "lddynamodb.items.written", store2...),
		"60 flags, a large one and its parts, a segment and the marker")
	read := got.sum(t, "lddynamodb.capacity.consumed", append(store2, attribute.String("lddynamodb.capacity.type", "read"))...)
	write := got.sum(t, "lddynamodb.capacity.consumed", append(store2, attribute.String("lddynamodb.capacity.type", "write"))...)
	assert.Positive(t, read)
	assert.Positive(t, write)
	assert.InDelta(t, snap.CapacityUnits, read+write, 1e-9)

	inits, ok := got["lddynamodb.init.duration"].(metricdata.Histogram[float64])
	require.True(t, ok)
	require.Len(t, inits.DataPoints, 1)
	assert.Equal(t, uint64(1), inits.DataPoints[0].Count)
	assert.True(t, hasAll(inits.DataPoints[0].Attributes, store2))
}

// TestMeterProviderClassesFailuresBeforeAnAnswer: a request that never reached DynamoDB carries
// the error.type "connection", once per attempt of the AWS SDK's retryer; the failed Init is
// timed with its error type too.
func TestMeterProviderClassesFailuresBeforeAnAnswer(t *testing.T) {
	reader, provider := newReader()
	store, _ := testenv.Build(t, lddynamodb.DataStore("no-table").ClientConfig(testenv.AWSConfig(), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(testenv.ClosedEndpoint(t))
		o.RetryMaxAttempts = 2
	}).MeterProvider(provider))
	_, err := store.Get(features, "f")
	require.Error(t, err)

	points := collect(t, reader).durationPoints(t)
	require.Len(t, points, 1)
	assert.Equal(t, "connection", attr(points[0].Attributes, "error.type"))
	assert.Equal(t, "GetItem", attr(points[0].Attributes, "db.operation.name"))
	assert.Equal(t, uint64(2), points[0].Count, "one point per attempt")
}

// TestMeterProviderOnAGivenClientAndTheBigSegmentStore: with DynamoClient the timing middleware
// goes with each call, and the big segment store records its reads.
func TestMeterProviderOnAGivenClientAndTheBigSegmentStore(t *testing.T) {
	table := testenv.NewTable(t)
	inj := faults.New(1, nil)
	t.Cleanup(inj.CloseIdleConnections)
	client := dynamodb.NewFromConfig(testenv.AWSConfig(), testenv.WithEndpoint, inj.ClientOption())
	reader, provider := newReader()
	data, _ := testenv.Build(t, lddynamodb.DataStore(table).DynamoClient(client).MeterProvider(provider))
	_, err := data.Get(features, "f")
	require.NoError(t, err)
	segments, _ := testenv.Build(t, lddynamodb.BigSegmentStore(table).DynamoClient(client).MeterProvider(provider))
	_, err = segments.GetMembership("hash")
	require.NoError(t, err)
	// Calls of the client that are not the stores' are not timed.
	_, err = client.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(table), Key: map[string]types.AttributeValue{
		"namespace": &types.AttributeValueMemberS{Value: "features"}, "key": &types.AttributeValueMemberS{Value: "f"}}})
	require.NoError(t, err)

	points := collect(t, reader).durationPoints(t)
	require.Len(t, points, 1, "both stores' reads are GetItem calls of one table")
	wire := inj.CountByOp()
	require.Equal(t, map[string]int{"GetItem": wire["GetItem"]}, wire)
	assert.Equal(t, uint64(wire["GetItem"]-1), points[0].Count, "each of the stores' requests, not the client's own")
	assert.Equal(t, "", attr(points[0].Attributes, "error.type"))
}

// TestNoMeterProviderRecordsNothing: a store without the option does not fall back to the
// global meter provider.
func TestNoMeterProviderRecordsNothing(t *testing.T) {
	reader, provider := newReader()
	previous := otel.GetMeterProvider()
	otel.SetMeterProvider(provider)
	t.Cleanup(func() { otel.SetMeterProvider(previous) })
	table := testenv.NewTable(t)
	store, _ := testenv.Build(t, testenv.DataStore(table))
	require.NoError(t, store.Init(testenv.AllData([]ldstoretypes.KeyedSerializedItemDescriptor{testenv.Flag("f", 1, 0)}, nil)))
	_, err := store.Get(features, "f")
	require.NoError(t, err)
	assert.Empty(t, collect(t, reader))
}
