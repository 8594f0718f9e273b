package lddynamodb_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	ld "github.com/launchdarkly/go-server-sdk/v7"
	"github.com/launchdarkly/go-server-sdk/v7/ldcomponents"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoreimpl"

	"github.com/lddynamodb/lddynamodb"
)

// Examples with an Output run with the tests. The others need LaunchDarkly or a DynamoDB table,
// so they are only compiled; docs_test.go checks that no other example goes without an Output.

// The standard setup: the SDK gets flags from LaunchDarkly, keeps them in DynamoDB, and caches
// what it reads for 30 seconds. AWS credentials and region come from the environment.
func Example() {
	config := ld.Config{
		DataStore: ldcomponents.PersistentDataStore(lddynamodb.DataStore("my-table")).CacheSeconds(30),
	}
	client, err := ld.MakeCustomClient("your-sdk-key", config, 5*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
}

// Daemon mode, as in AWS Lambda: the SDK never connects to LaunchDarkly for flags and reads them
// only from the table that the Relay Proxy (or another SDK) fills. Several environments share the
// table through prefixes. Analytics events still go to LaunchDarkly, with the SDK key.
func Example_daemonMode() {
	config := ld.Config{
		DataSource: ldcomponents.ExternalUpdatesOnly(),
		DataStore: ldcomponents.PersistentDataStore(
			lddynamodb.DataStore("my-table").Prefix("production").StaleIfError(10 * time.Minute),
		).CacheSeconds(30),
		Events: ldcomponents.SendEvents(),
	}
	client, err := ld.MakeCustomClient("your-sdk-key", config, 5*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
}

// A local DynamoDB, such as `make dynamodb` starts: a client option sets the endpoint, and the
// credentials can be anything.
func Example_localEndpoint() {
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
	}
	store := lddynamodb.DataStore("launchdarkly").ClientConfig(cfg, func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String("http://127.0.0.1:8000")
	})
	config := ld.Config{
		DataSource: ldcomponents.ExternalUpdatesOnly(),
		DataStore:  ldcomponents.PersistentDataStore(store).CacheSeconds(30),
		Events:     ldcomponents.NoEvents(),
	}
	client, err := ld.MakeCustomClient("", config, 5*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	// In daemon mode the client is ready at once: it waits for no connection, and reads the
	// table only when it evaluates a flag.
	fmt.Println("ready:", client.Initialized())
	// Output: ready: true
}

// A program written for LaunchDarkly's official store (go-server-sdk-dynamodb/v4) needs only its
// import line changed: these are the calls of that store's documentation (docs/migrating.md).
func Example_migratingFromTheOfficialStore() {
	config := ld.Config{
		DataStore: ldcomponents.PersistentDataStore(
			lddynamodb.DataStore("table1").Prefix("production").ClientOptions(dynamodb.Options{Region: "us-east-1"}),
		).CacheSeconds(15),
		BigSegments: ldcomponents.BigSegments(
			lddynamodb.BigSegmentStore("table2").ClientOptions(dynamodb.Options{Region: "us-east-1"}),
		),
	}
	_ = config
	// Output:
}

// Reads and Upserts rely on the AWS SDK's retryer: for DynamoDB, 4 attempts in all by default.
// A table that expects heavy throttling can have a more patient one. (Init retries throttled and
// unprocessed writes itself, until InitTimeout.)
func ExampleDataStoreBuilder_ClientOptions() {
	store := lddynamodb.DataStore("my-table").ClientOptions(dynamodb.Options{
		Retryer: retry.NewStandard(func(so *retry.StandardOptions) { so.MaxAttempts = 10 }),
	})
	_ = ldcomponents.PersistentDataStore(store).CacheSeconds(30)
	// Output:
}

// Serve the last value read or written, for up to 10 minutes, when DynamoDB is throttled or
// unreachable, instead of every flag's default.
func ExampleDataStoreBuilder_StaleIfError() {
	store := ldcomponents.PersistentDataStore(
		lddynamodb.DataStore("my-table").StaleIfError(10 * time.Minute),
	).CacheSeconds(30)
	_ = ld.Config{DataStore: store}
	// Output:
}

// Create the table once, at deployment: on-demand billing, waits until it is ACTIVE, and
// succeeds without changes if an identical table exists. It needs dynamodb:CreateTable and
// dynamodb:DescribeTable, which the stores themselves never call.
func ExampleCreateTable() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if err := lddynamodb.CreateTable(ctx, dynamodb.NewFromConfig(cfg), "my-table"); err != nil {
		log.Fatal(err)
	}
}

