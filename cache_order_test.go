package lddynamodb_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lddynamodb/lddynamodb"
	"github.com/lddynamodb/lddynamodb/internal/faults"
	"github.com/lddynamodb/lddynamodb/internal/hold"
	"github.com/lddynamodb/lddynamodb/internal/testenv"
)

// orderEnv is a store with StaleIfError whose calls a test can hold after DynamoDB answered
// them (hold), and fail as in an outage (faults), to check what the stale layer learns from
// operations that overlap.
type orderEnv struct {
	store subsystems.PersistentDataStore
	hold  *hold.Client
	inj   *faults.Injector
	table string
}

func newOrderEnv(t *testing.T) *orderEnv {
	t.Helper()
	e := &orderEnv{table: testenv.NewTable(t), inj: faults.New(1, nil)}
	t.Cleanup(e.inj.CloseIdleConnections)
	e.hold = hold.New(dynamodb.NewFromConfig(testenv.AWSConfig(), testenv.WithEndpoint, e.inj.ClientOption(),
		func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 }))
	e.store, _ = testenv.Build(t, lddynamodb.DataStore(e.table).DynamoClient(e.hold).StaleIfError(time.Hour))
	return e
}

// outage makes every later call fail as when DynamoDB cannot be reached, so that reads are
// answered by the stale layer alone.
func (e *orderEnv) outage() { e.inj.SetAll(faults.Fault{Outage: true}) }

type orderGot struct {
	item ldstoretypes.SerializedItemDescriptor
	all  []ldstoretypes.KeyedSerializedItemDescriptor
	err  error
}

// getHeld starts a Get whose GetItem is held once DynamoDB answered it; it returns when
// DynamoDB has answered, with the Get's result to come on the channel after release.
func (e *orderEnv) getHeld(key string) (release func(), result <-chan orderGot) {
	h := e.hold.Next("GetItem")
	ch := make(chan orderGot, 1)
	go func() {
		item, err := e.store.Get(features, key)
		ch <- orderGot{item: item, err: err}
	}()
	<-h.Answered()
	return h.Release, ch
}

// getAllHeld is getHeld for a GetAll of flags (one Query page).
func (e *orderEnv) getAllHeld() (release func(), result <-chan orderGot) {
	h := e.hold.Next("Query")
	ch := make(chan orderGot, 1)
	go func() {
		all, err := e.store.GetAll(features)
		ch <- orderGot{all: all, err: err}
	}()
	<-h.Answered()
	return h.Release, ch
}

// staleView is what the store answers for key and for all flags once DynamoDB is down.
func (e *orderEnv) staleView(t *testing.T, key string) (ldstoretypes.SerializedItemDescriptor, []ldstoretypes.KeyedSerializedItemDescriptor) {
	t.Helper()
	e.outage()
	item, err := e.store.Get(features, key)
	require.NoError(t, err, "Get during the outage")
	all, err := e.store.GetAll(features)
	require.NoError(t, err, "GetAll during the outage")
	return item, all
}

// orderDesc is an item as the assertions compare it: "absent", or its version.
func orderDesc(item ldstoretypes.SerializedItemDescriptor) string {
	if item.Version < 0 {
		return "absent"
	}
	return fmt.Sprintf("v%d", item.Version)
}

func orderKeys(all []ldstoretypes.KeyedSerializedItemDescriptor) []string {
	keys := []string{}
	for _, it := range all {
		keys = append(keys, it.Key)
	}
	return keys
}

