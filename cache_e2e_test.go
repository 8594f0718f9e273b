package lddynamodb_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/launchdarkly/go-sdk-common/v3/ldcontext"
	"github.com/launchdarkly/go-sdk-common/v3/ldlog"
	"github.com/launchdarkly/go-sdk-common/v3/ldvalue"
	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldbuilders"
	ld "github.com/launchdarkly/go-server-sdk/v7"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoreimpl"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lddynamodb/lddynamodb"
	"github.com/lddynamodb/lddynamodb/internal/faults"
	"github.com/lddynamodb/lddynamodb/internal/testenv"
)

// cacheFallback is the default value of every evaluation in these tests: seeing it means the flag
// could not be evaluated.
const cacheFallback = "fallback"

var cacheUser = ldcontext.New("user-1")

// cacheFlag is a flag that serves value to everyone, or, with a segment, "beta" to the
// segment's members.
func cacheFlag(key string, version int, value, segment string) ldstoretypes.KeyedSerializedItemDescriptor {
	b := ldbuilders.NewFlagBuilder(key).Version(version).On(true).
		Variations(ldvalue.String(value), ldvalue.String("beta")).FallthroughVariation(0).OffVariation(0)
	if segment != "" {
		b.AddRule(ldbuilders.NewRuleBuilder().ID("members").Variation(1).Clauses(ldbuilders.SegmentMatchClause(segment)))
	}
	flag := b.Build()
	return ldstoretypes.KeyedSerializedItemDescriptor{Key: key, Item: ldstoretypes.SerializedItemDescriptor{
		Version:        version,
		SerializedItem: ldstoreimpl.Features().Serialize(ldstoretypes.ItemDescriptor{Version: version, Item: &flag}),
	}}
}

// cacheSegment is a segment whose only member is cacheUser.
func cacheSegment(key string, version int) ldstoretypes.KeyedSerializedItemDescriptor {
	segment := ldbuilders.NewSegmentBuilder(key).Version(version).Included(cacheUser.Key()).Build()
	return ldstoretypes.KeyedSerializedItemDescriptor{Key: key, Item: ldstoretypes.SerializedItemDescriptor{
		Version:        version,
		SerializedItem: ldstoreimpl.Segments().Serialize(ldstoretypes.ItemDescriptor{Version: version, Item: &segment}),
	}}
}

func cacheEval(client *ld.LDClient, key string) string {
	value, _ := client.StringVariation(key, cacheUser, cacheFallback)
	return value
}

// cacheWarmTable is a table holding four flags that serve "v1" and one that serves "beta" to the
// members of a segment; want is what each evaluates to for cacheUser.
func cacheWarmTable(t *testing.T) (table string, writer subsystems.PersistentDataStore, want map[string]string) {
	table = testenv.NewTable(t)
	writer, _ = testenv.Build(t, testenv.DataStore(table))
	flags := []ldstoretypes.KeyedSerializedItemDescriptor{
		cacheFlag("f0", 1, "v1", ""), cacheFlag("f1", 1, "v1", ""), cacheFlag("f2", 1, "v1", ""),
		cacheFlag("f3", 1, "v1", ""), cacheFlag("f-beta", 1, "v1", "beta"),
	}
	segments := []ldstoretypes.KeyedSerializedItemDescriptor{cacheSegment("beta", 1)}
	require.NoError(t, writer.Init(testenv.AllData(flags, segments)))
	return table, writer, map[string]string{"f0": "v1", "f1": "v1", "f2": "v1", "f3": "v1", "f-beta": "beta"}
}