// Count the store's DynamoDB work for your own metrics: one Metrics may be shared by the data
// store and the big segment store.
func ExampleMetrics() {
	metrics := &lddynamodb.Metrics{}
	config := ld.Config{
		DataStore: ldcomponents.PersistentDataStore(
			lddynamodb.DataStore("my-table").Metrics(metrics)).CacheSeconds(30),
	}
	client, err := ld.MakeCustomClient("your-sdk-key", config, 5*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	snap := metrics.Snapshot()
	fmt.Printf("%d calls (%d GetItem), %d failed, %d items written, %.0f capacity units\n",
		snap.TotalCalls(), snap.Calls["GetItem"], snap.Errors["GetItem"], snap.ItemsWritten, snap.CapacityUnits)
}

// Where rows go: flags and segments under a namespace per kind, and the initialized marker,
// each with an optional prefix that environments sharing a table tell apart.
func ExampleNamespace() {
	fmt.Println(lddynamodb.Namespace("", ldstoreimpl.Features()))
	fmt.Println(lddynamodb.Namespace("production", ldstoreimpl.Features()))
	fmt.Println(lddynamodb.Namespace("production", ldstoreimpl.Segments()))
	fmt.Println(lddynamodb.InitedMarker("production"))
	// Output:
	// features
	// production:features
	// production:segments
	// production:$inited
}

// The row layout, shared with the Relay Proxy and every LaunchDarkly SDK: a flag's row holds its
// version and its JSON; deleted items ("tombstones") come in several shapes, all read as deleted.
func ExampleDecodeRow() {
	rows := []map[string]types.AttributeValue{
		{ // a flag, as every store writes it
			"namespace": &types.AttributeValueMemberS{Value: "production:features"},
			"key":       &types.AttributeValueMemberS{Value: "new-checkout"},
			"version":   &types.AttributeValueMemberN{Value: "12"},
			"item":      &types.AttributeValueMemberS{Value: `{"key":"new-checkout","version":12,"on":true}`},
		},
		{ // a deleted flag, as Go, Relay, Node, Python and Ruby write it
			"namespace": &types.AttributeValueMemberS{Value: "production:features"},
			"key":       &types.AttributeValueMemberS{Value: "old-banner"},
			"version":   &types.AttributeValueMemberN{Value: "7"},
			"item":      &types.AttributeValueMemberS{Value: `{"key":"old-banner","version":7,"deleted":true}`},
		},
		{ // a deleted flag, as Java and .NET write it
			"namespace": &types.AttributeValueMemberS{Value: "production:features"},
			"key":       &types.AttributeValueMemberS{Value: "retired"},
			"version":   &types.AttributeValueMemberN{Value: "3"},
			"item":      &types.AttributeValueMemberS{Value: "null"},
		},
		{ // a row no LaunchDarkly store writes
			"namespace": &types.AttributeValueMemberS{Value: "production:features"},
			"key":       &types.AttributeValueMemberS{Value: "odd"},
			"version":   &types.AttributeValueMemberS{Value: "3"},
		},
	}
	for _, row := range rows {
		key, item, err := lddynamodb.DecodeRow(row)
		if err != nil {
			fmt.Println(err)
			continue
		}
		if item.Deleted {
			fmt.Printf("%s: version %d, deleted\n", key, item.Version)
			continue
		}
		fmt.Printf("%s: version %d, %s\n", key, item.Version, item.SerializedItem)
	}
	// Output:
	// new-checkout: version 12, {"key":"new-checkout","version":12,"on":true}
	// old-banner: version 7, deleted
	// retired: version 3, deleted
	// row namespace="production:features" key="odd" cannot be decoded: "version" is not a number (type *types.AttributeValueMemberS)
}

// Build checks the options before it makes a client, and says what to fix.
func ExampleDataStoreBuilder_Build() {
	builders := []*lddynamodb.DataStoreBuilder{
		lddynamodb.DataStore(""),
		lddynamodb.DataStore("my-table").BatchConcurrency(0),
		lddynamodb.DataStore("my-table").StaleIfError(-time.Minute),
		lddynamodb.DataStore("my-table").OperationTimeout(0),
	}
	for _, b := range builders {
		_, err := b.Build(nil)
		fmt.Println(err)
	}
	// Output:
	// lddynamodb: table name is empty
	// lddynamodb: table "my-table": batch concurrency must be at least 1, got 0
	// lddynamodb: table "my-table": stale-if-error max age must not be negative, got -1m0s
	// lddynamodb: table "my-table": operation timeout must be positive, got 0s
}

// Daemon mode under the SDK's data system (experimental in go-server-sdk 7.14): as
// Example_daemonMode, the SDK only reads the table, through its cache.
func Example_dataSystemDaemon() {
	config := ld.Config{
		DataSystem: ldcomponents.DataSystem().Daemon(
			ldcomponents.PersistentDataStore(
				lddynamodb.DataStore("my-table").StaleIfError(10 * time.Minute),
			).CacheSeconds(30),
		),
	}
	client, err := ld.MakeCustomClient("your-sdk-key", config, 5*time.Second)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()
}

// The data system's persistent store mode (experimental in go-server-sdk 7.14): the SDK evaluates
// from the table until its first data from LaunchDarkly arrives, then from memory, and writes
// every update to the table.
func Example_dataSystemPersistentStore() {
	config := ld.Config{
		DataSystem: ldcomponents.DataSystem().PersistentStore(
			ldcomponents.PersistentDataStore(lddynamodb.DataStore("my-table")).CacheSeconds(30),
		),
	}
	client, err := ld.MakeCustomClient("your-sdk-key", config, 5*time.Second)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()
}

// A custom data system (experimental in go-server-sdk 7.14): streaming only, writing what it
// receives to the table. subsystems.DataStoreModeRead would only read it, as Daemon does.
func Example_dataSystemCustom() {
	config := ld.Config{
		DataSystem: ldcomponents.DataSystem().Custom().
			Synchronizers(ldcomponents.StreamingDataSourceV2()).
			DataStore(ldcomponents.PersistentDataStore(lddynamodb.DataStore("my-table")), subsystems.DataStoreModeReadWrite),
	}
	client, err := ld.MakeCustomClient("your-sdk-key", config, 5*time.Second)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()
}
