package lddynamodb_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/launchdarkly/go-sdk-common/v3/ldcontext"
	"github.com/launchdarkly/go-sdk-common/v3/ldreason"
	"github.com/launchdarkly/go-sdk-common/v3/ldtime"
	"github.com/launchdarkly/go-sdk-common/v3/ldvalue"
	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldbuilders"
	ld "github.com/launchdarkly/go-server-sdk/v7"
	"github.com/launchdarkly/go-server-sdk/v7/interfaces"
	"github.com/launchdarkly/go-server-sdk/v7/ldcomponents"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems"
	"github.com/launchdarkly/go-server-sdk/v7/testhelpers/ldtestdata"
	"github.com/launchdarkly/go-server-sdk/v7/testhelpers/storetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lddynamodb/lddynamodb"
	"github.com/lddynamodb/lddynamodb/internal/testenv"
	"github.com/lddynamodb/lddynamodb/internal/testenv/av"
)

// contextHash is the hash under which the SDK looks up a context key's membership: the base64 of
// its SHA-256, as the SDK's big segment code computes it.
func contextHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return base64.StdEncoding.EncodeToString(sum[:])
}

func withPrefix(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + ":" + name
}

// metadataRow is the row in which Relay records when it last synchronized, in the shared layout.
func metadataRow(prefix string, synced ldtime.UnixMillisecondTime) map[string]types.AttributeValue {
	key := withPrefix(prefix, "big_segments_metadata")
	return map[string]types.AttributeValue{
		"namespace":      av.S(key),
		"key":            av.S(key),
		"synchronizedOn": &types.AttributeValueMemberN{Value: strconv.FormatUint(uint64(synced), 10)},
	}
}

// membershipRow is the row of one context hash's memberships, in the shared layout. DynamoDB has
// no empty sets, so an empty list leaves its attribute out, as Relay does.
func membershipRow(prefix, hash string, included, excluded []string) map[string]types.AttributeValue {
	row := map[string]types.AttributeValue{
		"namespace": av.S(withPrefix(prefix, "big_segments_user")),
		"key":       av.S(hash),
	}
	if len(included) > 0 {
		row["included"] = &types.AttributeValueMemberSS{Value: included}
	}
	if len(excluded) > 0 {
		row["excluded"] = &types.AttributeValueMemberSS{Value: excluded}
	}
	return row
}

// clearBigSegments deletes the big segment rows of a prefix.
func clearBigSegments(table, prefix string) error {
	return testenv.ClearNamespaces(table, withPrefix(prefix, "big_segments_metadata"), withPrefix(prefix, "big_segments_user"))
}

// TestBigSegmentStoreConformance runs the SDK's big segment store suite, writing rows in the
// layout that Relay writes. The suite always asks for the default prefix, so it runs once as it
// is and once with every store and row under a prefix, each in a table of its own.
func TestBigSegmentStoreConformance(t *testing.T) {
	for _, prefix := range []string{"", "suite-env"} {
		t.Run("prefix="+prefix, func(t *testing.T) {
			table := testenv.NewTable(t)
			storetest.NewBigSegmentStoreTestSuite(
				func(string) subsystems.ComponentConfigurer[subsystems.BigSegmentStore] {
					return testenv.BigSegmentStore(table).Prefix(prefix)
				},
				func(string) error { return clearBigSegments(table, prefix) },
				func(_ string, metadata subsystems.BigSegmentStoreMetadata) error {
					return testenv.WriteRow(table, metadataRow(prefix, metadata.LastUpToDate))
				},
				func(_ string, hash string, included, excluded []string) error {
					return testenv.WriteRow(table, membershipRow(prefix, hash, included, excluded))
				},
			).Run(t)
		})
	}
}

// membership is what a context's membership should answer, by segment reference.
type membership map[string]ldvalue.OptionalBool

var (
	in      = ldvalue.NewOptionalBool(true)
	out     = ldvalue.NewOptionalBool(false)
	neither = ldvalue.OptionalBool{}
)

