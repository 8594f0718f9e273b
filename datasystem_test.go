package lddynamodb_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/launchdarkly/go-sdk-common/v3/ldcontext"
	"github.com/launchdarkly/go-sdk-common/v3/ldvalue"
	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldbuilders"
	ld "github.com/launchdarkly/go-server-sdk/v7"
	"github.com/launchdarkly/go-server-sdk/v7/interfaces"
	"github.com/launchdarkly/go-server-sdk/v7/ldcomponents"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoreimpl"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
	"github.com/launchdarkly/go-server-sdk/v7/testhelpers/ldtestdatav2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lddynamodb/lddynamodb"
	"github.com/lddynamodb/lddynamodb/internal/faults"
	"github.com/lddynamodb/lddynamodb/internal/testenv"
)

// These tests run the store under the SDK's new data system (ldcomponents.DataSystem(),
// experimental in go-server-sdk 7.14), in each of its modes, with real SDK clients.

// dsVersions reads the version of every row of a namespace, bypassing the store.
func dsVersions(t *testing.T, table, namespace string) map[string]int {
	t.Helper()
	versions := map[string]int{}
	for _, row := range testenv.Rows(t, table, namespace) {
		key, item, err := lddynamodb.DecodeRow(row)
		require.NoError(t, err)
		versions[key] = item.Version
	}
	return versions
}

// readWriteClient is an SDK client of the data system that takes its data from td and writes it
// to the store (DataStoreModeReadWrite), as a service connected to LaunchDarkly does.
func readWriteClient(t *testing.T, td *ldtestdatav2.TestDataSynchronizer, store *lddynamodb.DataStoreBuilder) *ld.LDClient {
	t.Helper()
	client, _ := testenv.SDKClient(t, ld.Config{DataSystem: ldcomponents.DataSystem().Custom().
		Synchronizers(td).
		DataStore(ldcomponents.PersistentDataStore(store), subsystems.DataStoreModeReadWrite)})
	return client
}

func TestDataSystemReadWriteClientFeedsDaemonClients(t *testing.T) {
	table := testenv.NewTable(t)
	td := ldtestdatav2.DataSource()
	td.Update(td.Flag("greeting").ValueForAll(ldvalue.String("hello")))
	// The segment and the flag that uses it reach the client in its first full transfer.
	td.UsePreconfiguredSegment(ldbuilders.NewSegmentBuilder("members").Included(cacheUser.Key()).Build())
	td.UsePreconfiguredFlag(ldbuilders.NewFlagBuilder("beta").On(true).
		Variations(ldvalue.String("everyone"), ldvalue.String("beta")).FallthroughVariation(0).OffVariation(0).
		AddRule(ldbuilders.NewRuleBuilder().ID("members").Variation(1).Clauses(ldbuilders.SegmentMatchClause("members"))).
		Build())

	readWriteClient(t, td, testenv.DataStore(table))
	// The client is ready once its first full transfer is applied, Init included.
	assert.Equal(t, map[string]int{"greeting": 1, "beta": 1}, dsVersions(t, table, "features"))
	assert.Equal(t, map[string]int{"members": 1}, dsVersions(t, table, "segments"))

	// A daemon client of the data system, with the SDK's cache off so that it reads every change,
	// and a daemon client of the classic configuration, read what the data system wrote.
	daemon, _ := testenv.SDKClient(t, ld.Config{DataSystem: ldcomponents.DataSystem().
		Daemon(ldcomponents.PersistentDataStore(testenv.DataStore(table)).CacheSeconds(0))})
	classic, _ := testenv.DaemonClient(t, testenv.DataStore(table), 0)
	for name, client := range map[string]*ld.LDClient{"data system": daemon, "classic": classic} {
		assert.True(t, client.Initialized(), name)
		assert.Equal(t, "hello", cacheEval(client, "greeting"), name)
		assert.Equal(t, "beta", cacheEval(client, "beta"), name)
		other, _ := client.StringVariation("beta", ldcontext.New("someone-else"), cacheFallback)
		assert.Equal(t, "everyone", other, name)
	}

	// Updates reach the table as Upserts, and the daemon clients from it.
	td.Update(td.Flag("greeting").ValueForAll(ldvalue.String("bonjour")))
	td.Update(td.Flag("new-flag").VariationForAll(true))
	require.Eventually(t, func() bool {
		on, _ := daemon.BoolVariation("new-flag", cacheUser, false)
		return on && cacheEval(daemon, "greeting") == "bonjour"
	}, 30*time.Second, 20*time.Millisecond)
	on, _ := classic.BoolVariation("new-flag", cacheUser, false)
	assert.True(t, on)
	assert.Equal(t, "bonjour", cacheEval(classic, "greeting"))
	assert.Equal(t, map[string]int{"greeting": 2, "beta": 1, "new-flag": 1}, dsVersions(t, table, "features"))

	// Another read-write client starting with the same data writes only the initialized marker:
	// Init leaves rows that already hold the same item.
	metrics := &lddynamodb.Metrics{}
	readWriteClient(t, td, testenv.DataStore(table).Metrics(metrics))
	s := metrics.Snapshot()
	assert.Equal(t, int64(1), s.ItemsWritten, "rows written by the second client's Init: %v", s.Calls)
	assert.Zero(t, s.Calls["BatchWriteItem"])
}

