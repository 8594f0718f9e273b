package lddynamodb

// OpenTelemetry metrics (docs/metrics.md). A store given a MeterProvider creates its instruments
// and every attribute set it will need once, at Build, so that recording a measurement costs no
// allocation of its own. DynamoDB calls are timed by a middleware in the AWS SDK's stack, in the
// deserialize step, which runs once per HTTP request (each retry of the AWS SDK's retryer goes
// through it again) and sees the request's own outcome; the store's counts come from the same
// recording point as Metrics (recorder, in metrics.go).

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// MeterName is the name of the meter (the instrumentation scope) that the stores create
// their instruments with.
const MeterName = "github.com/lddynamodb/lddynamodb"

// Attribute keys and values of the database client semantic conventions, and of the store.
const (
	attrDBSystem       = "db.system.name"
	attrDBOperation    = "db.operation.name"
	attrDBCollection   = "db.collection.name"
	attrErrorType      = "error.type"
	attrPrefix         = "lddynamodb.prefix"
	attrCapacityType   = "lddynamodb.capacity.type"
	dbSystemDynamoDB   = "aws.dynamodb"
	durationMiddleware = "lddynamodb.OperationDuration"
)

// durationBuckets are the bucket boundaries, in seconds, that the semantic conventions recommend
// for db.client.operation.duration.
var durationBuckets = []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10}

// storeOperations are the DynamoDB operations that the stores call, whose attribute sets are
// made at Build.
var storeOperations = []string{"GetItem", "Query", "PutItem", "BatchWriteItem"}

// telemetry holds a store's instruments and the attribute sets of its measurements.
type telemetry struct {
	duration     metric.Float64Histogram
	initDuration metric.Float64Histogram
	written      metric.Int64Counter
	deleted      metric.Int64Counter
	bytes        metric.Int64Counter
	counts       [len(counts)]metric.Int64Counter
	capacity     metric.Float64Counter

	// store is the table and prefix; readUnits and writeUnits add the capacity type to it.
	store, readUnits, writeUnits []metric.AddOption
	// calls are the attribute sets of db.client.operation.duration by operation, each by error
	// type; inits those of lddynamodb.init.duration by error type.
	calls map[string]*optionsByError
	inits *optionsByError
	// otherCalls holds the sets of operations outside storeOperations, made at their first call.
	otherMu    sync.Mutex
	otherCalls map[string]*optionsByError
}

// newTelemetry creates the instruments of a store of table and prefix.
func newTelemetry(provider metric.MeterProvider, table, prefix string) (*telemetry, error) {
	meter := provider.Meter(MeterName)
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := meter.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	histogram := func(name, desc string) metric.Float64Histogram {
		h, err := meter.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(durationBuckets...))
		errs = append(errs, err)
		return h
	}
	t := &telemetry{
		duration:     histogram("db.client.operation.duration", "Duration of DynamoDB requests."),
		initDuration: histogram("lddynamodb.init.duration", "Duration of the data store's Init, from the first read to the initialized marker."),
		written:      counter("lddynamodb.items.written", "{item}", "Rows put by PutItem or BatchWriteItem and acknowledged by DynamoDB."),
		deleted:      counter("lddynamodb.items.deleted", "{item}", "Rows deleted by BatchWriteItem and acknowledged by DynamoDB."),
		bytes:        counter("lddynamodb.bytes.written", "By", "Size of the rows put, as DynamoDB counts it (names plus values)."),
		calls:        map[string]*optionsByError{},
		otherCalls:   map[string]*optionsByError{},
	}
	for c, desc := range counts {
		t.counts[c] = counter(desc.name, desc.unit, desc.desc)
	}
	units, err := meter.Float64Counter("lddynamodb.capacity.consumed", metric.WithUnit("{capacity_unit}"),
		metric.WithDescription("Capacity units that DynamoDB reported as consumed, by read or write."))
	errs = append(errs, err)
	t.capacity = units
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	storeAttrs := []attribute.KeyValue{attribute.String(attrDBCollection, table), attribute.String(attrPrefix, prefix)}
	t.store = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(storeAttrs...))}
	t.readUnits = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(append(storeAttrs, attribute.String(attrCapacityType, "read"))...))}
	t.writeUnits = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(append(storeAttrs, attribute.String(attrCapacityType, "write"))...))}
	t.inits = newOptionsByError(storeAttrs...)
	for _, op := range storeOperations {
		t.calls[op] = t.newCallOptions(table, op)
	}
	return t, nil
}