// TestStaleIfErrorOrdersOverlappingOperations holds a read after DynamoDB answered it, runs a
// write or an Init to the end, then lets the read return: what the read saw is older than the
// write, so during an outage the store must answer with the write.
func TestStaleIfErrorOrdersOverlappingOperations(t *testing.T) {
	flags := func(items ...ldstoretypes.KeyedSerializedItemDescriptor) []ldstoretypes.SerializedCollection {
		return testenv.AllData(items, nil)
	}

	t.Run("Get that read absent, returning after an Upsert created the flag", func(t *testing.T) {
		e := newOrderEnv(t)
		require.NoError(t, e.store.Init(flags()))
		release, result := e.getHeld("f")
		f1 := testenv.Flag("f", 1, 0)
		updated, err := e.store.Upsert(features, "f", f1.Item)
		require.NoError(t, err)
		require.True(t, updated)
		release()
		got := <-result
		require.NoError(t, got.err)
		assert.Equal(t, "absent", orderDesc(got.item), "the Get read before the Upsert")

		item, all := e.staleView(t, "f")
		assert.Equal(t, "v1", orderDesc(item))
		assert.Equal(t, []string{"f"}, orderKeys(all))
	})

	t.Run("Get that read an old version, returning after an Upsert", func(t *testing.T) {
		e := newOrderEnv(t)
		require.NoError(t, e.store.Init(flags(testenv.Flag("f", 1, 0))))
		release, result := e.getHeld("f")
		f2 := testenv.Flag("f", 2, 0)
		_, err := e.store.Upsert(features, "f", f2.Item)
		require.NoError(t, err)
		release()
		require.Equal(t, 1, (<-result).item.Version)

		item, _ := e.staleView(t, "f")
		assert.Equal(t, "v2", orderDesc(item))
	})

	t.Run("GetAll whose Query ran before an Upsert created a flag", func(t *testing.T) {
		e := newOrderEnv(t)
		require.NoError(t, e.store.Init(flags(testenv.Flag("g", 1, 0))))
		release, result := e.getAllHeld()
		f1 := testenv.Flag("f", 1, 0)
		_, err := e.store.Upsert(features, "f", f1.Item)
		require.NoError(t, err)
		release()
		got := <-result
		require.NoError(t, got.err)
		assert.Equal(t, []string{"g"}, orderKeys(got.all), "the Query ran before the Upsert")

		item, all := e.staleView(t, "f")
		assert.Equal(t, "v1", orderDesc(item))
		assert.ElementsMatch(t, []string{"f", "g"}, orderKeys(all))
	})

	t.Run("Get that read a flag, returning after an Init removed it", func(t *testing.T) {
		e := newOrderEnv(t)
		require.NoError(t, e.store.Init(flags(testenv.Flag("x", 1, 0), testenv.Flag("g", 1, 0))))
		release, result := e.getHeld("x")
		require.NoError(t, e.store.Init(flags(testenv.Flag("g", 1, 0))))
		assert.Empty(t, testenv.Rows(t, e.table, "features")[1:], "the Init deleted x's row")
		release()
		require.Equal(t, 1, (<-result).item.Version, "the Get read before the Init")

		item, all := e.staleView(t, "x")
		assert.Equal(t, "absent", orderDesc(item), "x is gone, not live")
		assert.Equal(t, []string{"g"}, orderKeys(all))
	})

	t.Run("GetAll whose Query ran before an Init", func(t *testing.T) {
		e := newOrderEnv(t)
		require.NoError(t, e.store.Init(flags(testenv.Flag("x", 1, 0))))
		release, result := e.getAllHeld()
		y := testenv.Flag("y", 1, 0)
		require.NoError(t, e.store.Init(flags(y)))
		release()
		assert.Equal(t, []string{"x"}, orderKeys((<-result).all), "the Query ran before the Init")

		item, all := e.staleView(t, "x")
		assert.Equal(t, "absent", orderDesc(item))
		assert.Equal(t, []string{"y"}, orderKeys(all))
		assert.Equal(t, y.Item, all[0].Item)
	})

	// The order is by when operations started, not "writes always win": a read that starts after
	// a write has finished sees what other writers did since, including a removed row.
	t.Run("Get that started after an Upsert, finding the row removed by another writer", func(t *testing.T) {
		e := newOrderEnv(t)
		require.NoError(t, e.store.Init(flags()))
		_, err := e.store.Upsert(features, "f", testenv.Flag("f", 1, 0).Item)
		require.NoError(t, err)
		_, err = testenv.Client().DeleteItem(context.Background(), &dynamodb.DeleteItemInput{TableName: aws.String(e.table),
			Key: map[string]types.AttributeValue{"namespace": &types.AttributeValueMemberS{Value: "features"}, "key": &types.AttributeValueMemberS{Value: "f"}}})
		require.NoError(t, err)
		got, err := e.store.Get(features, "f")
		require.NoError(t, err)
		require.Equal(t, "absent", orderDesc(got))

		item, all := e.staleView(t, "f")
		assert.Equal(t, "absent", orderDesc(item))
		assert.Empty(t, all)
	})
}

