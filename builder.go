package lddynamodb

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/launchdarkly/go-sdk-common/v3/ldlog"
	"github.com/launchdarkly/go-sdk-common/v3/ldvalue"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems"
	"go.opentelemetry.io/otel/metric"
)

// Defaults of the DataStoreBuilder and BigSegmentStoreBuilder options.
const (
	// DefaultBatchConcurrency is how many BatchWriteItem calls Init runs at once.
	DefaultBatchConcurrency = 8
	// DefaultInitTimeout bounds one Init, including the retries of throttled or unprocessed writes.
	DefaultInitTimeout = 5 * time.Minute
	// DefaultOperationTimeout bounds every other store operation, including the AWS SDK's retries.
	DefaultOperationTimeout = 10 * time.Second
)

// DataStoreBuilder configures the DynamoDB persistent data store. Create it with DataStore and
// pass it to ldcomponents.PersistentDataStore:
//
//	ldcomponents.PersistentDataStore(lddynamodb.DataStore("my-table")).CacheSeconds(30)
//
// Setters change the builder and return it, so they chain. Build checks the options and returns
// an error for any that cannot work; it makes no DynamoDB call.
type DataStoreBuilder struct {
	clientOptions
	batchConcurrency int
	initTimeout      time.Duration
	consistentReads  bool
	largeItems       bool
	staleMaxAge      time.Duration
}

var (
	_ subsystems.ComponentConfigurer[subsystems.PersistentDataStore] = (*DataStoreBuilder)(nil)
	_ subsystems.DiagnosticDescription                               = (*DataStoreBuilder)(nil)
)

// DataStore returns a builder for a data store that keeps flags and segments in the named
// DynamoDB table. The table must exist, with a partition key "namespace" (S) and a sort key
// "key" (S); CreateTable makes one.
func DataStore(table string) *DataStoreBuilder {
	return &DataStoreBuilder{
		clientOptions:    newClientOptions(table),
		batchConcurrency: DefaultBatchConcurrency,
		initTimeout:      DefaultInitTimeout,
		consistentReads:  true,
		largeItems:       true,
	}
}

// Prefix sets a prefix for the namespaces of all rows, so that several LaunchDarkly environments
// can share one table: rows go to "PREFIX:features" instead of "features". Use the same prefix as
// the Relay Proxy or the other SDKs that share the table. The default is no prefix.
func (b *DataStoreBuilder) Prefix(prefix string) *DataStoreBuilder {
	b.prefix = prefix
	return b
}

// DynamoClient sets a ready DynamoDB client, usually a *dynamodb.Client, instead of one made by
// Build. It wins over ClientConfig and ClientOptions, as in the official store: Build then
// ignores them and logs a warning that names them. The store leaves the client open at Close.
func (b *DataStoreBuilder) DynamoClient(client Client) *DataStoreBuilder {
	b.setClient(client)
	return b
}

// ClientConfig sets the AWS configuration from which Build makes the DynamoDB client, instead of
// the default configuration chain, and adds optFns, which adjust the client's options. Build
// loads no configuration of its own then: cfg must hold the region and credentials (or
// ClientOptions must). DynamoClient wins over it.
func (b *DataStoreBuilder) ClientConfig(cfg aws.Config, optFns ...func(*dynamodb.Options)) *DataStoreBuilder {
	b.setClientConfig(cfg, optFns)
	return b
}

// ClientOptions sets DynamoDB client options, as the official store's ClientOptions does: the
// non-zero fields of options replace those that the configuration gives the client (the default
// chain's, or ClientConfig's), APIOptions are added to, and then optFns run in the order given.
// Two differences from the official store: every field counts, BaseEndpoint included (the
// official store drops it, so that a local endpoint set there is ignored and the client goes to
// AWS); and ClientOptions add to ClientConfig and to earlier calls, in call order, where the
// official store keeps only the last call and drops ClientConfig. DynamoClient wins over it.
//
//	lddynamodb.DataStore("my-table").ClientOptions(dynamodb.Options{BaseEndpoint: aws.String("http://127.0.0.1:8000")})
func (b *DataStoreBuilder) ClientOptions(options dynamodb.Options, optFns ...func(*dynamodb.Options)) *DataStoreBuilder {
	b.addClientOptions(options, optFns)
	return b
}

// OperationTimeout bounds every operation other than Init, including the AWS SDK's own retries
// (DefaultOperationTimeout).
func (b *DataStoreBuilder) OperationTimeout(d time.Duration) *DataStoreBuilder {
	b.timeout = d
	return b
}

// Metrics sets a counter that the store adds its DynamoDB work to: calls by operation, items and
// bytes written, consumed capacity. One Metrics may be shared by several stores. A store given
// none counts nothing, and saves the mutex operation and the consumed capacity that DynamoDB would
// otherwise return with every call. MeterProvider reports the same counts to OpenTelemetry; the
// two may be used together.
func (b *DataStoreBuilder) Metrics(m *Metrics) *DataStoreBuilder {
	b.metrics = m
	return b
}