// TestBigSegmentStoreReadsRelayRows reads fixture rows in the shape that Relay writes them (its
// lastVersion cursor included), three environments in one table: no prefix (relay.json),
// "staging" (relay-prefixed.json, with the opposite memberships), and "new-env", where Relay has
// written its cursor but not yet a synchronization time (relay-cursor-only.json).
func TestBigSegmentStoreReadsRelayRows(t *testing.T) {
	table := testenv.NewTable(t)
	for _, file := range []string{"relay.json", "relay-prefixed.json", "relay-cursor-only.json"} {
		rows, err := testenv.LoadRows(filepath.Join("testdata", "bigsegments", file))
		require.NoError(t, err)
		testenv.PutRows(t, table, rows)
	}
	cases := []struct {
		name    string
		prefix  string
		synced  ldtime.UnixMillisecondTime
		members map[string]membership // by context key
	}{
		{"no prefix", "", 1718000000000, map[string]membership{
			"alice": {"big-seg.g1": in, "other-seg.g2": in, "big-seg.g2": neither},
			"bob":   {"big-seg.g1": out, "other-seg.g2": neither},
			"carol": {"big-seg.g1": in, "other-seg.g2": out}, // in both sets: included wins
			"dave":  {"big-seg.g1": neither},                 // a row without sets
			"erin":  {"big-seg.g1": neither},                 // no row
		}},
		{"prefix", "staging", 1718000123456, map[string]membership{
			"alice": {"big-seg.g1": out, "other-seg.g2": neither},
			"bob":   {"big-seg.g1": in},
			"carol": {"big-seg.g1": neither},
		}},
		{"cursor but no synchronization time", "new-env", 0, map[string]membership{
			"alice": {"big-seg.g1": neither},
		}},
		{"prefix without rows", "nobody", 0, map[string]membership{
			"alice": {"big-seg.g1": neither},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store, _ := testenv.Build(t, testenv.BigSegmentStore(table).Prefix(tc.prefix))
			meta, err := store.GetMetadata()
			require.NoError(t, err)
			assert.Equal(t, tc.synced, meta.LastUpToDate)
			for contextKey, want := range tc.members {
				got, err := store.GetMembership(contextHash(contextKey))
				require.NoError(t, err)
				for ref, answer := range want {
					assert.Equal(t, answer, got.CheckMembership(ref), "context %q, segment %q", contextKey, ref)
				}
			}
		})
	}
}

// TestBigSegmentStoreRejectsUndecodableRows checks that a row no LaunchDarkly writer makes is an
// error that names the table and the row, rather than an empty answer. Each row is alone in a
// table of its own: the metadata cases all write the same row.
func TestBigSegmentStoreRejectsUndecodableRows(t *testing.T) {
	const prefix = "bad"
	metaKey := withPrefix(prefix, "big_segments_metadata")
	metadata := func(synced types.AttributeValue) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{"namespace": av.S(metaKey), "key": av.S(metaKey), "synchronizedOn": synced}
	}
	members := func(attr string, value types.AttributeValue) map[string]types.AttributeValue {
		row := membershipRow(prefix, "hash-"+attr, nil, nil)
		row[attr] = value
		return row
	}
	cases := []struct {
		name   string
		row    map[string]types.AttributeValue
		reason string
	}{
		{"synchronizedOn as a string", metadata(av.S("1718000000000")), `"synchronizedOn" is not a number`},
		{"synchronizedOn with a fraction", metadata(&types.AttributeValueMemberN{Value: "1.5"}), `"synchronizedOn" is not a count of milliseconds`},
		{"synchronizedOn negative", metadata(&types.AttributeValueMemberN{Value: "-1"}), `"synchronizedOn" is not a count of milliseconds`},
		{"included as a string", members("included", av.S("big-seg.g1")), `"included" is not a string set`},
		{"excluded as a list", members("excluded", &types.AttributeValueMemberL{Value: []types.AttributeValue{av.S("big-seg.g1")}}), `"excluded" is not a string set`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			table := testenv.NewTable(t)
			store, _ := testenv.Build(t, testenv.BigSegmentStore(table).Prefix(prefix))
			testenv.PutRows(t, table, []map[string]types.AttributeValue{tc.row})
			var err error
			if tc.row["namespace"].(*types.AttributeValueMemberS).Value == metaKey {
				_, err = store.GetMetadata()
			} else {
				_, err = store.GetMembership(tc.row["key"].(*types.AttributeValueMemberS).Value)
			}
			var rowErr *lddynamodb.RowError
			require.ErrorAs(t, err, &rowErr)
			assert.Equal(t, tc.row["namespace"], av.S(rowErr.Namespace))
			assert.Equal(t, tc.row["key"], av.S(rowErr.Key))
			assert.ErrorContains(t, err, table)
			assert.ErrorContains(t, err, tc.reason)
		})
	}
}