// staleClock is a clock for the stale layer that only the test moves.
type staleClock struct{ at atomic.Int64 }

func newStaleClock(store subsystems.PersistentDataStore) *staleClock {
	c := &staleClock{}
	c.at.Store(time.Unix(1700000000, 0).UnixNano())
	lddynamodb.SetStaleClock(store, func() time.Time { return time.Unix(0, c.at.Load()) })
	return c
}

func (c *staleClock) advance(d time.Duration) { c.at.Add(int64(d)) }

// sweepFlags are staleSweepMin (1,024) flags whose keys sort after "f", at version 1: reading
// them all makes the layer reach the size at which it sweeps its old entries.
func sweepFlags() []ldstoretypes.KeyedSerializedItemDescriptor {
	var flags []ldstoretypes.KeyedSerializedItemDescriptor
	for i := 0; i < 1024; i++ {
		flags = append(flags, testenv.Flag(fmt.Sprintf("g%04d", i), 1, 0))
	}
	return flags
}

// TestStaleIfErrorServesEveryKeyAGetAllListed sweeps the layer's old entries while a GetAll is
// being recorded or is in flight: every key that the GetAll returned must still be served during
// an outage.
func TestStaleIfErrorServesEveryKeyAGetAllListed(t *testing.T) {
	t.Run("sweep while recording a key listed at a lower version than the layer held", func(t *testing.T) {
		e := newOrderEnv(t)
		clock := newStaleClock(e.store)
		require.NoError(t, e.store.Init(testenv.AllData(nil, nil)))
		_, err := e.store.Upsert(features, "f", testenv.Flag("f", 5, 0).Item)
		require.NoError(t, err)
		// Another writer loads an older data set (an Init discards whatever versions), with
		// enough new keys that recording them sweeps the entries older than maxAge.
		writer, _ := testenv.Build(t, testenv.DataStore(e.table))
		require.NoError(t, writer.Init(testenv.AllData(append([]ldstoretypes.KeyedSerializedItemDescriptor{
			testenv.Flag("f", 2, 0)}, sweepFlags()...), nil)))
		clock.advance(2 * time.Hour)

		all, err := e.store.GetAll(features)
		require.NoError(t, err)
		require.Equal(t, 1025, len(all))
		require.Equal(t, "f", all[0].Key, "f is recorded before the keys that cause the sweep")

		item, stale := e.staleView(t, "f")
		assert.Equal(t, "v5", orderDesc(item), "f is served; of two versions the higher wins")
		assert.Equal(t, 1025, len(stale), "every flag is served")
	})

	t.Run("sweep of older entries while a GetAll is in flight", func(t *testing.T) {
		e := newOrderEnv(t)
		clock := newStaleClock(e.store)
		writer, _ := testenv.Build(t, testenv.DataStore(e.table))
		require.NoError(t, writer.Init(testenv.AllData(append([]ldstoretypes.KeyedSerializedItemDescriptor{
			testenv.Flag("f", 1, 0)}, sweepFlags()[1:]...), nil)))
		_, err := e.store.GetAll(features) // the layer holds 1,024 entries
		require.NoError(t, err)
		clock.advance(2 * time.Hour)

		release, result := e.getAllHeld()
		// A new key sweeps the 1,024 entries learned by the first GetAll, which the GetAll in
		// flight started after: what it read is newer than anything swept.
		got, err := e.store.Get(features, "new")
		require.NoError(t, err)
		require.Equal(t, "absent", orderDesc(got))
		release()
		listed := <-result
		require.NoError(t, listed.err)
		require.Equal(t, 1024, len(listed.all))

		item, all := e.staleView(t, "f")
		assert.Equal(t, "v1", orderDesc(item))
		assert.Equal(t, 1024, len(all), "every flag is served")
	})
}
