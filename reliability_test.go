package lddynamodb_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/launchdarkly/go-sdk-common/v3/ldcontext"
	"github.com/launchdarkly/go-sdk-common/v3/ldlog"
	"github.com/launchdarkly/go-sdk-common/v3/ldlogtest"
	ld "github.com/launchdarkly/go-server-sdk/v7"
	"github.com/launchdarkly/go-server-sdk/v7/interfaces"
	"github.com/launchdarkly/go-server-sdk/v7/ldcomponents"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoreimpl"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/lddynamodb/lddynamodb"
	"github.com/lddynamodb/lddynamodb/internal/faults"
	"github.com/lddynamodb/lddynamodb/internal/testenv"
	"github.com/lddynamodb/lddynamodb/internal/testenv/av"
)

// The fault mix of issue 6: 20 % throttles, 30 % partial batches, 5 % connection resets (half
// before the server saw the call, half after).
var relFaultMix = faults.Fault{ThrottleRate: 0.2, UnprocessedRate: 0.3, ResetBeforeRate: 0.025, ResetAfterRate: 0.025}

// relDocumentedActions are the IAM actions of the writer policy in docs/table.md, the least that
// a data store which writes needs; relReaderActions those of the reader policy, for daemon mode.
var (
	relDocumentedActions = map[string]bool{"GetItem": true, "Query": true, "PutItem": true, "BatchWriteItem": true}
	relReaderActions     = map[string]bool{"GetItem": true, "Query": true}
)

// relInjector returns a fault injector whose calls are checked, when the test ends, against the
// documented IAM actions.
func relInjector(t *testing.T, seed int64) *faults.Injector {
	inj := faults.New(seed, nil)
	t.Cleanup(func() {
		for op, n := range inj.CountByOp() {
			assert.True(t, relDocumentedActions[op], "%d calls of %s, which is not a documented IAM action", n, op)
		}
		inj.CloseIdleConnections()
	})
	return inj
}

// relPatientRetries makes the AWS SDK retry every fault quickly and without a retry quota, as a
// deployment that expects heavy throttling would, so that faults are retried rather than
// returned.
func relPatientRetries(o *dynamodb.Options) {
	o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
		so.MaxAttempts = 25
		so.MaxBackoff = 20 * time.Millisecond
		so.RateLimiter = ratelimit.None
	})
}

// relNoRetries makes every fault reach the store.
func relNoRetries(o *dynamodb.Options) { o.RetryMaxAttempts = 1 }

func relItemJSON(key string, version int) []byte {
	return []byte(fmt.Sprintf(`{"key":%q,"version":%d,"on":true}`, key, version))
}

// relData is a flag set of n flags and n/10 segments with versions drawn from rng.
func relData(rng *rand.Rand, n int, prefix string) []ldstoretypes.SerializedCollection {
	build := func(count int, name string) []ldstoretypes.KeyedSerializedItemDescriptor {
		items := make([]ldstoretypes.KeyedSerializedItemDescriptor, count)
		for i := range items {
			key := fmt.Sprintf("%s%s-%05d", prefix, name, i)
			version := 1 + rng.Intn(1000)
			items[i] = ldstoretypes.KeyedSerializedItemDescriptor{Key: key,
				Item: ldstoretypes.SerializedItemDescriptor{Version: version, SerializedItem: relItemJSON(key, version)}}
		}
		return items
	}
	return testenv.AllData(build(n, "flag"), build(max(n/10, 1), "segment"))
}

// relRow is what the table holds for one item.
type relRow struct {
	version int
	item    string
}

// relReadTable reads every row of a namespace directly, without the store.
func relReadTable(t *testing.T, table, namespace string) map[string]relRow {
	t.Helper()
	rows, err := relScan(table, namespace)
	require.NoError(t, err)
	return rows
}

// relScan reads every row of a namespace directly; a row's version or item that is not a number
// or string reads as 0 or "".
func relScan(table, namespace string) (map[string]relRow, error) {
	items, err := testenv.ReadRows(table, namespace)
	if err != nil {
		return nil, err
	}
	rows := map[string]relRow{}
	for _, r := range items {
		var row relRow
		if v, ok := r["version"].(*types.AttributeValueMemberN); ok {
			row.version, _ = strconv.Atoi(v.Value)
		}
		if v, ok := r["item"].(*types.AttributeValueMemberS); ok {
			row.item = v.Value
		}
		rows[r["key"].(*types.AttributeValueMemberS).Value] = row
	}
	return rows, nil
}

func relMarkerWritten(t *testing.T, table string) bool {
	t.Helper()
	out, err := testenv.Client().GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName:      aws.String(table),
		Key:            map[string]types.AttributeValue{"namespace": av.S("$inited"), "key": av.S("$inited")},
		ConsistentRead: aws.Bool(true),
	})
	require.NoError(t, err)
	return out.Item != nil
}

// relFaultCounts sums the injected actions of some injectors, for the log.
func relFaultCounts(injs ...*faults.Injector) (calls int, byAction map[faults.Action]int) {
	byAction = map[faults.Action]int{}
	for _, inj := range injs {
		for _, c := range inj.Calls() {
			calls++
			byAction[c.Action]++
		}
	}
	return calls, byAction
}

