package lddynamodb_test

import (
	"fmt"
	"time"

	ld "github.com/launchdarkly/go-server-sdk/v7"
	"github.com/launchdarkly/go-server-sdk/v7/ldcomponents"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems"

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