// MeterProvider sets the OpenTelemetry meter provider that the store records its metrics with
// (docs/metrics.md): the duration of every DynamoDB request, as db.client.operation.duration of
// the database semantic conventions, and the store's own counts under "lddynamodb.", the same as
// Metrics counts. The instruments and their attribute sets are made once, by Build. Like Metrics,
// it makes the store ask DynamoDB to return the consumed capacity with every call. A store given
// none records nothing and pays nothing. Give a meter provider of the OpenTelemetry SDK (such as
// one with a Prometheus exporter) or of any other implementation of the API.
func (b *DataStoreBuilder) MeterProvider(p metric.MeterProvider) *DataStoreBuilder {
	b.meters = p
	return b
}

// BatchConcurrency sets how many BatchWriteItem calls Init runs at once (DefaultBatchConcurrency).
// Higher values finish a large Init sooner but draw write capacity faster; 1 writes batches one
// after another.
func (b *DataStoreBuilder) BatchConcurrency(n int) *DataStoreBuilder {
	b.batchConcurrency = n
	return b
}

// ConsistentReads sets whether Get, GetAll and IsInitialized use strongly consistent reads (the
// default, true). Eventually consistent reads cost half the read capacity but may miss a write
// made in the last second or so; that suits daemon-mode readers whose SDK cache already serves
// data that old. Writes, and the key Query of Init, stay strongly consistent.
func (b *DataStoreBuilder) ConsistentReads(consistent bool) *DataStoreBuilder {
	b.consistentReads = consistent
	return b
}

// LargeItems sets whether flags and segments over DynamoDB's 400 KB item limit are stored
// (true, the default) or skipped (false). A large item is stored compressed, in its main row or
// in parts under a partition key of their own (docs/table.md); it costs one more Query per Get
// and per GetAll, and only when such an item is there. Every other SDK and the Relay Proxy read
// it as deleted. Turn it off when every service sharing the table must see the same flags: with
// it off, a large item is missing for this store too (Init skips it with an error log and removes
// its older rows, Upsert returns an error), as the official stores do. Items that fit in a row are
// stored the same way either way, and large items already in the table are read either way.
func (b *DataStoreBuilder) LargeItems(enabled bool) *DataStoreBuilder {
	b.largeItems = enabled
	return b
}

// InitTimeout bounds how long one Init may take, including retries of throttled and unprocessed
// writes (DefaultInitTimeout). An Init that runs out of time returns an error, naming the pace of
// each paced partition key, and does not write the initialized marker. Init never paces a
// partition key below twice the rate that would write all of its items in this time.
func (b *DataStoreBuilder) InitTimeout(d time.Duration) *DataStoreBuilder {
	b.initTimeout = d
	return b
}

// Build is called by the SDK to create the store. It validates the options and makes the client;
// it makes no DynamoDB call. A missing table name or region fails here; credentials are only
// fetched at the first call (the default chain may get them from a role), so a machine without
// them fails then, with a *CredentialsError that names the table and says what to set.
func (b *DataStoreBuilder) Build(ctx subsystems.ClientContext) (subsystems.PersistentDataStore, error) {
	if err := b.validate(); err != nil {
		return nil, err
	}
	if b.batchConcurrency < 1 {
		return nil, fmt.Errorf("lddynamodb: table %q: batch concurrency must be at least 1, got %d", b.table, b.batchConcurrency)
	}
	if b.initTimeout <= 0 {
		return nil, fmt.Errorf("lddynamodb: table %q: init timeout must be positive, got %v", b.table, b.initTimeout)
	}
	if b.staleMaxAge < 0 {
		return nil, fmt.Errorf("lddynamodb: table %q: stale-if-error max age must not be negative, got %v", b.table, b.staleMaxAge)
	}
	loggers := loggersOf(ctx, "DynamoDBDataStore:")
	conn, err := b.connect(context.Background(), loggers)
	if err != nil {
		return nil, err
	}
	return newStore(b, conn, loggers), nil
}

// loggersOf returns the SDK's loggers with the store's prefix, or default loggers for a caller
// that builds the store without the SDK.
func loggersOf(ctx subsystems.ClientContext, prefix string) ldlog.Loggers {
	loggers := ldlog.NewDefaultLoggers()
	if ctx != nil {
		loggers = ctx.GetLogging().Loggers
	}
	loggers.SetPrefix(prefix)
	return loggers
}

// DescribeConfiguration tells the SDK's diagnostic events that the data store is DynamoDB.
func (b *DataStoreBuilder) DescribeConfiguration(subsystems.ClientContext) ldvalue.Value {
	return ldvalue.String("DynamoDB")
}