// TestReliabilityInitUnderFaults runs Inits through relFaultMix on every operation and checks
// that the table then holds exactly the data of the last Init, and the marker. Each seed inits
// an empty table and then, differentially, a second data set (a third of the keys new, the
// versions redrawn, a tenth of the old keys gone). Sizes: 20 seeds of 500 flags + 50 segments,
// and one seed of 10,000 flags + 1,000 segments. The seeds run at once, since nearly all their
// time is spent waiting out backoffs (t.Parallel would run only GOMAXPROCS of them at a time).
func TestReliabilityInitUnderFaults(t *testing.T) {
	type run struct {
		seed        int64
		flags       int
		table       string
		inj         *faults.Injector
		store       subsystems.PersistentDataStore
		items, lost int
	}
	runs := []*run{{seed: 10000, flags: 10000}}
	for seed := int64(1); seed <= 20; seed++ {
		runs = append(runs, &run{seed: seed, flags: 500})
	}
	for _, r := range runs {
		r.table = testenv.NewTable(t)
		r.inj = relInjector(t, r.seed)
		r.inj.SetAll(relFaultMix)
		r.store, _ = testenv.Build(t, testenv.DataStore(r.table).ClientOptions(dynamodb.Options{}, r.inj.ClientOption(), relPatientRetries).
			BatchConcurrency(32).InitTimeout(10*time.Minute)) // generous: a bound for a stuck Init, not a speed target
	}
	var wg sync.WaitGroup
	for _, r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(r.seed))
			first := relData(rng, r.flags, "")
			// The second data set keeps two thirds of the keys (one in ten with its old version),
			// drops the rest and adds as many new ones.
			second := relData(rng, r.flags, "new-")
			for c := range second {
				old := first[c].Items
				for i := range old[:len(old)*2/3] {
					if rng.Intn(10) == 0 {
						second[c].Items[i] = old[i]
					} else {
						second[c].Items[i].Key = old[i].Key
						second[c].Items[i].Item.SerializedItem = relItemJSON(old[i].Key, second[c].Items[i].Item.Version)
					}
				}
			}
			for _, data := range [][]ldstoretypes.SerializedCollection{first, second} {
				for _, coll := range data {
					r.items += len(coll.Items)
				}
				if err := r.store.Init(data); err != nil {
					t.Errorf("seed %d: %v", r.seed, err)
				}
				r.lost += testenv.Lost(t, r.table, data)
			}
			if !r.store.IsInitialized() {
				t.Errorf("seed %d: not initialized", r.seed)
			}
		}()
	}
	wg.Wait()
	items, lost := 0, 0
	var injectors []*faults.Injector
	for _, r := range runs {
		items += r.items
		lost += r.lost
		injectors = append(injectors, r.inj)
		assert.True(t, relMarkerWritten(t, r.table), "seed %d: initialized marker", r.seed)
	}
	calls, byAction := relFaultCounts(injectors...)
	t.Logf("%d seeds, %d items written by Init, %d lost; %d calls reached the injector, faults: %v",
		len(runs), items, lost, calls, byAction)
	assert.Zero(t, lost)
	assert.NotZero(t, byAction[faults.Unprocessed], "partial batches were injected")
	assert.NotZero(t, byAction[faults.ResetAfter], "resets after the server wrote were injected")
}

// TestReliabilityInitOutOfTimeThenConverges makes every batch come back partly unprocessed, so
// that Init cannot finish before its deadline (a batch of one item is never processed, however
// long Init tries), and then lets a later Init through, by a store whose deadline no loaded
// machine reaches.
func TestReliabilityInitOutOfTimeThenConverges(t *testing.T) {
	table := testenv.NewTable(t)
	inj := relInjector(t, 1)
	inj.Set("BatchWriteItem", faults.Fault{UnprocessedRate: 1})
	store, _ := testenv.Build(t, testenv.DataStore(table).ClientOptions(dynamodb.Options{}, inj.ClientOption()).InitTimeout(2*time.Second))
	data := relData(rand.New(rand.NewSource(1)), 200, "")

	err := store.Init(data)
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.ErrorContains(t, err, table)
	assert.False(t, relMarkerWritten(t, table), "an Init that ran out of time must not write the marker")
	assert.False(t, store.IsInitialized())

	inj.Clear()
	patient, _ := testenv.Build(t, testenv.DataStore(table).ClientOptions(dynamodb.Options{}, inj.ClientOption()))
	require.NoError(t, patient.Init(data))
	assert.True(t, store.IsInitialized())
	assert.Zero(t, testenv.Lost(t, table, data))
	assert.True(t, relMarkerWritten(t, table))
}

