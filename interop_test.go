package lddynamodb_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/launchdarkly/go-sdk-common/v3/ldcontext"
	"github.com/launchdarkly/go-sdk-common/v3/ldreason"
	ld "github.com/launchdarkly/go-server-sdk/v7"
	"github.com/launchdarkly/go-server-sdk/v7/ldcomponents"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
	"github.com/launchdarkly/go-server-sdk/v7/testhelpers/ldtestdata"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lddynamodb/lddynamodb"
	"github.com/lddynamodb/lddynamodb/internal/testenv"
)

// TestReadsRowsThatOtherSDKsWrote loads rows as each peer store writes them and evaluates them
// with a real SDK client.
func TestReadsRowsThatOtherSDKsWrote(t *testing.T) {
	user := ldcontext.New("user-1")
	tests := []struct {
		file       string
		prefix     string
		rows       int
		offFlag    bool
		deleted    []string // deleted flags, tombstones in the table
		segmentKey string
	}{
		{file: "go-relay.json", prefix: "relay-env", rows: 4, offFlag: true, deleted: []string{"deleted-flag"}, segmentKey: "beta"},
		{file: "node.json", rows: 4, deleted: []string{"deleted-flag", "omitted-item"}, segmentKey: "beta"},
		{file: "java-dotnet.json", prefix: "java", rows: 3, deleted: []string{"deleted-flag"}},
		{file: "python-ruby.json", prefix: "py", rows: 2, deleted: []string{"deleted-flag"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			rows, err := testenv.LoadRows(filepath.Join("testdata", "rows", tt.file))
			require.NoError(t, err)
			table := testenv.NewTable(t)
			testenv.PutRows(t, table, rows)
			builder := testenv.DataStore(table).Prefix(tt.prefix)

			store, _ := testenv.Build(t, builder)
			assert.True(t, store.IsInitialized())
			flags, err := store.GetAll(features)
			require.NoError(t, err)
			segs, err := store.GetAll(segments)
			require.NoError(t, err)
			assert.Len(t, append(flags, segs...), tt.rows)

			client, _ := testenv.DaemonClient(t, builder, 30)
			require.True(t, client.Initialized())
			value, err := client.BoolVariation("on-flag", user, false)
			require.NoError(t, err)
			assert.True(t, value)
			if tt.offFlag {
				_, detail, _ := client.BoolVariationDetail("off-flag", user, true)
				assert.Equal(t, ldreason.EvalReasonOff, detail.Reason.GetKind())
			}
			for _, key := range tt.deleted {
				_, detail, _ := client.BoolVariationDetail(key, user, false)
				assert.Equal(t, ldreason.EvalErrorFlagNotFound, detail.Reason.GetErrorKind(), key)
			}
			state := client.AllFlagsState(user)
			assert.True(t, state.IsValid(), "one odd tombstone must not break reading all flags")
			assert.Contains(t, state.ToValuesMap(), "on-flag")
		})
	}
}

// TestDaemonModeReadsWhatAnotherClientWrote runs the product end to end: one SDK client gets flags
// from a data source and persists them; another, in daemon mode, evaluates them from the table.
func TestDaemonModeReadsWhatAnotherClientWrote(t *testing.T) {
	table := testenv.NewTable(t)
	td := ldtestdata.DataSource()
	td.Update(td.Flag("checkout").VariationForAll(true))
	testenv.SDKClient(t, ld.Config{
		DataSource: td,
		DataStore:  ldcomponents.PersistentDataStore(testenv.DataStore(table).Prefix("prod")),
	})

	reader, _ := testenv.DaemonClient(t, testenv.DataStore(table).Prefix("prod"), 1)
	user := ldcontext.New("someone")
	value, err := reader.BoolVariation("checkout", user, false)
	require.NoError(t, err)
	assert.True(t, value)

	td.Update(td.Flag("checkout").VariationForAll(false))
	assert.Eventually(t, func() bool {
		value, _ := reader.BoolVariation("checkout", user, true)
		return !value
	}, 2*time.Minute, 50*time.Millisecond, "the reader sees the update once its 1 s cache expires")

	status := reader.GetDataStoreStatusProvider().GetStatus()
	assert.True(t, status.Available)
}

// TestPeerRowsReadTheSameBesideLargeItems reads each peer's fixture rows from a table that also
// holds large items, written by this store under the same prefix: GetAll and Get return every
// fixture row exactly as from a table without large items, and the large items whole.
func TestPeerRowsReadTheSameBesideLargeItems(t *testing.T) {
	bigFlag := testenv.NoisyFlag("big-flag", 2, 1_200_000, 1)
	bigSegment, _ := testenv.ListSegment("big-segment", 3, 26_000, 2)
	large := map[ldstoretypes.DataKind]ldstoretypes.KeyedSerializedItemDescriptor{features: bigFlag, segments: bigSegment}
	for _, tt := range []struct{ file, prefix string }{
		{"go-relay.json", "relay-env"}, {"node.json", ""}, {"java-dotnet.json", "java"}, {"python-ruby.json", "py"},
	} {
		t.Run(tt.file, func(t *testing.T) {
			rows, err := testenv.LoadRows(filepath.Join("testdata", "rows", tt.file))
			require.NoError(t, err)
			alone, beside := testenv.NewTable(t), testenv.NewTable(t)
			testenv.PutRows(t, alone, rows)
			testenv.PutRows(t, beside, rows)
			aloneStore, _ := testenv.Build(t, testenv.DataStore(alone).Prefix(tt.prefix))
			store, _ := testenv.Build(t, testenv.DataStore(beside).Prefix(tt.prefix))
			for kind, item := range large {
				updated, err := store.Upsert(kind, item.Key, item.Item)
				require.NoError(t, err)
				require.True(t, updated)
				require.NotEmpty(t, testenv.Rows(t, beside, lddynamodb.PartsNamespace(tt.prefix, kind)), "%s %q is in parts", kind, item.Key)
			}
			for kind, item := range large {
				want, err := aloneStore.GetAll(kind)
				require.NoError(t, err)
				got, err := store.GetAll(kind)
				require.NoError(t, err)
				assert.ElementsMatch(t, append(want, item), got, "GetAll of %s", kind)
				for _, it := range want {
					one, err := store.Get(kind, it.Key)
					require.NoError(t, err)
					assert.Equal(t, it.Item, one, "Get of %s %q", kind, it.Key)
				}
				one, err := store.Get(kind, item.Key)
				require.NoError(t, err)
				assert.Equal(t, item.Item, one, "Get of %s %q", kind, item.Key)
			}
		})
	}
}
