package lddynamodb

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/launchdarkly/go-sdk-common/v3/ldlog"
	"github.com/launchdarkly/go-sdk-common/v3/ldvalue"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems"
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

// Client is the part of the DynamoDB API that the stores call. A *dynamodb.Client satisfies it;
// any other implementation must behave like DynamoDB. Its methods map one to one to the IAM
// actions that docs/table.md lists, so a wrapper can log or meter them.
type Client interface {
	GetItem(ctx context.Context, params *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, params *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	Query(ctx context.Context, params *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchWriteItem(ctx context.Context, params *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
}

var _ Client = (*dynamodb.Client)(nil)

// clientOptions are the options that DataStoreBuilder and BigSegmentStoreBuilder share: which
// table, which prefix, and how to reach DynamoDB.
type clientOptions struct {
	table     string
	prefix    string
	client    Client
	awsConfig *aws.Config
	optFns    []func(*dynamodb.Options)
	timeout   time.Duration
	metrics   *Metrics
}

func newClientOptions(table string) clientOptions {
	return clientOptions{table: table, timeout: DefaultOperationTimeout}
}

func (o *clientOptions) validate() error {
	if o.table == "" {
		return errors.New("lddynamodb: table name is empty")
	}
	if o.client != nil && o.awsConfig != nil {
		return fmt.Errorf("lddynamodb: table %q: DynamoClient and ClientConfig both set; give one", o.table)
	}
	if o.timeout <= 0 {
		return fmt.Errorf("lddynamodb: table %q: operation timeout must be positive, got %v", o.table, o.timeout)
	}
	return nil
}

// connection is what Build makes of clientOptions: a client, and the HTTP transport the store
// owns (nil when the caller gave the client), whose idle connections Close releases.
type connection struct {
	client    Client
	transport *http.Transport
}

// connect returns the client to use. A given client is used as it is (its per-call options are
// applied on every call by the store); otherwise a client is made from the given aws.Config, or
// from the default AWS configuration chain (environment, shared files, web identity, container
// and Lambda roles).
func (o *clientOptions) connect(ctx context.Context) (connection, error) {
	if o.client != nil {
		return connection{client: o.client}, nil
	}
	var cfg aws.Config
	if o.awsConfig != nil {
		cfg = o.awsConfig.Copy()
	} else {
		loaded, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return connection{}, fmt.Errorf("lddynamodb: table %q: loading AWS configuration: %w", o.table, err)
		}
		cfg = loaded
	}
	var transport *http.Transport
	if buildable, ok := cfg.HTTPClient.(*awshttp.BuildableClient); ok || cfg.HTTPClient == nil {
		// The store owns this transport, so Close can release its connections.
		if buildable == nil {
			buildable = awshttp.NewBuildableClient()
		}
		transport = buildable.GetTransport()
		cfg.HTTPClient = &http.Client{Transport: transport, Timeout: buildable.GetTimeout()}
	}
	client := dynamodb.NewFromConfig(cfg, append(slices.Clip(o.optFns), markCredentialFailures)...)
	// The region and credentials are checked on the client itself, after ClientOptions, which may
	// set them. Credentials are only fetched at the first call: the default chain may get them
	// from a role, and Build makes no call.
	if client.Options().Region == "" {
		return connection{}, fmt.Errorf("lddynamodb: table %q: no AWS region: set AWS_REGION, a profile's region, or pass ClientConfig", o.table)
	}
	if client.Options().Credentials == nil {
		return connection{}, fmt.Errorf("lddynamodb: table %q: no AWS credentials found", o.table)
	}
	return connection{client: client, transport: transport}, nil
}

// CredentialsError is the error of a store operation that could not get AWS credentials: none
// are configured, they have expired and cannot be renewed, or the endpoint that serves them
// (instance metadata, a container or SSO endpoint, STS) cannot be reached. Such a failure is
// neither retried by the AWS SDK nor answered from StaleIfError. Find it with errors.As; it is
// raised before any DynamoDB call is sent. Clients made by Build report it, as does a
// *dynamodb.Client given to DynamoClient; any other Client reports what it reports.
type CredentialsError struct {
	// Err is the credential provider's error.
	Err error
}

func (e *CredentialsError) Error() string {
	return "no usable AWS credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE to a profile " +
		"of ~/.aws/config, or run with an IAM role: EC2 instance profile, ECS task role, EKS service account): " + e.Err.Error()
}

// Unwrap returns the credential provider's error.
func (e *CredentialsError) Unwrap() error { return e.Err }

// RetryableError tells the AWS SDK's retryer that another attempt would not help.
func (e *CredentialsError) RetryableError() bool { return false }

// credentialsProvider reports the failures of the provider it wraps as a CredentialsError.
type credentialsProvider struct {
	inner aws.CredentialsProvider
}

func markCredentialFailures(o *dynamodb.Options) {
	if o.Credentials != nil {
		o.Credentials = &credentialsProvider{inner: o.Credentials}
	}
}

func (p *credentialsProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	creds, err := p.inner.Retrieve(ctx)
	if err != nil && ctx.Err() == nil { // a call that timed out or was cancelled says so instead
		return creds, &CredentialsError{Err: err}
	}
	return creds, err
}

// IsCredentialsProvider lets the AWS SDK see what is wrapped (it looks for anonymous credentials).
func (p *credentialsProvider) IsCredentialsProvider(target aws.CredentialsProvider) bool {
	return aws.IsCredentialsProvider(p.inner, target)
}

// withCredentialsCause cuts the AWS SDK's wrapping off a CredentialsError, which says what to fix
// on its own.
func withCredentialsCause(err error) error {
	var credErr *CredentialsError
	if errors.As(err, &credErr) {
		return credErr
	}
	return err
}

// callOptions are passed on every call: with a client made here they are already applied, with a
// given client they are how ClientOptions (an endpoint, say) takes effect.
func (o *clientOptions) callOptions() []func(*dynamodb.Options) {
	if o.client == nil {
		return nil
	}
	if c, ok := o.client.(*dynamodb.Client); ok {
		// Marked once here, so that each call only sets the field; ClientOptions that set
		// credentials come after and win.
		marked := c.Options()
		markCredentialFailures(&marked)
		return append([]func(*dynamodb.Options){func(o *dynamodb.Options) { o.Credentials = marked.Credentials }}, o.optFns...)
	}
	return o.optFns
}

// setClientConfig and addClientOptions are ClientConfig and ClientOptions for both builders.
func (o *clientOptions) setClientConfig(cfg aws.Config, optFns []func(*dynamodb.Options)) {
	o.awsConfig = &cfg
	o.optFns = append(o.optFns, optFns...)
}

func (o *clientOptions) addClientOptions(options dynamodb.Options, optFns []func(*dynamodb.Options)) {
	o.optFns = append(o.optFns, func(target *dynamodb.Options) { mergeOptions(target, options) })
	o.optFns = append(o.optFns, optFns...)
}

// mergeOptions sets every exported field of target that is non-zero in source to source's value,
// except APIOptions, which source's are added to (as the official store does). Going over the
// fields by reflection honours each field the AWS SDK has now or adds later; the official store
// copies a fixed list and so drops BaseEndpoint, among others.
func mergeOptions(target *dynamodb.Options, source dynamodb.Options) {
	dst := reflect.ValueOf(target).Elem()
	src := reflect.ValueOf(source)
	for i := range src.NumField() {
		field := src.Type().Field(i)
		value := src.Field(i)
		if !field.IsExported() || value.IsZero() {
			continue
		}
		if field.Name == "APIOptions" {
			target.APIOptions = append(slices.Clip(target.APIOptions), source.APIOptions...)
			continue
		}
		dst.Field(i).Set(value)
	}
}

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
	}
}