// TestReliabilityUpsertUnderFaults has many goroutines upsert random versions of a few keys
// through the fault mix (resets after the server wrote included), while a watcher reads the rows
// directly: no row's version may ever go down, and each key must end at the highest version
// written.
func TestReliabilityUpsertUnderFaults(t *testing.T) {
	const (
		writers     = 16
		upsertsEach = 40
		keys        = 4
	)
	table := testenv.NewTable(t)
	inj := relInjector(t, 42)
	inj.SetAll(faults.Fault{ThrottleRate: 0.2, ErrorRate: 0.05, ResetBeforeRate: 0.025, ResetAfterRate: 0.025})
	store, _ := testenv.Build(t, testenv.DataStore(table).ClientOptions(dynamodb.Options{}, inj.ClientOption(), relPatientRetries))
	kind := ldstoreimpl.Features()

	var mu sync.Mutex
	highest := map[string]int{}
	failed := 0
	done := make(chan struct{})
	watcherErrs := make(chan error, 1)
	go func() {
		defer close(watcherErrs)
		seen := map[string]int{}
		for {
			rows, err := relScan(table, kind.GetName())
			if err != nil {
				watcherErrs <- err
				return
			}
			for key, row := range rows {
				if row.version < seen[key] {
					watcherErrs <- fmt.Errorf("%s went from version %d back to %d", key, seen[key], row.version)
					return
				}
				if want := string(relItemJSON(key, row.version)); row.item != want {
					watcherErrs <- fmt.Errorf("%s version %d holds the item %s", key, row.version, row.item)
					return
				}
				seen[key] = row.version
			}
			select {
			case <-done:
				return
			default:
			}
		}
	}()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(w)))
			for range upsertsEach {
				key := fmt.Sprintf("flag-%d", rng.Intn(keys))
				version := 1 + rng.Intn(10000)
				_, err := store.Upsert(kind, key, ldstoretypes.SerializedItemDescriptor{
					Version: version, SerializedItem: relItemJSON(key, version)})
				mu.Lock()
				if err != nil {
					t.Errorf("upsert %s version %d: %v", key, version, err)
					failed++
				} else {
					highest[key] = max(highest[key], version)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(done)
	for err := range watcherErrs {
		t.Error(err)
	}
	final := relReadTable(t, table, kind.GetName())
	for key, version := range highest {
		assert.Equal(t, version, final[key].version, "%s ends at the highest version written", key)
	}
	calls, byAction := relFaultCounts(inj)
	t.Logf("%d upserts by %d goroutines, %d failed; %d calls, faults: %v", writers*upsertsEach, writers, failed, calls, byAction)
	assert.NotZero(t, byAction[faults.ResetAfter], "resets after the server wrote were injected")
}

// relErrorNamesAndIsDynamoDB checks a read error: it names the table and the key, and is either
// an AWS API error or a connection failure that callers can recognise.
func relErrorNamesAndIsDynamoDB(t *testing.T, err error, table, key string) {
	t.Helper()
	assert.ErrorContains(t, err, strconv.Quote(table))
	if key != "" {
		assert.ErrorContains(t, err, strconv.Quote(key))
	}
	var apiErr smithy.APIError
	var urlErr *url.Error
	assert.True(t, errors.As(err, &apiErr) || errors.As(err, &urlErr), "error %v is neither an API error nor a connection error", err)
}

// TestReliabilityReadsUnderFaults reads through heavy faults with the AWS SDK's retries off:
// every read either fails with an error that names the table and the key, or returns exactly
// what the table holds.
func TestReliabilityReadsUnderFaults(t *testing.T) {
	table := testenv.NewTable(t)
	data := relData(rand.New(rand.NewSource(3)), 40, "")
	writer, _ := testenv.Build(t, testenv.DataStore(table))
	require.NoError(t, writer.Init(data))
	inj := relInjector(t, 3)
	inj.SetAll(faults.Fault{ThrottleRate: 0.3, ErrorRate: 0.1, ResetBeforeRate: 0.05, ResetAfterRate: 0.05})
	store, _ := testenv.Build(t, testenv.DataStore(table).ClientOptions(dynamodb.Options{}, inj.ClientOption(), relNoRetries))

	want := map[string]ldstoretypes.SerializedItemDescriptor{}
	for _, it := range data[0].Items {
		want[it.Key] = it.Item
	}
	rng := rand.New(rand.NewSource(3))
	failures, successes := 0, 0
	for range 300 {
		key := fmt.Sprintf("flag-%05d", rng.Intn(50)) // a fifth of them absent
		got, err := store.Get(ldstoreimpl.Features(), key)
		if err != nil {
			failures++
			relErrorNamesAndIsDynamoDB(t, err, table, key)
			continue
		}
		successes++
		if item, ok := want[key]; ok {
			assert.Equal(t, item.Version, got.Version, key)
			assert.Equal(t, string(item.SerializedItem), string(got.SerializedItem), key)
		} else {
			assert.Equal(t, -1, got.Version, "%s is absent", key)
		}
	}
	for range 30 {
		all, err := store.GetAll(ldstoreimpl.Features())
		if err != nil {
			failures++
			relErrorNamesAndIsDynamoDB(t, err, table, "")
			continue
		}
		successes++
		assert.ElementsMatch(t, data[0].Items, all)
	}
	t.Logf("%d reads failed, %d succeeded", failures, successes)
	assert.NotZero(t, failures, "faults reached the reads")
	assert.NotZero(t, successes)
}

// relAwaitStatus waits for the data store status to reach available, failing after a bound that
// only a hung status poller could exceed.
func relAwaitStatus(t *testing.T, ch <-chan interfaces.DataStoreStatus, available bool) {
	t.Helper()
	deadline := time.After(2 * time.Minute)
	for {
		select {
		case s := <-ch:
			if s.Available == available {
				return
			}
		case <-deadline:
			t.Fatalf("data store status never became available=%v", available)
		}
	}
}

// TestReliabilityStatusFollowsOutage runs an SDK client in daemon mode over the store: an outage
// turns the SDK's data store status unavailable, and it comes back when DynamoDB does. No
// goroutine is left once the client is closed.
func TestReliabilityStatusFollowsOutage(t *testing.T) {
	table := testenv.NewTable(t)
	writer, _ := testenv.Build(t, testenv.DataStore(table))
	require.NoError(t, writer.Init(testenv.AllData([]ldstoretypes.KeyedSerializedItemDescriptor{testenv.Flag("f", 1, 0)}, nil)))
	defer testenv.NoGoroutinesLeft(t, goleak.IgnoreCurrent())
	inj := relInjector(t, 5)
	mockLog := ldlogtest.NewMockLog()
	client, err := ld.MakeCustomClient("sdk-key", ld.Config{
		DataSource: ldcomponents.ExternalUpdatesOnly(),
		DataStore: ldcomponents.PersistentDataStore(
			testenv.DataStore(table).ClientOptions(dynamodb.Options{}, inj.ClientOption(), relNoRetries)).NoCaching(),
		Events:  ldcomponents.NoEvents(),
		Logging: ldcomponents.Logging().Loggers(mockLog.Loggers),
	}, 10*time.Second)
	require.NoError(t, err)
	defer inj.CloseIdleConnections()
	defer client.Close()
	user := ldcontext.New("user")
	status := client.GetDataStoreStatusProvider()
	ch := status.AddStatusListener()
	defer status.RemoveStatusListener(ch)
	require.True(t, status.GetStatus().Available)
	value, err := client.BoolVariation("f", user, false)
	require.NoError(t, err)
	require.True(t, value)

	inj.SetAll(faults.Fault{Outage: true})
	value, _ = client.BoolVariation("f", user, false)
	assert.False(t, value, "during the outage the flag falls back to its default")
	relAwaitStatus(t, ch, false)
	assert.False(t, status.GetStatus().Available)

	inj.Clear()
	relAwaitStatus(t, ch, true)
	value, err = client.BoolVariation("f", user, false)
	require.NoError(t, err)
	assert.True(t, value)
}

// TestReliabilityNoGoroutineLeftAfterClose uses a store for every operation, through faults and
// without, and checks that Close leaves no goroutine behind.
func TestReliabilityNoGoroutineLeftAfterClose(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faulty bool
	}{{"own transport", false}, {"through faults", true}} {
		t.Run(tc.name, func(t *testing.T) {
			table := testenv.NewTable(t)
			opts := goleak.IgnoreCurrent()
			b := testenv.DataStore(table)
			var inj *faults.Injector
			if tc.faulty {
				inj = faults.New(9, nil)
				inj.SetAll(relFaultMix)
				b.ClientOptions(dynamodb.Options{}, inj.ClientOption(), relPatientRetries)
			}
			ctx, _ := testenv.Context()
			store, err := b.Build(ctx)
			require.NoError(t, err)
			data := relData(rand.New(rand.NewSource(9)), 100, "")
			assert.NoError(t, store.Init(data))
			_, err = store.Get(ldstoreimpl.Features(), "flag-00001")
			assert.NoError(t, err)
			_, err = store.GetAll(ldstoreimpl.Segments())
			assert.NoError(t, err)
			_, err = store.Upsert(ldstoreimpl.Features(), "flag-00001", ldstoretypes.SerializedItemDescriptor{Version: 5000})
			assert.NoError(t, err)
			assert.True(t, store.IsInitialized(), "IsInitialized")
			assert.True(t, store.IsStoreAvailable(), "IsStoreAvailable")
			require.NoError(t, store.Close())
			if inj != nil {
				inj.CloseIdleConnections()
			}
			testenv.NoGoroutinesLeft(t, opts)
		})
	}
}