func (t *telemetry) newCallOptions(table, op string) *optionsByError {
	return newOptionsByError(attribute.String(attrDBSystem, dbSystemDynamoDB), attribute.String(attrDBOperation, op),
		attribute.String(attrDBCollection, table))
}

// callOptions are the attribute sets of an operation's duration points.
func (t *telemetry) callOptions(table, op string) *optionsByError {
	if o, ok := t.calls[op]; ok {
		return o
	}
	t.otherMu.Lock()
	defer t.otherMu.Unlock()
	o, ok := t.otherCalls[op]
	if !ok {
		o = t.newCallOptions(table, op)
		t.otherCalls[op] = o
	}
	return o
}

// optionsByError holds the attribute sets of one kind of measurement: the base attributes, and
// the base plus each error.type met so far, each made once.
type optionsByError struct {
	base  []attribute.KeyValue
	ok    []metric.RecordOption
	mu    sync.RWMutex
	byErr map[string][]metric.RecordOption
}

func newOptionsByError(base ...attribute.KeyValue) *optionsByError {
	return &optionsByError{
		base:  base,
		ok:    []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(base...))},
		byErr: map[string][]metric.RecordOption{},
	}
}

// get returns the options for errType ("" for success). The error types are few (DynamoDB's
// error codes and the classes of errorType), so the sets made stay few.
func (o *optionsByError) get(errType string) []metric.RecordOption {
	if errType == "" {
		return o.ok
	}
	o.mu.RLock()
	opts, ok := o.byErr[errType]
	o.mu.RUnlock()
	if ok {
		return opts
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if opts, ok = o.byErr[errType]; !ok {
		attrs := append(append([]attribute.KeyValue(nil), o.base...), attribute.String(attrErrorType, errType))
		opts = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(attrs...))}
		o.byErr[errType] = opts
	}
	return opts
}

// errorType is the error.type of a failed call: DynamoDB's error code (such as
// "ProvisionedThroughputExceededException" or "ConditionalCheckFailedException"), or a class of
// failure before an answer: "timeout", "canceled", "connection"; "_OTHER" for anything else.
func errorType(err error) string {
	if err == nil {
		return ""
	}
	return failureType(err)
}

// failureType is errorType of an error. It walks the chain of wrapped errors itself rather than
// with errors.As, whose targets would be allocated at every failure.
func failureType(err error) string {
	var timeout, credentials, connection bool
	for e := err; e != nil; e = errors.Unwrap(e) {
		switch e := e.(type) {
		case smithy.APIError:
			if code := e.ErrorCode(); code != "" {
				return code
			}
		case *CredentialsError:
			credentials = true
		case *smithyhttp.RequestSendError:
			connection = true
		case net.Error:
			timeout = timeout || e.Timeout()
			connection = true
		}
	}
	switch {
	case timeout || errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case credentials:
		return "credentials"
	case connection:
		return "connection"
	default:
		return "_OTHER"
	}
}

// clientOption adds the duration middleware to the stack of every DynamoDB call of a client, or
// of one call when passed with it, for the store of table.
func (t *telemetry) clientOption(table string) func(*dynamodb.Options) {
	mw := &durationRecorder{t: t, table: table}
	addTo := func(stack *middleware.Stack) error {
		return stack.Deserialize.Add(mw, middleware.Before)
	}
	return func(o *dynamodb.Options) { o.APIOptions = append(o.APIOptions, addTo) }
}

// durationRecorder records db.client.operation.duration for every HTTP request of a call. In the
// deserialize step it times the request from its sending to its decoded answer, after signing
// and outside the retryer's backoff.
type durationRecorder struct {
	t     *telemetry
	table string
}

func (d *durationRecorder) ID() string { return durationMiddleware }

func (d *durationRecorder) HandleDeserialize(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (
	middleware.DeserializeOutput, middleware.Metadata, error) {
	start := time.Now()
	out, md, err := next.HandleDeserialize(ctx, in)
	opts := d.t.callOptions(d.table, awsmiddleware.GetOperationName(ctx)).get(errorType(err))
	d.t.duration.Record(ctx, time.Since(start).Seconds(), opts...)
	return out, md, err
}