// Each part has a table of its own, so that neither depends on what the other did.
func TestDaemonModeWarmCacheMakesNoDynamoDBCalls(t *testing.T) {
	t.Run("CacheSeconds(30): warm flags cost nothing", func(t *testing.T) {
		table, _, want := cacheWarmTable(t)
		keys := []string{"f0", "f1", "f2", "f3", "f-beta"}
		metrics := &lddynamodb.Metrics{}
		client, _ := testenv.DaemonClient(t, testenv.DataStore(table).Metrics(metrics), 30)
		metrics.Reset()
		for _, key := range keys {
			require.Equal(t, want[key], cacheEval(client, key), key)
		}
		warm := metrics.Snapshot()
		assert.Equal(t, map[string]int64{"GetItem": int64(len(keys) + 1)}, warm.Calls,
			"warming up reads each flag and the segment once")

		metrics.Reset()
		for i := 0; i < 1000; i++ {
			key := keys[i%len(keys)]
			if got := cacheEval(client, key); got != want[key] {
				t.Fatalf("evaluation %d of %s: got %q, want %q", i, key, got, want[key])
			}
		}
		after := metrics.Snapshot()
		assert.Zero(t, after.TotalCalls(), "1,000 evaluations of warm flags: %v", after.Calls)
		t.Logf("warm-up: %v; 1,000 warm evaluations: %d DynamoDB calls", warm.Calls, after.TotalCalls())
	})

	// The SDK's cache has no clock that a test can move, so this part uses a 1-second TTL rather
	// than waiting 30 seconds: the rule (an entry is read again once its TTL is over) is the same.
	t.Run("CacheSeconds(1): an update is seen after the TTL", func(t *testing.T) {
		table, writer, _ := cacheWarmTable(t)
		metrics := &lddynamodb.Metrics{}
		client, _ := testenv.DaemonClient(t, testenv.DataStore(table).Metrics(metrics), 1)
		require.Equal(t, "v1", cacheEval(client, "f0"))

		_, err := writer.Upsert(ldstoreimpl.Features(), "f0", cacheFlag("f0", 2, "v2", "").Item)
		require.NoError(t, err)
		require.Eventually(t, func() bool { return cacheEval(client, "f0") == "v2" }, 2*time.Minute, 20*time.Millisecond)
		assert.Positive(t, metrics.Snapshot().Calls["GetItem"])
	})
}

// cacheGetCounter counts, by kind and key, the Gets that the SDK makes of a data store once
// counting is started: each is a read that the SDK's cache did not answer.
type cacheGetCounter struct {
	mu      sync.Mutex
	started bool
	gets    map[string]int
}

func (c *cacheGetCounter) start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.started, c.gets = true, map[string]int{}
}

// counted says how many Gets of a kind's key were counted.
func (c *cacheGetCounter) counted(kind ldstoretypes.DataKind, key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gets[kind.GetName()+"/"+key]
}

// wrap makes a data store configuration whose stores report their Gets to the counter.
func (c *cacheGetCounter) wrap(inner subsystems.ComponentConfigurer[subsystems.PersistentDataStore]) subsystems.ComponentConfigurer[subsystems.PersistentDataStore] {
	return cacheCountingConfig{inner: inner, counter: c}
}

type cacheCountingConfig struct {
	inner   subsystems.ComponentConfigurer[subsystems.PersistentDataStore]
	counter *cacheGetCounter
}

func (b cacheCountingConfig) Build(ctx subsystems.ClientContext) (subsystems.PersistentDataStore, error) {
	store, err := b.inner.Build(ctx)
	if err != nil {
		return nil, err
	}
	return cacheCountingStore{PersistentDataStore: store, counter: b.counter}, nil
}

type cacheCountingStore struct {
	subsystems.PersistentDataStore
	counter *cacheGetCounter
}

func (s cacheCountingStore) Get(kind ldstoretypes.DataKind, key string) (ldstoretypes.SerializedItemDescriptor, error) {
	s.counter.mu.Lock()
	if s.counter.started { // counted only if it started after counting did
		s.counter.gets[kind.GetName()+"/"+key]++
	}
	s.counter.mu.Unlock()
	return s.PersistentDataStore.Get(kind, key)
}