// TestReliabilityNoSecretsInLogsOrErrors makes every operation fail in every way while logging
// at debug level, and checks that neither the secret key nor the session token shows up.
func TestReliabilityNoSecretsInLogsOrErrors(t *testing.T) {
	const secretKey, sessionToken = "wJalrXUtnFEMI/K7MDENG/bPxRfiSECRETKEY", "FwoGZXIvSESSIONTOKENSECRET"
	table := testenv.NewTable(t)
	cfg := testenv.AWSConfig()
	cfg.Credentials = credentials.NewStaticCredentialsProvider("AKIDNOTSECRET", secretKey, sessionToken)
	mockLog := ldlogtest.NewMockLog()
	mockLog.Loggers.SetMinLevel(ldlog.Debug)
	var texts []string
	for _, fault := range []faults.Fault{{Outage: true}, {ThrottleRate: 1}, {ErrorRate: 1}, {ResetAfterRate: 1}} {
		inj := relInjector(t, 11)
		inj.SetAll(fault)
		store, err := lddynamodb.DataStore(table).ClientConfig(cfg, testenv.WithEndpoint, inj.ClientOption(), relNoRetries).
			InitTimeout(time.Second).Build(testenv.ContextWithLoggers(mockLog.Loggers))
		require.NoError(t, err)
		texts = append(texts, relErrorsOfEveryOperation(t, fmt.Sprintf("%+v", fault), store)...)
		store.Close()
	}
	closed, err := lddynamodb.DataStore(table).ClientConfig(cfg, func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(testenv.ClosedEndpoint(t))
		o.RetryMaxAttempts = 1
	}).Build(testenv.ContextWithLoggers(mockLog.Loggers))
	require.NoError(t, err)
	texts = append(texts, relErrorsOfEveryOperation(t, "closed port", closed)...)
	closed.Close()
	for _, line := range mockLog.GetAllOutput() {
		texts = append(texts, line.Message)
	}
	require.NotEmpty(t, texts)
	for _, text := range texts {
		assert.NotContains(t, text, secretKey)
		assert.NotContains(t, text, sessionToken)
	}
}

