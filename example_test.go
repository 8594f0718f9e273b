package lddynamodb_test

import (
	"fmt"
	"time"

	ld "github.com/launchdarkly/go-server-sdk/v7"
	"github.com/launchdarkly/go-server-sdk/v7/ldcomponents"

	"github.com/lddynamodb/lddynamodb"
)

// The standard setup: the SDK gets flags from LaunchDarkly, keeps them in DynamoDB, and caches
// what it reads for 30 seconds. AWS credentials and region come from the environment.
func Example() {
	config := ld.Config{
		DataStore: ldcomponents.PersistentDataStore(lddynamodb.DataStore("my-table")).CacheSeconds(30),
	}
	client, err := ld.MakeCustomClient("your-sdk-key", config, 5*time.Second)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()
}

// Daemon mode, as in AWS Lambda: the SDK never connects to LaunchDarkly and reads flags only from
// the table that the Relay Proxy (or another SDK) fills. Several environments share the table
// through prefixes.
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
		fmt.Println(err)
		return
	}
	defer client.Close()
}