// TestDaemonModeOutage runs a daemon-mode client with CacheSeconds(1) through a total DynamoDB
// outage, with and without StaleIfError, while another process (a writer that does not go
// through the faults) updates a flag. The outage lasts until the SDK has gone to the store for
// every flag (and, when the flags are served, the segment) at least once during it, its cache of
// each having expired, however long that takes on a loaded machine.
func TestDaemonModeOutage(t *testing.T) {
	tests := []struct {
		name         string
		staleIfError time.Duration
		// duringOutage is what each flag evaluates to while DynamoDB is down.
		duringOutage func(key string, values map[string]int, t *testing.T)
	}{
		{
			name:         "with StaleIfError",
			staleIfError: time.Minute,
			duringOutage: func(key string, values map[string]int, t *testing.T) {
				want := map[string]string{"kept": "v1", "updated": "v1", "beta": "beta", "deleted": cacheFallback}[key]
				assert.Equal(t, []string{want}, cacheValuesSeen(values), "%s: only its last known value", key)
			},
		},
		{
			name: "without StaleIfError",
			duringOutage: func(key string, values map[string]int, t *testing.T) {
				assert.Contains(t, values, cacheFallback, "%s falls back to the default", key)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table := testenv.NewTable(t)
			writer, _ := testenv.Build(t, testenv.DataStore(table))
			require.NoError(t, writer.Init(testenv.AllData(
				[]ldstoretypes.KeyedSerializedItemDescriptor{
					cacheFlag("kept", 1, "v1", ""), cacheFlag("updated", 1, "v1", ""),
					cacheFlag("deleted", 1, "v1", ""), cacheFlag("beta", 1, "v1", "members"),
				},
				[]ldstoretypes.KeyedSerializedItemDescriptor{cacheSegment("members", 1)})))

			inj := faults.New(1, nil)
			t.Cleanup(inj.CloseIdleConnections)
			metrics := &lddynamodb.Metrics{}
			reader := testenv.DataStore(table).ClientOptions(dynamodb.Options{}, inj.ClientOption()).Metrics(metrics).StaleIfError(tt.staleIfError)
			gets := &cacheGetCounter{}
			client, mockLog := testenv.DaemonClient(t, gets.wrap(reader), 1)
			probe, _ := testenv.Build(t, testenv.DataStore(table).ClientOptions(dynamodb.Options{}, inj.ClientOption()))
			keys := []string{"kept", "updated", "deleted", "beta"}

			// The reader sees the flag that is then deleted, and then sees it deleted.
			require.Equal(t, "v1", cacheEval(client, "deleted"))
			_, err := writer.Upsert(ldstoreimpl.Features(), "deleted", ldstoretypes.SerializedItemDescriptor{Version: 2, Deleted: true})
			require.NoError(t, err)
			require.Eventually(t, func() bool { return cacheEval(client, "deleted") == cacheFallback }, 2*time.Minute, 20*time.Millisecond)
			for key, want := range map[string]string{"kept": "v1", "updated": "v1", "beta": "beta"} {
				require.Equal(t, want, cacheEval(client, key), key)
			}
			require.True(t, probe.IsStoreAvailable())

			inj.SetAll(faults.Fault{Outage: true})
			gets.start()
			start := time.Now()
			assert.False(t, probe.IsStoreAvailable(), "IsStoreAvailable tells the truth during the outage")
			_, err = writer.Upsert(ldstoreimpl.Features(), "updated", cacheFlag("updated", 2, "v2", "").Item)
			require.NoError(t, err)

			// The outage lasts until the reader has read every flag and the segment from the
			// store during it, and the store has met the outage (so that a slow machine cannot
			// make the test pass without one).
			seen := map[string]map[string]int{}
			for _, key := range keys {
				seen[key] = map[string]int{}
			}
			met := func() bool {
				for _, key := range keys {
					if gets.counted(ldstoreimpl.Features(), key) == 0 {
						return false
					}
				}
				s := metrics.Snapshot()
				if tt.staleIfError == 0 { // the flag reads fail, so the segment is never needed
					return s.Errors["GetItem"] > 0
				}
				return gets.counted(ldstoreimpl.Segments(), "members") > 0 && s.Errors["GetItem"] > 0 && s.StaleReads > 0
			}
			evaluations := 0
			for !met() {
				// Only a reader that never goes back to the store runs into this bound.
				require.Less(t, time.Since(start), 2*time.Minute, "the reader never met the outage")
				for _, key := range keys {
					seen[key][cacheEval(client, key)]++
					evaluations++
				}
				time.Sleep(time.Millisecond) // paces the loop on a shared machine; no assertion depends on it
			}
			for _, key := range keys { // the evaluations that follow the last reads from the store
				seen[key][cacheEval(client, key)]++
				evaluations++
			}
			inj.Clear()
			during := metrics.Snapshot()
			for _, key := range keys {
				tt.duringOutage(key, seen[key], t)
			}

			// After the outage, the update written during it appears, and nothing else changed.
			after := map[string]string{"kept": "v1", "updated": "v2", "beta": "beta", "deleted": cacheFallback}
			require.Eventually(t, func() bool {
				for key, want := range after {
					if cacheEval(client, key) != want {
						return false
					}
				}
				return true
			}, 2*time.Minute, 20*time.Millisecond)
			assert.True(t, probe.IsStoreAvailable())

			assert.Positive(t, during.Errors["GetItem"], "the outage shows in the store's error counts")
			if tt.staleIfError > 0 {
				assert.Positive(t, during.StaleReads)
				assert.Len(t, mockLog.GetOutput(ldlog.Warn), 1, "one warning for the outage: %v", mockLog.GetOutput(ldlog.Warn))
				assert.True(t, mockLog.HasMessageMatch(ldlog.Warn, "serving data up to 1m0s old"))
				assert.True(t, mockLog.HasMessageMatch(ldlog.Info, "reads succeed again"))
			} else {
				assert.Zero(t, during.StaleReads)
			}
			t.Logf("outage of %v: %d evaluations, values seen %v; GetItem calls %d, errors %d, stale reads %d; SDK store status after: %+v",
				time.Since(start).Round(100*time.Millisecond), evaluations, seen, during.Calls["GetItem"], during.Errors["GetItem"],
				during.StaleReads, client.GetDataStoreStatusProvider().GetStatus())
		})
	}
}