// relErrorsOfEveryOperation runs every store operation on a store that cannot reach DynamoDB
// (how is named in the failures), checks that each one fails, and returns their error messages.
func relErrorsOfEveryOperation(t *testing.T, how string, store subsystems.PersistentDataStore) []string {
	t.Helper()
	errs := map[string]error{}
	errs["Init"] = store.Init(relData(rand.New(rand.NewSource(1)), 30, ""))
	_, errs["Get"] = store.Get(ldstoreimpl.Features(), "flag-00001")
	_, errs["GetAll"] = store.GetAll(ldstoreimpl.Features())
	_, errs["Upsert"] = store.Upsert(ldstoreimpl.Features(), "flag-00001", ldstoretypes.SerializedItemDescriptor{Version: 1, SerializedItem: []byte(`{}`)})
	assert.False(t, store.IsInitialized(), "%s: IsInitialized", how)
	assert.False(t, store.IsStoreAvailable(), "%s: IsStoreAvailable", how)
	var texts []string
	for op, err := range errs {
		if !assert.Error(t, err, "%s: %s", how, op) {
			continue
		}
		texts = append(texts, err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err))
	}
	return texts
}

// TestReliabilityBadRows puts rows that other programs could have written into a table and reads
// them: each gives a clear error that names it or a documented tolerance, never a panic, and an
// Init replaces them all.
func TestReliabilityBadRows(t *testing.T) {
	table := testenv.NewTable(t)
	huge := `{"key":"huge","version":1,"padding":"` + strings.Repeat("x", 390*1024) + `"}`
	cases := []struct {
		key   string
		attrs map[string]types.AttributeValue
		// wantErr is part of the error Get must return; otherwise Get returns wantItem.
		wantErr  string
		wantItem ldstoretypes.SerializedItemDescriptor
	}{
		{key: "version-string", attrs: map[string]types.AttributeValue{"version": av.S("3"), "item": av.S(`{"key":"version-string","version":3}`)},
			wantErr: `"version" is not a number`},
		{key: "version-missing", attrs: map[string]types.AttributeValue{"item": av.S(`{}`)},
			wantErr: `"version" is missing`},
		{key: "version-fraction", attrs: map[string]types.AttributeValue{"version": av.N("1.5"), "item": av.S(`{}`)},
			wantErr: `"version" is not an integer`},
		{key: "version-huge", attrs: map[string]types.AttributeValue{"version": av.N("1e40"), "item": av.S(`{}`)},
			wantErr: `"version" is not an integer`},
		{key: "item-number", attrs: map[string]types.AttributeValue{"version": av.N("2"), "item": av.N("7")},
			wantErr: `"item" is not a string`},
		{key: "item-binary", attrs: map[string]types.AttributeValue{"version": av.N("2"), "item": &types.AttributeValueMemberB{Value: []byte("{}")}},
			wantErr: `"item" is not a string`},
		{key: "item-map", attrs: map[string]types.AttributeValue{"version": av.N("2"), "item": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"key": av.S("x")}}},
			wantErr: `"item" is not a string`},
		// The store hands JSON on without parsing it: the SDK parses it and reports what it cannot.
		{key: "item-not-json", attrs: map[string]types.AttributeValue{"version": av.N("4"), "item": av.S("not json")},
			wantItem: ldstoretypes.SerializedItemDescriptor{Version: 4, SerializedItem: []byte("not json")}},
		{key: "item-truncated", attrs: map[string]types.AttributeValue{"version": av.N("4"), "item": av.S(`{"key":"item-truncated","vers`)},
			wantItem: ldstoretypes.SerializedItemDescriptor{Version: 4, SerializedItem: []byte(`{"key":"item-truncated","vers`)}},
		{key: "item-huge", attrs: map[string]types.AttributeValue{"version": av.N("1"), "item": av.S(huge)},
			wantItem: ldstoretypes.SerializedItemDescriptor{Version: 1, SerializedItem: []byte(huge)}},
		{key: "unknown-attributes", attrs: map[string]types.AttributeValue{"version": av.N("6"), "item": av.S(`{"key":"unknown-attributes"}`),
			"lastVersion": av.N("9"), "ttl": av.S("soon"), "included": &types.AttributeValueMemberSS{Value: []string{"a"}}},
			wantItem: ldstoretypes.SerializedItemDescriptor{Version: 6, SerializedItem: []byte(`{"key":"unknown-attributes"}`)}},
	}
	var rows []map[string]types.AttributeValue
	for _, tc := range cases {
		row := map[string]types.AttributeValue{"namespace": av.S("features"), "key": av.S(tc.key)}
		for name, v := range tc.attrs {
			row[name] = v
		}
		rows = append(rows, row)
	}
	// Rows of namespaces the store does not know, which it must never read or remove.
	for _, ns := range []string{"flags", "features2", "other:features", "FEATURES", "features:", ":features"} {
		rows = append(rows, map[string]types.AttributeValue{"namespace": av.S(ns), "key": av.S("stranger"), "version": av.S("x")})
	}
	testenv.PutRows(t, table, rows)

	inj := relInjector(t, 13)
	store, _ := testenv.Build(t, testenv.DataStore(table).ClientOptions(dynamodb.Options{}, inj.ClientOption()))
	for _, tc := range cases {
		t.Run(tc.key, func(t *testing.T) {
			got, err := store.Get(ldstoreimpl.Features(), tc.key)
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				assert.ErrorContains(t, err, strconv.Quote(tc.key))
				assert.ErrorContains(t, err, table)
				var rowErr *lddynamodb.RowError
				assert.ErrorAs(t, err, &rowErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantItem.Version, got.Version)
			assert.Equal(t, tc.wantItem.Deleted, got.Deleted)
			assert.Equal(t, string(tc.wantItem.SerializedItem), string(got.SerializedItem))
		})
	}
	// One undecodable row fails the whole GetAll, naming the row, rather than hiding the flag.
	_, err := store.GetAll(ldstoreimpl.Features())
	var rowErr *lddynamodb.RowError
	require.ErrorAs(t, err, &rowErr)
	assert.ErrorContains(t, err, strconv.Quote(rowErr.Key))

	// The SDK over the same table: evaluations of every bad row fall back without a panic.
	client, err := ld.MakeCustomClient("sdk-key", ld.Config{
		DataSource: ldcomponents.ExternalUpdatesOnly(),
		DataStore:  ldcomponents.PersistentDataStore(testenv.DataStore(table).ClientOptions(dynamodb.Options{}, inj.ClientOption())).NoCaching(),
		Events:     ldcomponents.NoEvents(),
		Logging:    ldcomponents.NoLogging(),
	}, 10*time.Second)
	require.NoError(t, err)
	for _, tc := range cases {
		value, _ := client.BoolVariation(tc.key, ldcontext.New("user"), false)
		assert.False(t, value, tc.key)
	}
	assert.False(t, client.AllFlagsState(ldcontext.New("user")).IsValid(), "all flags state of a table with bad rows")
	require.NoError(t, client.Close())

	// An Init replaces every bad row of its namespaces and leaves the others alone.
	data := relData(rand.New(rand.NewSource(13)), 20, "")
	require.NoError(t, store.Init(data))
	assert.Zero(t, testenv.Lost(t, table, data))
	_, err = store.GetAll(ldstoreimpl.Features())
	assert.NoError(t, err)
	for _, ns := range []string{"flags", "features2", "other:features", "FEATURES", "features:", ":features"} {
		assert.Len(t, relReadTable(t, table, ns), 1, "row of namespace %q", ns)
	}
}

