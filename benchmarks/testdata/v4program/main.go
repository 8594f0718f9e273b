// Command v4program is a program written for LaunchDarkly's official DynamoDB store,
// github.com/launchdarkly/go-server-sdk-dynamodb/v4, with only its import path changed to
// lddynamodb's. v4program_test.go builds it twice, as it is and with the official import path
// put back, and runs both against the same table.
//
// It evaluates flags in daemon mode (flags from the table only, big segments too) and prints each
// flag's value as one JSON object. -client chooses how the DynamoDB client is configured: with
// every builder call of the official store.
package main

import (
	"encoding/json"
	"flag"
	"log"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/launchdarkly/go-sdk-common/v3/ldcontext"
	"github.com/launchdarkly/go-sdk-common/v3/ldvalue"
	ld "github.com/launchdarkly/go-server-sdk/v7"
	"github.com/launchdarkly/go-server-sdk/v7/ldcomponents"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems"

	"github.com/lddynamodb/lddynamodb"
)

func main() {
	table := flag.String("table", "", "DynamoDB table")
	prefix := flag.String("prefix", "", "prefix of the environment's rows")
	endpoint := flag.String("endpoint", "", "DynamoDB endpoint, for -client config, options and client")
	how := flag.String("client", "default", "how the client is configured: default, config, options or client")
	flags := flag.String("flags", "", "comma-separated flag keys to evaluate")
	user := flag.String("context", "user-1", "context key")
	flag.Parse()

	store := lddynamodb.DataStore(*table).Prefix(*prefix)
	bigSegments := lddynamodb.BigSegmentStore(*table).Prefix(*prefix)
	region := "us-east-1"
	creds := credentials.NewStaticCredentialsProvider("AKIDLOCAL", "local-secret", "")
	switch *how {
	case "default": // region, credentials and endpoint from the environment
	case "config":
		cfg := aws.Config{Region: region, Credentials: creds}
		withEndpoint := func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(*endpoint) }
		store.ClientConfig(cfg, withEndpoint)
		bigSegments.ClientConfig(cfg, withEndpoint)
	case "options":
		options := dynamodb.Options{Region: region, Credentials: creds, BaseEndpoint: aws.String(*endpoint)}
		store.ClientOptions(options)
		bigSegments.ClientOptions(options)
	case "client":
		client := dynamodb.New(dynamodb.Options{Region: region, Credentials: creds, BaseEndpoint: aws.String(*endpoint)})
		store.DynamoClient(client)
		bigSegments.DynamoClient(client)
	default:
		log.Fatalf("unknown -client %q", *how)
	}

	// The SDK calls Build; calling it here first checks the configuration.
	built, err := store.Build(subsystems.BasicClientContext{})
	if err != nil {
		log.Fatalf("building the data store: %v", err)
	}
	_ = built.Close()

	config := ld.Config{
		DataSource:       ldcomponents.ExternalUpdatesOnly(),
		DataStore:        ldcomponents.PersistentDataStore(store).CacheSeconds(30),
		BigSegments:      ldcomponents.BigSegments(bigSegments),
		Events:           ldcomponents.NoEvents(),
		DiagnosticOptOut: true,
		Logging:          ldcomponents.NoLogging(),
	}
	client, err := ld.MakeCustomClient("sdk-key", config, 5*time.Second)
	if err != nil {
		log.Fatalf("making the SDK client: %v", err)
	}
	defer client.Close()

	values := map[string]ldvalue.Value{}
	for _, key := range strings.Split(*flags, ",") {
		values[key], _ = client.JSONVariation(key, ldcontext.New(*user), ldvalue.Null())
	}
	if err := json.NewEncoder(os.Stdout).Encode(values); err != nil {
		log.Fatal(err)
	}
}