// TestBigSegmentStoreErrorsNameTableAndRow checks that a failed call wraps its cause and says
// which table and row it was reading.
func TestBigSegmentStoreErrorsNameTableAndRow(t *testing.T) {
	store, _ := testenv.Build(t, lddynamodb.BigSegmentStore("unreachable-table").Prefix("p").
		ClientConfig(testenv.AWSConfig(), func(o *dynamodb.Options) {
			o.BaseEndpoint = aws.String(testenv.ClosedEndpoint(t))
			o.RetryMaxAttempts = 1
		}))
	var opErr *net.OpError

	_, err := store.GetMetadata()
	require.ErrorAs(t, err, &opErr)
	assert.ErrorContains(t, err, `table "unreachable-table"`)
	assert.ErrorContains(t, err, `key="p:big_segments_metadata"`)

	_, err = store.GetMembership("some-hash")
	require.ErrorAs(t, err, &opErr)
	assert.ErrorContains(t, err, `table "unreachable-table"`)
	assert.ErrorContains(t, err, `namespace="p:big_segments_user" key="some-hash"`)
}

// recordingClient passes every call on to DynamoDB and keeps the GetItem requests.
type recordingClient struct {
	lddynamodb.Client
	mu   sync.Mutex
	gets []dynamodb.GetItemInput
}

func (c *recordingClient) GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.mu.Lock()
	c.gets = append(c.gets, *in)
	c.mu.Unlock()
	return c.Client.GetItem(ctx, in, optFns...)
}

// TestBigSegmentStoreReadsConsistentlyOneCallEach checks the cost of the two reads, and that they
// are strongly consistent, through a given client that records them.
func TestBigSegmentStoreReadsConsistentlyOneCallEach(t *testing.T) {
	table := testenv.NewTable(t)
	testenv.PutRows(t, table, []map[string]types.AttributeValue{
		metadataRow("", 1718000000000),
		membershipRow("", contextHash("alice"), []string{"big-seg.g1"}, nil),
	})
	client := &recordingClient{Client: testenv.Client()}
	metrics := &lddynamodb.Metrics{}
	store, _ := testenv.Build(t, lddynamodb.BigSegmentStore(table).DynamoClient(client).Metrics(metrics))

	meta, err := store.GetMetadata()
	require.NoError(t, err)
	assert.Equal(t, ldtime.UnixMillisecondTime(1718000000000), meta.LastUpToDate)
	got, err := store.GetMembership(contextHash("alice"))
	require.NoError(t, err)
	assert.Equal(t, in, got.CheckMembership("big-seg.g1"))

	require.Len(t, client.gets, 2)
	for _, get := range client.gets {
		assert.True(t, aws.ToBool(get.ConsistentRead), "GetItem %v is not consistent", get.Key)
	}
	snap := metrics.Snapshot()
	assert.Equal(t, map[string]int64{"GetItem": 2}, snap.Calls)
	assert.Empty(t, snap.Errors)
	t.Logf("GetMetadata + GetMembership: %d calls, %.1f capacity units", snap.TotalCalls(), snap.CapacityUnits)
}

// openConns counts the connections of a dialer that are not yet closed.
type openConns struct {
	mu   sync.Mutex
	open int
}

type trackedConn struct {
	net.Conn
	counter *openConns
	once    sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.counter.mu.Lock()
		c.counter.open--
		c.counter.mu.Unlock()
	})
	return c.Conn.Close()
}

func (o *openConns) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	o.mu.Lock()
	o.open++
	o.mu.Unlock()
	return &trackedConn{Conn: conn, counter: o}, nil
}

func (o *openConns) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.open
}

// TestBigSegmentStoreCloseReleasesConnections checks that Close cancels reads and closes the
// keep-alive connection of the client Build made, which would otherwise stay open (with its two
// goroutines) until the transport's or the server's idle timeout.
func TestBigSegmentStoreCloseReleasesConnections(t *testing.T) {
	table := testenv.NewTable(t)
	testenv.PutRows(t, table, []map[string]types.AttributeValue{metadataRow("", 1)})
	conns := &openConns{}
	cfg := testenv.AWSConfig()
	cfg.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.DialContext = conns.dial
	})

	store, err := lddynamodb.BigSegmentStore(table).ClientConfig(cfg, testenv.WithEndpoint).Build(subsystems.BasicClientContext{})
	require.NoError(t, err)
	// A server may close a connection on its own (one run saw none left open after the read),
	// which would leave nothing for Close to release: read until one stays open.
	for attempt := 0; attempt < 10 && conns.count() == 0; attempt++ {
		_, err = store.GetMetadata()
		require.NoError(t, err)
	}
	require.Equal(t, 1, conns.count(), "the reads should leave one idle keep-alive connection")
	require.NoError(t, store.Close())
	// A connection that the read had not yet handed back to the idle pool when Close ran is
	// closed as it comes back: wait for that rather than assume it was already idle.
	assert.Eventually(t, func() bool { return conns.count() == 0 }, time.Minute, time.Millisecond,
		"connections left open after Close")

	_, err = store.GetMetadata()
	assert.ErrorIs(t, err, context.Canceled)
}