// TestReliabilityOnlyDocumentedActions drives every operation of a store through an injector and
// checks that it called only the documented IAM actions; relInjector checks the same for every
// other reliability test.
func TestReliabilityOnlyDocumentedActions(t *testing.T) {
	table := testenv.NewTable(t)
	inj := faults.New(17, nil)
	defer inj.CloseIdleConnections()
	store, _ := testenv.Build(t, testenv.DataStore(table).ClientOptions(dynamodb.Options{}, inj.ClientOption()))
	require.NoError(t, store.Init(relData(rand.New(rand.NewSource(17)), 60, "")))
	require.NoError(t, store.Init(relData(rand.New(rand.NewSource(18)), 30, ""))) // with deletes
	_, err := store.Get(ldstoreimpl.Features(), "flag-00001")
	require.NoError(t, err)
	_, err = store.GetAll(ldstoreimpl.Segments())
	require.NoError(t, err)
	_, err = store.Upsert(ldstoreimpl.Features(), "flag-00001", ldstoretypes.SerializedItemDescriptor{Version: 5000})
	require.NoError(t, err)
	assert.True(t, store.IsInitialized())
	assert.True(t, store.IsStoreAvailable())
	ops := inj.CountByOp()
	var names []string
	for op := range ops {
		names = append(names, op)
		assert.True(t, relDocumentedActions[op], "%s is not a documented IAM action", op)
	}
	sort.Strings(names)
	t.Logf("actions called: %v", names)
	assert.Equal(t, []string{"BatchWriteItem", "GetItem", "PutItem", "Query"}, names)

	// A daemon-mode reader, and a big segment store, need only the reader policy.
	readInj := faults.New(19, nil)
	defer readInj.CloseIdleConnections()
	reader, _ := testenv.Build(t, testenv.DataStore(table).ClientOptions(dynamodb.Options{}, readInj.ClientOption()))
	_, err = reader.Get(ldstoreimpl.Features(), "flag-00001")
	require.NoError(t, err)
	_, err = reader.GetAll(ldstoreimpl.Features())
	require.NoError(t, err)
	assert.True(t, reader.IsInitialized())
	assert.True(t, reader.IsStoreAvailable())
	bigSegments, _ := testenv.Build(t, testenv.BigSegmentStore(table).ClientOptions(dynamodb.Options{}, readInj.ClientOption()))
	_, err = bigSegments.GetMetadata()
	require.NoError(t, err)
	_, err = bigSegments.GetMembership("hash")
	require.NoError(t, err)
	for op := range readInj.CountByOp() {
		assert.True(t, relReaderActions[op], "a reader called %s, which is not in the reader policy", op)
	}
	assert.NotZero(t, readInj.CountByOp()["Query"])
}