// Prefix sets a prefix for the namespaces of all rows, so that several LaunchDarkly environments
// can share one table: rows go to "PREFIX:features" instead of "features". Use the same prefix as
// the Relay Proxy or the other SDKs that share the table. The default is no prefix. Build refuses
// a prefix over 1,016 bytes, whose marker row DynamoDB could not hold.
func (b *DataStoreBuilder) Prefix(prefix string) *DataStoreBuilder {
	b.prefix = prefix
	return b
}

// DynamoClient sets a ready DynamoDB client (usually a *dynamodb.Client) instead of one made by
// Build. ClientOptions still apply, on every call. It cannot be combined with ClientConfig.
func (b *DataStoreBuilder) DynamoClient(client Client) *DataStoreBuilder {
	b.client = client
	return b
}

// ClientConfig sets the AWS configuration from which Build makes the DynamoDB client, instead of
// the default configuration chain, and adds optFns to the client options (as ClientOptions). It
// cannot be combined with DynamoClient.
func (b *DataStoreBuilder) ClientConfig(cfg aws.Config, optFns ...func(*dynamodb.Options)) *DataStoreBuilder {
	b.setClientConfig(cfg, optFns)
	return b
}

// ClientOptions sets DynamoDB client options, as the official store's ClientOptions does: the
// non-zero fields of options replace those of the configuration the client is made from (the
// default chain, or ClientConfig's), APIOptions are added to, and then optFns run in the order
// given. Unlike the official store, every field counts, BaseEndpoint included (the official store
// drops it, so a local endpoint set there is ignored). Calls add up, in order.
//
//	lddynamodb.DataStore("my-table").ClientOptions(dynamodb.Options{}, dynamodb.Options{BaseEndpoint: aws.String("http://127.0.0.1:8000")})
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
// otherwise return with every call.
func (b *DataStoreBuilder) Metrics(m *Metrics) *DataStoreBuilder {
	b.metrics = m
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

// InitTimeout bounds how long one Init may take, including retries of throttled and unprocessed
// writes (DefaultInitTimeout). An Init that runs out of time returns an error and does not write
// the initialized marker.
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
	if marker := InitedMarker(b.prefix); keyProblem(marker, marker) != "" {
		return nil, fmt.Errorf("lddynamodb: table %q: a prefix of %d bytes is too long: the initialized marker's key, PREFIX:%s, "+
			"would be %d bytes, over DynamoDB's sort key limit of %d", b.table, len(b.prefix), initedKey, len(marker), MaxSortKeyBytes)
	}
	if b.staleMaxAge < 0 {
		return nil, fmt.Errorf("lddynamodb: table %q: stale-if-error max age must not be negative, got %v", b.table, b.staleMaxAge)
	}
	conn, err := b.connect(context.Background())
	if err != nil {
		return nil, err
	}
	loggers := ldlog.NewDefaultLoggers() // for a caller that builds the store without the SDK
	if ctx != nil {
		loggers = ctx.GetLogging().Loggers
	}
	return newStore(b, conn, loggers), nil
}

// DescribeConfiguration tells the SDK's diagnostic events that the data store is DynamoDB.
func (b *DataStoreBuilder) DescribeConfiguration(subsystems.ClientContext) ldvalue.Value {
	return ldvalue.String("DynamoDB")
}