func cacheValuesSeen(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// TestStaleIfErrorMasksEachTransientFault checks that the errors the AWS SDK really returns for
// DynamoDB's transient failures, after its retries, are answered from the stale cache.
func TestStaleIfErrorMasksEachTransientFault(t *testing.T) {
	tests := []struct {
		name   string
		action faults.Action
		fault  faults.Fault
	}{
		{name: "ProvisionedThroughputExceededException", action: faults.ProvisionedThroughputExceeded},
		{name: "ThrottlingException", action: faults.Throttling},
		{name: "RequestLimitExceeded", action: faults.RequestLimitExceeded},
		{name: "HTTP 500", action: faults.InternalServerError},
		{name: "HTTP 503", action: faults.ServiceUnavailable},
		{name: "connection reset", action: faults.ResetBefore},
		{name: "operation timeout", action: faults.Pass, fault: faults.Fault{Latency: time.Minute}},
	}
	table := testenv.NewTable(t)
	writer, _ := testenv.Build(t, testenv.DataStore(table))
	require.NoError(t, writer.Init(testenv.AllData(
		[]ldstoretypes.KeyedSerializedItemDescriptor{cacheFlag("f", 1, "v1", "")}, nil)))
	flag := cacheFlag("f", 1, "v1", "").Item
	const attempts = 2
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inj := faults.New(1, nil)
			t.Cleanup(inj.CloseIdleConnections)
			metrics := &lddynamodb.Metrics{}
			// The operation timeout is short only where the case needs it to expire.
			timeout := lddynamodb.DefaultOperationTimeout
			if tt.fault.Latency > 0 {
				timeout = 2 * time.Second
			}
			store, _ := testenv.Build(t, testenv.DataStore(table).Metrics(metrics).StaleIfError(time.Minute).
				OperationTimeout(timeout).
				ClientOptions(dynamodb.Options{}, inj.ClientOption(), func(o *dynamodb.Options) {
					o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
						so.MaxAttempts = attempts
						so.MaxBackoff = 10 * time.Millisecond
					})
				}))
			got, err := store.Get(ldstoreimpl.Features(), "f")
			require.NoError(t, err)
			require.Equal(t, flag, got)
			_, err = store.GetAll(ldstoreimpl.Features())
			require.NoError(t, err)

			inj.SetAll(tt.fault)
			for i := 0; i < attempts; i++ {
				inj.Script("GetItem", tt.action)
				inj.Script("Query", tt.action)
			}
			got, err = store.Get(ldstoreimpl.Features(), "f")
			require.NoError(t, err)
			assert.Equal(t, flag, got)
			all, err := store.GetAll(ldstoreimpl.Features())
			require.NoError(t, err)
			assert.Equal(t, []ldstoretypes.KeyedSerializedItemDescriptor{{Key: "f", Item: flag}}, all)

			s := metrics.Snapshot()
			assert.Equal(t, int64(2), s.StaleReads)
			assert.Equal(t, map[string]int64{"GetItem": 1, "Query": 1}, s.Errors)
		})
	}
}