// TestReliabilityInitRetriesWithClientRetriesOff turns the AWS SDK's retries off, so that every
// throttle, 5xx and connection reset reaches the store, and scripts them on Init's batches and
// on its marker: Init's own retrying must still write every item and then the marker.
func TestReliabilityInitRetriesWithClientRetriesOff(t *testing.T) {
	table := testenv.NewTable(t)
	inj := relInjector(t, 21)
	batchFaults := []faults.Action{faults.ProvisionedThroughputExceeded, faults.InternalServerError, faults.ResetBefore,
		faults.Throttling, faults.ResetAfter, faults.ServiceUnavailable, faults.RequestLimitExceeded}
	markerFaults := []faults.Action{faults.ServiceUnavailable, faults.ResetAfter}
	inj.Script("BatchWriteItem", batchFaults...)
	inj.Script("PutItem", markerFaults...)
	metrics := &lddynamodb.Metrics{}
	store, _ := testenv.Build(t, testenv.DataStore(table).Metrics(metrics).ClientOptions(dynamodb.Options{}, inj.ClientOption(), relNoRetries))
	data := relData(rand.New(rand.NewSource(21)), 100, "") // 110 items: 5 batches

	require.NoError(t, store.Init(data))
	assert.Zero(t, testenv.Lost(t, table, data))
	assert.True(t, relMarkerWritten(t, table), "initialized marker")
	assert.True(t, store.IsInitialized())

	// Every scripted fault reached the store, and the store, not the AWS SDK, sent each call again.
	faulted := map[string][]faults.Action{}
	wire := map[string]int64{}
	for _, c := range inj.Calls() {
		wire[c.Op]++
		if c.Action != faults.Pass {
			faulted[c.Op] = append(faulted[c.Op], c.Action)
		}
	}
	assert.ElementsMatch(t, batchFaults, faulted["BatchWriteItem"], "faults met by the batches")
	assert.Equal(t, markerFaults, faulted["PutItem"], "faults met by the marker")
	assert.Equal(t, int64(len(markerFaults)+1), wire["PutItem"], "marker writes")
	for _, op := range []string{"BatchWriteItem", "PutItem"} {
		assert.Equal(t, wire[op], metrics.Snapshot().Calls[op], "%s: every call on the wire was the store's own", op)
	}
}