func TestDataSystemPersistentStoreServesTableBeforeDataSource(t *testing.T) {
	table := testenv.NewTable(t)
	writer, _ := testenv.Build(t, testenv.DataStore(table))
	require.NoError(t, writer.Init(testenv.AllData(
		[]ldstoretypes.KeyedSerializedItemDescriptor{cacheFlag("greeting", 3, "from-table", "")}, nil)))

	// LaunchDarkly is a closed port here, so the client's data source never gets data.
	closed := testenv.ClosedEndpoint(t)
	metrics := &lddynamodb.Metrics{}
	client, _ := testenv.SDKClientNoWait(t, ld.Config{DataSystem: ldcomponents.DataSystem().
		WithEndpoints(ldcomponents.Endpoints{Streaming: closed, Polling: closed}).
		PersistentStore(ldcomponents.PersistentDataStore(testenv.DataStore(table).Metrics(metrics)))})

	assert.Equal(t, "from-table", cacheEval(client, "greeting"))
	assert.Equal(t, cacheFallback, cacheEval(client, "not-in-table"))
	assert.NotEqual(t, interfaces.DataSourceStateValid, client.GetDataSourceStatusProvider().GetStatus().State,
		"the evaluation came from the table, not from the data source")
	s := metrics.Snapshot()
	assert.Positive(t, s.Calls["GetItem"])
	assert.Zero(t, s.ItemsWritten, "with no data from LaunchDarkly, nothing is written")

	got, err := writer.Get(ldstoreimpl.Features(), "greeting")
	require.NoError(t, err)
	assert.Equal(t, 3, got.Version)
}

// TestDataSystemStaleIfErrorMatchesClassic runs a daemon-mode client of each configuration, with
// CacheSeconds(1), through a DynamoDB outage long enough for the SDK's cache to expire: with
// StaleIfError both keep serving the last values, without it both fall back to the defaults.
func TestDataSystemStaleIfErrorMatchesClassic(t *testing.T) {
	configs := map[string]func(store *lddynamodb.DataStoreBuilder) ld.Config{
		"classic": func(store *lddynamodb.DataStoreBuilder) ld.Config {
			return ld.Config{DataSource: ldcomponents.ExternalUpdatesOnly(),
				DataStore: ldcomponents.PersistentDataStore(store).CacheSeconds(1)}
		},
		"data system": func(store *lddynamodb.DataStoreBuilder) ld.Config {
			return ld.Config{DataSystem: ldcomponents.DataSystem().Daemon(ldcomponents.PersistentDataStore(store).CacheSeconds(1))}
		},
	}
	for _, staleIfError := range []time.Duration{time.Minute, 0} {
		seen := map[string]map[string]map[string]int{} // by configuration, flag, value
		for name, config := range configs {
			t.Run(name+"/StaleIfError="+staleIfError.String(), func(t *testing.T) {
				seen[name] = dsOutage(t, staleIfError, config)
			})
		}
		for _, key := range []string{"kept", "beta"} {
			for name := range configs {
				values := seen[name][key]
				if staleIfError > 0 {
					assert.Equal(t, []string{map[string]string{"kept": "v1", "beta": "beta"}[key]}, cacheValuesSeen(values),
						"%s, %s: only its last known value", name, key)
				} else {
					assert.Contains(t, values, cacheFallback, "%s, %s: falls back to the default", name, key)
				}
			}
		}
	}
}

// dsOutage evaluates two flags through a client made by config until a total outage of DynamoDB
// has shown in the store's counts and lasted past the SDK's 1-second cache, and returns the values
// seen for each flag during the outage. After it, the client must evaluate as before.
func dsOutage(t *testing.T, staleIfError time.Duration, config func(*lddynamodb.DataStoreBuilder) ld.Config) map[string]map[string]int {
	table := testenv.NewTable(t)
	writer, _ := testenv.Build(t, testenv.DataStore(table))
	require.NoError(t, writer.Init(testenv.AllData(
		[]ldstoretypes.KeyedSerializedItemDescriptor{cacheFlag("kept", 1, "v1", ""), cacheFlag("beta", 1, "v1", "members")},
		[]ldstoretypes.KeyedSerializedItemDescriptor{cacheSegment("members", 1)})))
	inj := faults.New(1, nil)
	t.Cleanup(inj.CloseIdleConnections)
	metrics := &lddynamodb.Metrics{}
	client, _ := testenv.SDKClient(t, config(testenv.DataStore(table).ClientOptions(dynamodb.Options{}, inj.ClientOption()).
		Metrics(metrics).StaleIfError(staleIfError)))
	want := map[string]string{"kept": "v1", "beta": "beta"}
	for key, value := range want {
		require.Equal(t, value, cacheEval(client, key), key)
	}

	inj.SetAll(faults.Fault{Outage: true})
	start := time.Now()
	seen := map[string]map[string]int{"kept": {}, "beta": {}}
	met := func() bool {
		s := metrics.Snapshot()
		return time.Since(start) > 2*time.Second && s.Errors["GetItem"] > 0 && (staleIfError == 0 || s.StaleReads > 0)
	}
	for !met() {
		require.Less(t, time.Since(start), 30*time.Second, "the client never met the outage")
		for key := range want {
			seen[key][cacheEval(client, key)]++
		}
		time.Sleep(time.Millisecond) // paces the loop on a shared machine; no assertion depends on it
	}
	inj.Clear()
	require.Eventually(t, func() bool {
		return cacheEval(client, "kept") == "v1" && cacheEval(client, "beta") == "beta"
	}, 30*time.Second, 20*time.Millisecond)
	return seen
}
