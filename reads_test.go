package lddynamodb_test

import (
	"strings"
	"testing"

	"github.com/launchdarkly/go-sdk-common/v3/ldcontext"
	"github.com/launchdarkly/go-sdk-common/v3/ldlog"
	"github.com/launchdarkly/go-sdk-common/v3/ldlogtest"
	"github.com/launchdarkly/go-sdk-common/v3/ldreason"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lddynamodb/lddynamodb"
	"github.com/lddynamodb/lddynamodb/internal/faults"
	"github.com/lddynamodb/lddynamodb/internal/testenv"
)

// TestGetOfImpossibleKeyMakesNoCall evaluates, in daemon mode, flag keys that no DynamoDB row can
// have: DynamoDB refuses them with a ValidationException, which the SDK would take for an
// unavailable store. They must evaluate as not found, with no call and the store still available;
// a key of exactly the limit is an ordinary key.
func TestGetOfImpossibleKeyMakesNoCall(t *testing.T) {
	table := testenv.NewTable(t)
	longest := strings.Repeat("k", lddynamodb.MaxSortKeyBytes)
	writer, _ := testenv.Build(t, testenv.DataStore(table))
	require.NoError(t, writer.Init(testenv.AllData([]ldstoretypes.KeyedSerializedItemDescriptor{
		testenv.Flag("f", 1, 0), testenv.Flag(longest, 1, 0)}, nil)))

	inj := faults.New(1, nil)
	t.Cleanup(inj.CloseIdleConnections)
	client, mockLog := testenv.DaemonClient(t,
		lddynamodb.DataStore(table).ClientConfig(testenv.AWSConfig(), testenv.WithEndpoint, inj.ClientOption()), 30)
	user := ldcontext.New("user-1")

	for _, key := range []string{"", longest + "k", strings.Repeat("é", lddynamodb.MaxSortKeyBytes/2+1)} {
		before := inj.CountByOp()["GetItem"]
		value, detail, _ := client.BoolVariationDetail(key, user, false)
		assert.False(t, value, "key of %d bytes", len(key))
		assert.Equal(t, ldreason.EvalErrorFlagNotFound, detail.Reason.GetErrorKind(), "key of %d bytes", len(key))
		assert.Equal(t, before, inj.CountByOp()["GetItem"], "key of %d bytes: no call", len(key))
	}
	assert.True(t, client.GetDataStoreStatusProvider().GetStatus().Available, "the store is still available")
	assert.False(t, mockLog.HasMessageMatch(ldlog.Warn, "unavailab"), "no unavailability logged")
	assert.Empty(t, mockLog.GetOutput(ldlog.Error))

	for _, key := range []string{longest, "f"} {
		before := inj.CountByOp()["GetItem"]
		value, _ := client.BoolVariation(key, user, false)
		assert.True(t, value, "key of %d bytes is found", len(key))
		assert.Equal(t, before+1, inj.CountByOp()["GetItem"], "key of %d bytes: one GetItem", len(key))
	}

	// A prefix that makes the namespace one byte longer than DynamoDB's partition key limit.
	prefix := strings.Repeat("p", lddynamodb.MaxPartitionKeyBytes-len(":features")+1)
	wire := faults.New(1, nil)
	t.Cleanup(wire.CloseIdleConnections)
	store, _ := testenv.Build(t, lddynamodb.DataStore(table).Prefix(prefix).
		ClientConfig(testenv.AWSConfig(), testenv.WithEndpoint, wire.ClientOption()))
	got, err := store.Get(features, "f")
	require.NoError(t, err)
	assert.Equal(t, ldstoretypes.SerializedItemDescriptor{}.NotFound(), got)
	all, err := store.GetAll(features)
	require.NoError(t, err)
	assert.Empty(t, all)
	assert.Empty(t, wire.Calls(), "no call for a namespace that no row can have")
}

// TestLongestPrefix uses the longest prefix whose marker key fits DynamoDB's sort key limit
// exactly: the store works as with any other prefix.
func TestLongestPrefix(t *testing.T) {
	table := testenv.NewTable(t)
	prefix := strings.Repeat("p", lddynamodb.MaxSortKeyBytes-len(":$inited"))
	require.Len(t, lddynamodb.InitedMarker(prefix), lddynamodb.MaxSortKeyBytes)
	store, _ := testenv.Build(t, testenv.DataStore(table).Prefix(prefix))
	f := testenv.Flag("f", 1, 0)
	require.NoError(t, store.Init(testenv.AllData([]ldstoretypes.KeyedSerializedItemDescriptor{f}, nil)))
	assert.True(t, store.IsInitialized())
	got, err := store.Get(features, "f")
	require.NoError(t, err)
	assert.Equal(t, f.Item, got)
	all, err := store.GetAll(features)
	require.NoError(t, err)
	assert.Equal(t, []ldstoretypes.KeyedSerializedItemDescriptor{f}, all)
}

// TestMissingMarkerWarnsOnFirstEmptyRead evaluates flags in daemon mode, where the SDK never
// asks IsInitialized: the first read that finds nothing reads the marker once, and warns once if
// it is missing (a wrong prefix), with no further marker reads for the life of the store.
func TestMissingMarkerWarnsOnFirstEmptyRead(t *testing.T) {
	table := testenv.NewTable(t)
	writer, _ := testenv.Build(t, testenv.DataStore(table).Prefix("prod"))
	require.NoError(t, writer.Init(testenv.AllData([]ldstoretypes.KeyedSerializedItemDescriptor{testenv.Flag("f", 1, 0)}, nil)))
	user := ldcontext.New("user-1")
	noMarkerWarnings := func(log *ldlogtest.MockLog) int {
		n := 0
		for _, msg := range log.GetOutput(ldlog.Warn) {
			if strings.Contains(msg, "no initialized marker") {
				n++
			}
		}
		return n
	}
	tests := []struct {
		name     string
		prefix   string
		allFirst bool // read all flags (one Query) before evaluating single flags
		warnings int
	}{
		{"wrong prefix, Get first", "staging", false, 1},
		{"wrong prefix, GetAll first", "staging", true, 1},
		{"marker present, flag missing", "prod", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inj := faults.New(1, nil)
			t.Cleanup(inj.CloseIdleConnections)
			client, mockLog := testenv.DaemonClient(t, lddynamodb.DataStore(table).Prefix(tt.prefix).
				ClientConfig(testenv.AWSConfig(), testenv.WithEndpoint, inj.ClientOption()), 30)
			markerReads := 0
			if tt.allFirst {
				require.True(t, client.AllFlagsState(user).IsValid())
				markerReads = 1
				assert.Equal(t, map[string]int{"Query": 1, "GetItem": markerReads}, inj.CountByOp(), "one Query, one marker read")
			}
			for i, key := range []string{"a", "b", "c"} {
				_, detail, _ := client.BoolVariationDetail(key, user, false)
				assert.Equal(t, ldreason.EvalErrorFlagNotFound, detail.Reason.GetErrorKind())
				markerReads = 1
				assert.Equal(t, i+1+markerReads, inj.CountByOp()["GetItem"], "evaluation %d: one GetItem each, and one marker read in all", i)
			}
			assert.Equal(t, tt.warnings, noMarkerWarnings(mockLog))
			if tt.warnings > 0 {
				assert.True(t, mockLog.HasMessageMatch(ldlog.Warn, `prefix "staging".*check the table name and prefix`))
			}
		})
	}
}