// TestReliabilityMetricsCountWhatDynamoDBWrote makes batches come back partly unprocessed, in a
// cold Init and in a re-Init that changes every item and removes some, and checks that
// ItemsWritten and BytesWritten are what the table shows was written: the rows present (and
// deleted), sized with RowSize as they are read back, and the marker.
func TestReliabilityMetricsCountWhatDynamoDBWrote(t *testing.T) {
	table := testenv.NewTable(t)
	inj := relInjector(t, 23)
	metrics := &lddynamodb.Metrics{}
	store, _ := testenv.Build(t, testenv.DataStore(table).Metrics(metrics).ClientOptions(dynamodb.Options{}, inj.ClientOption()))
	rng := rand.New(rand.NewSource(23))
	first := relData(rng, 200, "")
	second := relData(rng, 200, "") // the same keys at new versions...
	for c := range second {
		items := second[c].Items
		for i := range items {
			items[i].Item.Version += 1000 // ...all of them newer...
			items[i].Item.SerializedItem = relItemJSON(items[i].Key, items[i].Item.Version)
		}
		second[c].Items = items[:len(items)*4/5] // ...and a fifth of them gone
	}
	marker, err := testenv.Client().GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(table),
		Key: map[string]types.AttributeValue{"namespace": av.S("$inited"), "key": av.S("$inited")}})
	require.NoError(t, err)
	require.Nil(t, marker.Item)
	markerBytes := int64(lddynamodb.RowSize(map[string]types.AttributeValue{"namespace": av.S("$inited"), "key": av.S("$inited")}))

	removed := 0
	for i, data := range [][]ldstoretypes.SerializedCollection{first, second} {
		if i > 0 {
			removed = len(first[0].Items) + len(first[1].Items) - len(second[0].Items) - len(second[1].Items)
		}
		inj.Script("BatchWriteItem", faults.Unprocessed, faults.Unprocessed, faults.Unprocessed, faults.Unprocessed,
			faults.Unprocessed, faults.Unprocessed)
		before := len(inj.Calls())
		metrics.Reset()
		require.NoError(t, store.Init(data))
		require.Zero(t, testenv.Lost(t, table, data))

		var rows, bytes int64
		for _, coll := range data {
			for _, row := range testenv.Rows(t, table, coll.Kind.GetName()) {
				rows++
				bytes += int64(lddynamodb.RowSize(row))
			}
		}
		got := metrics.Snapshot()
		assert.Equal(t, rows+int64(removed)+1, got.ItemsWritten, "Init %d: rows put, deleted, and the marker", i+1)
		assert.Equal(t, bytes+markerBytes, got.BytesWritten, "Init %d: bytes of the rows put and the marker", i+1)

		// The same count from the wire: what was forwarded to DynamoDB, less what came back.
		unprocessed, forwarded := 0, 0
		for _, c := range inj.Calls()[before:] {
			if c.Op == "BatchWriteItem" {
				forwarded += c.Items - c.Unprocessed
				unprocessed += c.Unprocessed
			}
		}
		assert.Positive(t, unprocessed, "Init %d: items handed back unprocessed", i+1)
		assert.Equal(t, int64(forwarded)+1, got.ItemsWritten, "Init %d: items that reached DynamoDB, and the marker", i+1)
	}
}

// relHeldTransport signals each call as it arrives, before handing it to next (a fault injector
// whose latency then holds it).
type relHeldTransport struct {
	next    http.RoundTripper
	arrived chan string
}

func (h relHeldTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	target := req.Header.Get("X-Amz-Target")
	select {
	case h.arrived <- target[strings.LastIndex(target, ".")+1:]:
	default: // only the first call is awaited
	}
	return h.next.RoundTrip(req)
}

// TestReliabilityCloseCancelsOperationInProgress holds an operation's call in the fault layer for
// an hour (well past every timeout of the store) and closes the store: the operation must end
// with a cancellation error instead of waiting out the hour.
func TestReliabilityCloseCancelsOperationInProgress(t *testing.T) {
	flag := testenv.Flag("f", 1, 0)
	cases := []struct {
		name string
		held string // the operation whose calls are held ("" for all)
		op   func(store subsystems.PersistentDataStore) error
	}{
		{"Init reading", "", func(s subsystems.PersistentDataStore) error {
			return s.Init(testenv.AllData([]ldstoretypes.KeyedSerializedItemDescriptor{flag}, nil))
		}},
		{"Init writing", "BatchWriteItem", func(s subsystems.PersistentDataStore) error {
			return s.Init(testenv.AllData([]ldstoretypes.KeyedSerializedItemDescriptor{flag}, nil))
		}},
		{"Get", "", func(s subsystems.PersistentDataStore) error {
			_, err := s.Get(ldstoreimpl.Features(), "f")
			return err
		}},
		{"GetAll", "", func(s subsystems.PersistentDataStore) error {
			_, err := s.GetAll(ldstoreimpl.Features())
			return err
		}},
		{"Upsert", "", func(s subsystems.PersistentDataStore) error {
			_, err := s.Upsert(ldstoreimpl.Features(), "f", flag.Item)
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			table := testenv.NewTable(t)
			inj := relInjector(t, 25)
			inj.Set(tc.held, faults.Fault{Latency: time.Hour})
			held := relHeldTransport{next: inj, arrived: make(chan string, 1)}
			if tc.held != "" {
				held.arrived = make(chan string, 10) // the calls before the held one are signalled too
			}
			store, _ := testenv.Build(t, testenv.DataStore(table).OperationTimeout(time.Hour).InitTimeout(time.Hour).
				ClientOptions(dynamodb.Options{HTTPClient: &http.Client{Transport: held}}))
			result := make(chan error, 1)
			go func() { result <- tc.op(store) }()
			for op := range held.arrived {
				if tc.held == "" || op == tc.held {
					break
				}
			}
			require.NoError(t, store.Close())
			select {
			case err := <-result:
				require.Error(t, err)
				assert.ErrorIs(t, err, context.Canceled)
				assert.ErrorContains(t, err, table)
			case <-time.After(time.Minute): // only a store that ignores Close waits this long
				t.Fatalf("%s still running a minute after Close", tc.name)
			}
		})
	}
}