func TestBigSegmentStoreBuildRejectsBadOptions(t *testing.T) {
	cases := []struct {
		name    string
		builder *lddynamodb.BigSegmentStoreBuilder
		want    string
	}{
		{"empty table", lddynamodb.BigSegmentStore(""), "table name is empty"},
		{"zero timeout", testenv.BigSegmentStore("t").OperationTimeout(0), "operation timeout must be positive"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store, err := tc.builder.Build(subsystems.BasicClientContext{})
			assert.ErrorContains(t, err, tc.want)
			assert.Nil(t, store)
		})
	}
}

const (
	e2eSegmentKey = "big-segment"
	e2eFlagKey    = "big-segment-flag"
)

// writeBigSegmentFlag stores, through a data store like the one Relay keeps, a flag that serves
// true to the contexts in a big segment (generation 1), and the segment, which lists no one: its
// membership lives only in the big segment rows.
func writeBigSegmentFlag(t *testing.T, table string) {
	segment := ldbuilders.NewSegmentBuilder(e2eSegmentKey).Version(1).Unbounded(true).Generation(1).Build()
	flag := ldbuilders.NewFlagBuilder(e2eFlagKey).Version(1).On(true).
		Variations(ldvalue.Bool(false), ldvalue.Bool(true)).OffVariation(0).FallthroughVariation(0).
		AddRule(ldbuilders.NewRuleBuilder().ID("in-big-segment").Variation(1).
			Clauses(ldbuilders.SegmentMatchClause(e2eSegmentKey))).
		Build()
	data := ldtestdata.DataSource()
	data.UsePreconfiguredSegment(segment)
	data.UsePreconfiguredFlag(flag)
	writer, err := ld.MakeCustomClient("writer-sdk-key", ld.Config{
		DataSource: data,
		DataStore:  ldcomponents.PersistentDataStore(testenv.DataStore(table)),
		Events:     ldcomponents.NoEvents(),
		Logging:    ldcomponents.NoLogging(),
	}, 10*time.Second)
	require.NoError(t, err)
	require.NoError(t, writer.Close())
}

// newDaemonClient is an SDK client in daemon mode: flags from the DynamoDB data store (with the
// SDK's default cache), big segments from the given store, status polled often so that changes
// show soon.
func newDaemonClient(t *testing.T, table string, bigSegments *lddynamodb.BigSegmentStoreBuilder) *ld.LDClient {
	t.Helper()
	client, _ := testenv.DaemonClient(t, testenv.DataStore(table),
		int(ldcomponents.PersistentDataStoreDefaultCacheTime/time.Second), func(c *ld.Config) {
			c.BigSegments = ldcomponents.BigSegments(bigSegments).StatusPollInterval(10 * time.Millisecond)
		})
	return client
}

func evaluate(t *testing.T, client *ld.LDClient, contextKey string) (bool, ldreason.BigSegmentsStatus) {
	t.Helper()
	value, detail, err := client.BoolVariationDetail(e2eFlagKey, ldcontext.New(contextKey), false)
	require.NoError(t, err)
	return value, detail.Reason.GetBigSegmentsStatus()
}

// waitForStatus waits for the status listener to report want; the bound only stops a broken test.
func waitForStatus(t *testing.T, statuses <-chan interfaces.BigSegmentStoreStatus, want interfaces.BigSegmentStoreStatus) {
	t.Helper()
	timeout := time.After(2 * time.Minute)
	for {
		select {
		case got := <-statuses:
			if got == want {
				return
			}
		case <-timeout:
			t.Fatalf("big segment store status never became %+v", want)
		}
	}
}

