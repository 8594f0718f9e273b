package benchmarks

import (
	"context"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/launchdarkly/go-sdk-common/v3/ldlog"
	official "github.com/launchdarkly/go-server-sdk-dynamodb/v4"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/lddynamodb/lddynamodb"
	"github.com/lddynamodb/lddynamodb/internal/faults"
	"github.com/lddynamodb/lddynamodb/internal/testenv"
)

// peer is one of the stores compared: how to build it over a table, with an HTTP client.
type peer struct {
	name  string
	build func(table string, httpClient *http.Client) (subsystems.PersistentDataStore, error)
}

// quiet is the client context both stores are built with: no logging, which would cost both.
var quiet = testenv.ContextWithLoggers(ldlog.NewDisabledLoggers())

// The stores compared, each with its defaults (both read with strong consistency).
var (
	ours = peer{"lddynamodb", func(table string, httpClient *http.Client) (subsystems.PersistentDataStore, error) {
		return testenv.DataStore(table).ClientOptions(dynamodb.Options{HTTPClient: httpClient}).Build(quiet)
	}}
	theirs = peer{"official", func(table string, httpClient *http.Client) (subsystems.PersistentDataStore, error) {
		return official.DataStore(table).ClientConfig(testenv.AWSConfig(), testenv.WithEndpoint, withHTTPClient(httpClient)).Build(quiet)
	}}
	// metered is lddynamodb counting its work in a Metrics, which costs a little on every call.
	metered = peer{"lddynamodb+metrics", func(table string, httpClient *http.Client) (subsystems.PersistentDataStore, error) {
		return testenv.DataStore(table).ClientOptions(dynamodb.Options{HTTPClient: httpClient}).Metrics(&lddynamodb.Metrics{}).Build(quiet)
	}}
	// otelNoop records OpenTelemetry metrics into the API's no-op provider: the store's own cost
	// of recording (the middleware, the capacity asked for, the calls on the instruments).
	otelNoop = peer{"lddynamodb+otel-noop", func(table string, httpClient *http.Client) (subsystems.PersistentDataStore, error) {
		return testenv.DataStore(table).ClientOptions(dynamodb.Options{HTTPClient: httpClient}).MeterProvider(noop.NewMeterProvider()).Build(quiet)
	}}
	// otelSDK records them into the OpenTelemetry SDK, which aggregates them for a reader.
	otelSDK = peer{"lddynamodb+otel-sdk", func(table string, httpClient *http.Client) (subsystems.PersistentDataStore, error) {
		provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		return testenv.DataStore(table).ClientOptions(dynamodb.Options{HTTPClient: httpClient}).MeterProvider(provider).Build(quiet)
	}}
)

func withHTTPClient(c *http.Client) func(*dynamodb.Options) {
	return func(o *dynamodb.Options) { o.HTTPClient = c }
}

// network is what stands between a store and the server: nothing, or the fault layer of the
// tests with added latency or partial batches.
type network struct {
	name  string
	fault *faults.Fault
}

var (
	direct  = network{"rtt=0", nil}
	slow    = network{"rtt=10ms", &faults.Fault{Latency: 10 * time.Millisecond}}
	partial = network{"partial-batches", &faults.Fault{UnprocessedRate: 0.1}}
)

// client is an HTTP client that sends through n, counting the calls in a counter. Under the
// counter is the AWS SDK's default transport, the same for both stores.
func (n network) client() (*http.Client, *counter) {
	var next http.RoundTripper = awshttp.NewBuildableClient().GetTransport()
	if n.fault != nil {
		injector := faults.New(1, next)
		injector.SetAll(*n.fault)
		next = injector
	}
	c := newCounter(next)
	return &http.Client{Transport: c}, c
}

// meter times the operations of a benchmark: the testing timer, and the process's CPU time (user
// and system) while the timer runs, which is what the store costs a service whatever the server's
// own time.
type meter struct {
	b       *testing.B
	started time.Duration
	cpu     time.Duration
}

func newMeter(b *testing.B) *meter {
	b.ReportAllocs()
	b.ResetTimer()
	b.StopTimer()
	return &meter{b: b}
}

func (m *meter) start() {
	m.b.StartTimer()
	m.started = cpuTime()
}

func (m *meter) stop() {
	m.cpu += cpuTime() - m.started
	m.b.StopTimer()
}

func cpuTime() time.Duration {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		panic(err)
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}

// report reports the CPU time and the DynamoDB work counted per operation.
func (m *meter) report(c *counter) {
	n := float64(m.b.N)
	calls, written := c.snapshot()
	var total int64
	for _, count := range calls {
		total += count
	}
	m.b.ReportMetric(float64(m.cpu.Nanoseconds())/n, "cpu-ns/op")
	m.b.ReportMetric(float64(total)/n, "calls/op")
	m.b.ReportMetric(float64(written)/n, "rows-written/op")
}

// build builds p over table, failing the benchmark if it cannot, and closes it when it ends.
func build(b *testing.B, p peer, table string, httpClient *http.Client) subsystems.PersistentDataStore {
	b.Helper()
	store, err := p.build(table, httpClient)
	if err != nil {
		b.Fatalf("building %s: %v", p.name, err)
	}
	b.Cleanup(func() { _ = store.Close() })
	return store
}

// filledTable is a new table that lddynamodb has initialized with data, outside any count.
func filledTable(b *testing.B, data []ldstoretypes.SerializedCollection) string {
	b.Helper()
	table := testenv.NewTable(b)
	writer, _ := testenv.Build(b, testenv.DataStore(table))
	if err := writer.Init(data); err != nil {
		b.Fatalf("initializing the table: %v", err)
	}
	return table
}

// eachPeer runs fn as a sub-benchmark for each network and store.
func eachPeer(b *testing.B, nets []network, stores []peer, fn func(b *testing.B, p peer, n network)) {
	for _, n := range nets {
		for _, p := range stores {
			b.Run(fmt.Sprintf("net=%s/store=%s", n.name, p.name), func(b *testing.B) { fn(b, p, n) })
		}
	}
}

// deleteTable drops a table made for one iteration, so that the server never holds more than one.
func deleteTable(b *testing.B, table string) {
	if _, err := testenv.Client().DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: &table}); err != nil {
		b.Fatalf("deleting table: %v", err)
	}
}
