package lddynamodb

// How the stores reach DynamoDB: the client options both builders share, the client Build makes
// from them (or the one the caller gives), and the credential errors of that client.

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
	"go.opentelemetry.io/otel/metric"
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
	// optionsSet records a call of ClientOptions, whose options a given client ignores.
	optionsSet bool
	timeout    time.Duration
	metrics    *Metrics
	meters     metric.MeterProvider
}

func newClientOptions(table string) clientOptions {
	return clientOptions{table: table, timeout: DefaultOperationTimeout}
}

func (o *clientOptions) validate() error {
	if o.table == "" {
		return errors.New("lddynamodb: table name is empty")
	}
	if o.timeout <= 0 {
		return fmt.Errorf("lddynamodb: table %q: operation timeout must be positive, got %v", o.table, o.timeout)
	}
	return nil
}

// connection is what Build makes of clientOptions: a client, the HTTP transport the store owns
// (nil when the caller gave the client), whose idle connections Close releases, and the
// OpenTelemetry instruments (nil without a MeterProvider).
type connection struct {
	client    Client
	transport *http.Transport
	telemetry *telemetry
}

// connect returns the client to use. A given client is used as it is, and ClientConfig and
// ClientOptions are then ignored with a warning, as the official store ignores them; otherwise a
// client is made from the given aws.Config, or from the default AWS configuration chain
// (environment, shared files, web identity, container and Lambda roles).
func (o *clientOptions) connect(ctx context.Context, loggers ldlog.Loggers) (connection, error) {
	var tel *telemetry
	if o.meters != nil {
		var err error
		if tel, err = newTelemetry(o.meters, o.table, o.prefix); err != nil {
			return connection{}, fmt.Errorf("lddynamodb: table %q: creating metric instruments: %w", o.table, err)
		}
	}
	if o.client != nil {
		if ignored := o.ignoredByClient(); ignored != "" {
			loggers.Warnf("table %q: DynamoClient is set, so %s ignored; set them on the client instead", o.table, ignored)
		}
		return connection{client: o.client, telemetry: tel}, nil
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
	optFns := append(slices.Clip(o.optFns), markCredentialFailures)
	if tel != nil {
		optFns = append(optFns, tel.clientOption(o.table))
	}
	client := dynamodb.NewFromConfig(cfg, optFns...)
	// The region and credentials are checked on the client itself, after ClientOptions, which may
	// set them. Credentials are only fetched at the first call: the default chain may get them
	// from a role, and Build makes no call.
	if client.Options().Region == "" {
		return connection{}, fmt.Errorf("lddynamodb: table %q: no AWS region: set AWS_REGION, a profile's region, or a Region in ClientConfig or ClientOptions", o.table)
	}
	if client.Options().Credentials == nil {
		return connection{}, fmt.Errorf("lddynamodb: table %q: no AWS credentials found", o.table)
	}
	return connection{client: client, transport: transport, telemetry: tel}, nil
}

// CredentialsError is the error of a store operation that could not get AWS credentials: none
// are configured, they have expired and cannot be renewed, or the endpoint that serves them
// (instance metadata, a container or SSO endpoint, STS) cannot be reached or does not answer
// within OperationTimeout. Such a failure is neither retried by the AWS SDK nor answered from
// StaleIfError. Find it with errors.As; it is
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

// Retrieve fetches credentials before a DynamoDB call is sent. A fetch that runs out of the
// operation's time is a CredentialsError, not the deadline that a DynamoDB call which timed out
// gives, so that StaleIfError never hides a credential endpoint that hangs. A call that Close
// cancelled says so instead.
func (p *credentialsProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	creds, err := p.inner.Retrieve(ctx)
	if err != nil && !errors.Is(ctx.Err(), context.Canceled) {
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

// ignoredByClient names the settings that a given client makes void, for the warning of connect.
func (o *clientOptions) ignoredByClient() string {
	switch {
	case o.awsConfig != nil && o.optionsSet:
		return "ClientConfig and ClientOptions are"
	case o.awsConfig != nil:
		return "ClientConfig is"
	case o.optionsSet:
		return "ClientOptions is"
	}
	return ""
}

// callOptions are passed on every call. A client made here needs none; a given *dynamodb.Client
// gets its credential failures reported as a CredentialsError, as a made client does, and the
// request timing of tel (if not nil), which times only the store's calls of that client.
func (o *clientOptions) callOptions(tel *telemetry) []func(*dynamodb.Options) {
	if o.client == nil {
		return nil
	}
	var opts []func(*dynamodb.Options)
	if c, ok := o.client.(*dynamodb.Client); ok {
		// Marked once here, so that each call only sets the field.
		marked := c.Options()
		markCredentialFailures(&marked)
		opts = append(opts, func(o *dynamodb.Options) { o.Credentials = marked.Credentials })
	}
	if tel != nil {
		opts = append(opts, tel.clientOption(o.table))
	}
	return opts
}

// setClient, setClientConfig and addClientOptions are DynamoClient, ClientConfig and
// ClientOptions for both builders.
func (o *clientOptions) setClient(client Client) {
	if c, ok := client.(*dynamodb.Client); ok && c == nil {
		client = nil // a nil *dynamodb.Client leaves Build to make the client, as in the official store
	}
	o.client = client
}

func (o *clientOptions) setClientConfig(cfg aws.Config, optFns []func(*dynamodb.Options)) {
	o.awsConfig = &cfg
	o.optFns = append(o.optFns, optFns...)
}

func (o *clientOptions) addClientOptions(options dynamodb.Options, optFns []func(*dynamodb.Options)) {
	o.optionsSet = true
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
