// Command demo shows lddynamodb end to end with no AWS account: it starts the embedded local
// DynamoDB (dynalite), creates a table, lets one SDK client write flags into it, and has a second
// client, in daemon mode as in AWS Lambda, evaluate them from the table.
//
// Run it with `make demo`, which installs dynalite first.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/launchdarkly/go-sdk-common/v3/ldcontext"
	"github.com/launchdarkly/go-sdk-common/v3/ldvalue"
	ld "github.com/launchdarkly/go-server-sdk/v7"
	"github.com/launchdarkly/go-server-sdk/v7/ldcomponents"
	"github.com/launchdarkly/go-server-sdk/v7/testhelpers/ldtestdata"

	"github.com/lddynamodb/lddynamodb"
	"github.com/lddynamodb/lddynamodb/internal/dynalite"
)

const table = "lddynamodb-demo"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run() error {
	server, err := dynalite.Start()
	if err != nil {
		return err
	}
	defer server.Close()
	fmt.Println("local DynamoDB listening at", server.Endpoint)

	// Fake credentials: dynalite accepts any.
	awsConfig := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("demo", "demo", ""),
	}
	endpoint := func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(server.Endpoint) }
	if err := lddynamodb.CreateTable(context.Background(), dynamodb.NewFromConfig(awsConfig, endpoint), table); err != nil {
		return err
	}
	fmt.Println("created table", table)

	// The writer stands in for a service connected to LaunchDarkly (or the Relay Proxy): it gets
	// flags from its data source and persists them to the table.
	flags := ldtestdata.DataSource()
	flags.Update(flags.Flag("new-checkout").BooleanFlag().VariationForKey(ldcontext.DefaultKind, "alice", true).FallthroughVariation(false))
	flags.Update(flags.Flag("banner-text").ValueForAll(ldvalue.String("Welcome to the demo")))
	writerMetrics := &lddynamodb.Metrics{}
	writer, err := ld.MakeCustomClient("demo-sdk-key", ld.Config{
		DataSource: flags,
		DataStore: ldcomponents.PersistentDataStore(
			lddynamodb.DataStore(table).ClientConfig(awsConfig, endpoint).Prefix("demo").Metrics(writerMetrics)),
		Events:  ldcomponents.NoEvents(),
		Logging: ldcomponents.NoLogging(),
	}, 5*time.Second)
	if err != nil {
		return fmt.Errorf("writer client: %w", err)
	}
	defer writer.Close()
	fmt.Printf("writer stored the flags: %d DynamoDB calls %v\n", writerMetrics.Snapshot().TotalCalls(), writerMetrics.Snapshot().Calls)

	// The reader is what a Lambda handler runs: daemon mode, flags only from DynamoDB.
	readerMetrics := &lddynamodb.Metrics{}
	reader, err := daemonClient(lddynamodb.DataStore(table).ClientConfig(awsConfig, endpoint).Prefix("demo").Metrics(readerMetrics))
	if err != nil {
		return err
	}
	defer reader.Close()

	for _, user := range []string{"alice", "bob"} {
		context := ldcontext.New(user)
		checkout, detail, err := reader.BoolVariationDetail("new-checkout", context, false)
		if err != nil {
			return err
		}
		banner, _ := reader.StringVariation("banner-text", context, "(default)")
		fmt.Printf("reader: %-5s new-checkout=%-5v (%s)  banner-text=%q\n", user, checkout, detail.Reason, banner)
	}
	fmt.Printf("reader made %d DynamoDB calls %v; later evaluations are served from the SDK cache\n",
		readerMetrics.Snapshot().TotalCalls(), readerMetrics.Snapshot().Calls)

	flags.Update(flags.Flag("banner-text").ValueForAll(ldvalue.String("Updated while the reader runs")))
	// The reader's cache holds flags for 30 s; a new daemon client reads the update at once.
	fresh, err := daemonClient(lddynamodb.DataStore(table).ClientConfig(awsConfig, endpoint).Prefix("demo"))
	if err != nil {
		return err
	}
	defer fresh.Close()
	banner, _ := fresh.StringVariation("banner-text", ldcontext.New("bob"), "(default)")
	fmt.Printf("after an update by the writer, a new daemon client reads banner-text=%q\n", banner)
	return nil
}

// daemonClient is an SDK client in daemon mode: it reads flags from the store only, caching them
// for 30 seconds.
func daemonClient(store *lddynamodb.DataStoreBuilder) (*ld.LDClient, error) {
	client, err := ld.MakeCustomClient("demo-sdk-key", ld.Config{
		DataSource: ldcomponents.ExternalUpdatesOnly(),
		DataStore:  ldcomponents.PersistentDataStore(store).CacheSeconds(30),
		Events:     ldcomponents.NoEvents(),
		Logging:    ldcomponents.NoLogging(),
	}, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("daemon-mode client: %w", err)
	}
	return client, nil
}