// TestBigSegmentsEndToEnd evaluates, with a real SDK client, a flag that targets a big segment
// whose membership is only in DynamoDB, and follows the status the SDK derives from the
// metadata row as Relay's synchronization time ages and is renewed.
func TestBigSegmentsEndToEnd(t *testing.T) {
	table := testenv.NewTable(t)
	writeBigSegmentFlag(t, table)
	ref := e2eSegmentKey + ".g1"
	testenv.PutRows(t, table, []map[string]types.AttributeValue{
		metadataRow("", ldtime.UnixMillisNow()),
		membershipRow("", contextHash("included-user"), []string{ref}, nil),
		membershipRow("", contextHash("excluded-user"), nil, []string{ref}),
		membershipRow("", contextHash("old-generation-user"), []string{e2eSegmentKey + ".g0"}, nil),
	})
	client := newDaemonClient(t, table, testenv.BigSegmentStore(table))
	provider := client.GetBigSegmentStoreStatusProvider()
	statuses := provider.AddStatusListener()

	assert.Equal(t, interfaces.BigSegmentStoreStatus{Available: true, Stale: false}, provider.GetStatus())
	for contextKey, want := range map[string]bool{
		"included-user": true, "excluded-user": false, "old-generation-user": false, "unknown-user": false,
	} {
		value, status := evaluate(t, client, contextKey)
		assert.Equal(t, want, value, "context %q", contextKey)
		assert.Equal(t, ldreason.BigSegmentsHealthy, status, "context %q", contextKey)
	}

	// Relay last synchronized an hour ago, past the default StaleAfter of two minutes.
	testenv.PutRows(t, table, []map[string]types.AttributeValue{
		metadataRow("", ldtime.UnixMillisNow()-ldtime.UnixMillisecondTime(time.Hour/time.Millisecond)),
	})
	waitForStatus(t, statuses, interfaces.BigSegmentStoreStatus{Available: true, Stale: true})
	value, status := evaluate(t, client, "included-user")
	assert.True(t, value, "stale data is still used")
	assert.Equal(t, ldreason.BigSegmentsStale, status)

	testenv.PutRows(t, table, []map[string]types.AttributeValue{metadataRow("", ldtime.UnixMillisNow())})
	waitForStatus(t, statuses, interfaces.BigSegmentStoreStatus{Available: true, Stale: false})
}

// TestBigSegmentsEndToEndWithoutSynchronization covers the states before and outside Relay's
// work: no metadata row yet (available, stale: never synchronized is not an error), and a store
// that cannot reach DynamoDB (unavailable, and evaluations say so).
func TestBigSegmentsEndToEndWithoutSynchronization(t *testing.T) {
	table := testenv.NewTable(t)
	writeBigSegmentFlag(t, table)
	testenv.PutRows(t, table, []map[string]types.AttributeValue{
		membershipRow("", contextHash("included-user"), []string{e2eSegmentKey + ".g1"}, nil),
	})
	unreachable := lddynamodb.BigSegmentStore(table).ClientConfig(testenv.AWSConfig(), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(testenv.ClosedEndpoint(t))
		o.RetryMaxAttempts = 1
	})
	cases := []struct {
		name       string
		store      *lddynamodb.BigSegmentStoreBuilder
		wantStatus interfaces.BigSegmentStoreStatus
		wantValue  bool
		wantReason ldreason.BigSegmentsStatus
	}{
		{"never synchronized", testenv.BigSegmentStore(table), interfaces.BigSegmentStoreStatus{Available: true, Stale: true}, true, ldreason.BigSegmentsStale},
		{"unreachable", unreachable, interfaces.BigSegmentStoreStatus{Available: false}, false, ldreason.BigSegmentsStoreError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client := newDaemonClient(t, table, tc.store)
			assert.Equal(t, tc.wantStatus, client.GetBigSegmentStoreStatusProvider().GetStatus())
			value, status := evaluate(t, client, "included-user")
			assert.Equal(t, tc.wantValue, value)
			assert.Equal(t, tc.wantReason, status)
		})
	}
}

// Big segments: the Relay Proxy writes segment membership to the table, under the same prefix as
// the environment's flags, and the SDK reads it there.
func ExampleBigSegmentStore() {
	config := ld.Config{
		DataStore: ldcomponents.PersistentDataStore(
			lddynamodb.DataStore("my-table").Prefix("production")).CacheSeconds(30),
		BigSegments: ldcomponents.BigSegments(
			lddynamodb.BigSegmentStore("my-table").Prefix("production")),
	}
	client, err := ld.MakeCustomClient("your-sdk-key", config, 5*time.Second)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()
	if status := client.GetBigSegmentStoreStatusProvider().GetStatus(); !status.Available || status.Stale {
		fmt.Printf("big segments are not up to date: %+v\n", status)
	}
}