// TestStaleIfErrorNeverMasksMissingTable checks a permanent error from a real server: once the
// table is gone, reads fail even though the stale cache holds what they read before.
func TestStaleIfErrorNeverMasksMissingTable(t *testing.T) {
	table := testenv.NewTable(t)
	metrics := &lddynamodb.Metrics{}
	store, _ := testenv.Build(t, testenv.DataStore(table).Metrics(metrics).StaleIfError(time.Hour))
	require.NoError(t, store.Init(testenv.AllData(
		[]ldstoretypes.KeyedSerializedItemDescriptor{cacheFlag("f", 1, "v1", "")}, nil)))
	_, err := store.Get(ldstoreimpl.Features(), "f")
	require.NoError(t, err)
	_, err = store.GetAll(ldstoreimpl.Features())
	require.NoError(t, err)

	_, err = testenv.Client().DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	require.NoError(t, err)

	var missing *types.ResourceNotFoundException
	_, err = store.Get(ldstoreimpl.Features(), "f")
	assert.True(t, errors.As(err, &missing), "Get: %v", err)
	_, err = store.GetAll(ldstoreimpl.Features())
	assert.True(t, errors.As(err, &missing), "GetAll: %v", err)
	assert.Zero(t, metrics.Snapshot().StaleReads)
}

// TestStaleIfErrorServesWhatUpsertWrote checks the store's own use of the StaleIfError layer: a
// store that read version 1 of a flag and then upserted version 2 answers version 2 through an
// outage, by Get and by GetAll. Another store writes the table first, so that the store under
// test learns version 1 only from its own read.
func TestStaleIfErrorServesWhatUpsertWrote(t *testing.T) {
	features := ldstoreimpl.Features()
	v1, v2 := cacheFlag("f", 1, "v1", ""), cacheFlag("f", 2, "v2", "")
	other := cacheFlag("g", 1, "g1", "")
	deleted := ldstoretypes.SerializedItemDescriptor{Version: 2, Deleted: true}
	tests := []struct {
		name   string
		update ldstoretypes.SerializedItemDescriptor
	}{
		{"Upsert of a newer version", v2.Item},
		{"Upsert of a deletion", deleted},
	}
	for _, tt := range tests {
		for _, via := range []string{"Get", "GetAll"} {
			t.Run(tt.name+" via "+via, func(t *testing.T) {
				table := testenv.NewTable(t)
				writer, _ := testenv.Build(t, testenv.DataStore(table))
				require.NoError(t, writer.Init(testenv.AllData([]ldstoretypes.KeyedSerializedItemDescriptor{v1, other}, nil)))
				inj := faults.New(1, nil)
				t.Cleanup(inj.CloseIdleConnections)
				metrics := &lddynamodb.Metrics{}
				store, _ := testenv.Build(t, testenv.DataStore(table).StaleIfError(time.Minute).Metrics(metrics).
					ClientOptions(dynamodb.Options{RetryMaxAttempts: 1}, inj.ClientOption()))
				read := func() []ldstoretypes.KeyedSerializedItemDescriptor {
					if via == "Get" {
						item, err := store.Get(features, "f")
						require.NoError(t, err)
						return []ldstoretypes.KeyedSerializedItemDescriptor{{Key: "f", Item: item}}
					}
					all, err := store.GetAll(features)
					require.NoError(t, err)
					return all
				}
				want := func(f ldstoretypes.SerializedItemDescriptor) []ldstoretypes.KeyedSerializedItemDescriptor {
					if via == "Get" {
						return []ldstoretypes.KeyedSerializedItemDescriptor{{Key: "f", Item: f}}
					}
					return []ldstoretypes.KeyedSerializedItemDescriptor{{Key: "f", Item: f}, other}
				}

				assert.ElementsMatch(t, want(v1.Item), read(), "before the update")
				updated, err := store.Upsert(features, "f", tt.update)
				require.NoError(t, err)
				require.True(t, updated)

				inj.SetAll(faults.Fault{Outage: true})
				assert.ElementsMatch(t, want(tt.update), read(), "during the outage: what the Upsert wrote")
				s := metrics.Snapshot()
				assert.Equal(t, int64(1), s.StaleReads, "the answer came from the stale layer")
				assert.Equal(t, int64(1), s.Errors["GetItem"]+s.Errors["Query"], "the read failed")
			})
		}
	}
}
