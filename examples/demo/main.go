// Command demo shows lddynamodb end to end with no AWS account: it starts the embedded local
// DynamoDB (dynalite), creates a table, lets one SDK client write flags into it, and has a second
// client, in daemon mode as in AWS Lambda, evaluate them from the table. Then it stops DynamoDB:
// a daemon-mode client with StaleIfError keeps serving the flags it read, one without it falls
// back to the defaults.
//
// Run it with `make demo`, which installs dynalite first.
package main

import (
	"context"
	"fmt"
	"io"
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
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// run runs the demo, writing what happens to out.
func run(out io.Writer) error {
	server, err := dynalite.Start()
	if err != nil {
		return err
	}
	defer server.Close()
	fmt.Fprintln(out, "local DynamoDB listening at", server.Endpoint)

	// Fake credentials: dynalite accepts any.
	awsConfig := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("demo", "demo", ""),
	}
	endpoint := func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(server.Endpoint) }
	if err := lddynamodb.CreateTable(context.Background(), dynamodb.NewFromConfig(awsConfig, endpoint), table); err != nil {
		return err
	}
	fmt.Fprintln(out, "created table", table)

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
	fmt.Fprintf(out, "writer stored the flags: %d DynamoDB calls %v\n", writerMetrics.Snapshot().TotalCalls(), writerMetrics.Snapshot().Calls)

	// The reader is what a Lambda handler runs: daemon mode, flags only from DynamoDB.
	readerMetrics := &lddynamodb.Metrics{}
	store := func() *lddynamodb.DataStoreBuilder {
		return lddynamodb.DataStore(table).ClientConfig(awsConfig, endpoint).Prefix("demo")
	}
	reader, err := daemonClient(store().Metrics(readerMetrics), 30)
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
		fmt.Fprintf(out, "reader: %-5s new-checkout=%-5v (%s)  banner-text=%q\n", user, checkout, detail.Reason, banner)
	}
	fmt.Fprintf(out, "reader made %d DynamoDB calls %v; later evaluations are served from the SDK cache\n",
		readerMetrics.Snapshot().TotalCalls(), readerMetrics.Snapshot().Calls)

	flags.Update(flags.Flag("banner-text").ValueForAll(ldvalue.String("Updated while the reader runs")))
	// The reader's cache holds flags for 30 s; a new daemon client reads the update at once.
	fresh, err := daemonClient(store(), 30)
	if err != nil {
		return err
	}
	defer fresh.Close()
	banner, _ := fresh.StringVariation("banner-text", ldcontext.New("bob"), "(default)")
	fmt.Fprintf(out, "after an update by the writer, a new daemon client reads banner-text=%q\n", banner)
	return outage(out, server, store)
}

// outage has two daemon-mode clients with a 1-second cache, one with StaleIfError, read a flag,
// then stops DynamoDB and has them read it again once their caches have expired.
func outage(out io.Writer, server *dynalite.Server, store func() *lddynamodb.DataStoreBuilder) error {
	staleMetrics := &lddynamodb.Metrics{}
	clients := map[string]*ld.LDClient{}
	for name, s := range map[string]*lddynamodb.DataStoreBuilder{
		"with StaleIfError":    store().StaleIfError(time.Minute).Metrics(staleMetrics),
		"without StaleIfError": store(),
	} {
		client, err := daemonClient(s.OperationTimeout(2*time.Second), 1)
		if err != nil {
			return err
		}
		defer client.Close()
		clients[name] = client
	}
	bob := ldcontext.New("bob")
	for _, client := range clients {
		_, _ = client.StringVariation("banner-text", bob, "(default)")
	}
	server.Close()
	fmt.Fprintln(out, "DynamoDB stopped")
	time.Sleep(1500 * time.Millisecond) // past the clients' 1-second cache
	for _, name := range []string{"with StaleIfError", "without StaleIfError"} {
		banner, _ := clients[name].StringVariation("banner-text", bob, "(default)")
		fmt.Fprintf(out, "during the outage, a daemon client %s reads banner-text=%q\n", name, banner)
	}
	fmt.Fprintf(out, "stale reads served: %d\n", staleMetrics.Snapshot().StaleReads)
	return nil
}

// daemonClient is an SDK client in daemon mode: it reads flags from the store only, caching them
// for cacheSeconds.
func daemonClient(store *lddynamodb.DataStoreBuilder, cacheSeconds int) (*ld.LDClient, error) {
	client, err := ld.MakeCustomClient("demo-sdk-key", ld.Config{
		DataSource: ldcomponents.ExternalUpdatesOnly(),
		DataStore:  ldcomponents.PersistentDataStore(store).CacheSeconds(cacheSeconds),
		Events:     ldcomponents.NoEvents(),
		Logging:    ldcomponents.NoLogging(),
	}, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("daemon-mode client: %w", err)
	}
	return client, nil
}
