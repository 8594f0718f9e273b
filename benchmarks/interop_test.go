package benchmarks

import (
	"testing"

	official "github.com/launchdarkly/go-server-sdk-dynamodb/v4"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoreimpl"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lddynamodb/lddynamodb/internal/testenv"
)

// side is one of two stores that share a table during a rollout.
type side struct {
	name  string
	build func(table string) (subsystems.PersistentDataStore, error)
}

var (
	ourSide = side{"lddynamodb", func(table string) (subsystems.PersistentDataStore, error) {
		return testenv.DataStore(table).Prefix("env").Build(quiet)
	}}
	officialSide = side{"official", func(table string) (subsystems.PersistentDataStore, error) {
		return official.DataStore(table).Prefix("env").ClientConfig(testenv.AWSConfig(), testenv.WithEndpoint).Build(quiet)
	}}
)

// TestStoresShareATableEitherWay runs lddynamodb and the official store on one table and prefix,
// each way round, as during a rollout or a rollback: the first fills the table, the second reads
// it and takes over with an Init of changed data, then each upserts and deletes and the other
// sees it, and neither overwrites a newer version that the other wrote.
func TestStoresShareATableEitherWay(t *testing.T) {
	for _, pair := range [][2]side{{officialSide, ourSide}, {ourSide, officialSide}} {
		first, second := pair[0], pair[1]
		t.Run(first.name+" then "+second.name, func(t *testing.T) {
			table := testenv.NewTable(t)
			a, err := first.build(table)
			require.NoError(t, err)
			defer a.Close()
			b, err := second.build(table)
			require.NoError(t, err)
			defer b.Close()
			features, segments := ldstoreimpl.Features(), ldstoreimpl.Segments()

			require.NoError(t, a.Init(testenv.AllData(
				[]ldstoretypes.KeyedSerializedItemDescriptor{testenv.Flag("kept", 1, 0), testenv.Flag("gone", 1, 0), testenv.Flag("changed", 1, 0)},
				[]ldstoretypes.KeyedSerializedItemDescriptor{testenv.Segment("seg", 1)})))
			assert.True(t, b.IsInitialized(), "%s sees %s's marker", second.name, first.name)
			assert.Equal(t, map[string]int{"kept": 1, "gone": 1, "changed": 1}, versions(t, b, features))
			assert.Equal(t, map[string]int{"seg": 1}, versions(t, b, segments))

			require.NoError(t, b.Init(testenv.AllData(
				[]ldstoretypes.KeyedSerializedItemDescriptor{testenv.Flag("kept", 1, 0), testenv.Flag("changed", 2, 0)},
				[]ldstoretypes.KeyedSerializedItemDescriptor{testenv.Segment("seg", 1)})))
			assert.True(t, a.IsInitialized())
			assert.Equal(t, map[string]int{"kept": 1, "changed": 2}, versions(t, a, features), "%s's Init removed gone", second.name)

			updated, err := a.Upsert(features, "changed", testenv.Flag("changed", 3, 0).Item)
			require.NoError(t, err)
			assert.True(t, updated)
			updated, err = b.Upsert(features, "changed", testenv.Flag("changed", 2, 0).Item)
			require.NoError(t, err)
			assert.False(t, updated, "%s keeps %s's newer version", second.name, first.name)
			assert.Equal(t, map[string]int{"kept": 1, "changed": 3}, versions(t, b, features))

			updated, err = b.Upsert(features, "kept", deleted(2))
			require.NoError(t, err)
			assert.True(t, updated)
			got, err := a.Get(features, "kept")
			require.NoError(t, err)
			assert.Equal(t, 2, got.Version)
			assert.True(t, isDeleted(t, features, got), "%s reads %s's deletion", first.name, second.name)
			updated, err = a.Upsert(features, "kept", testenv.Flag("kept", 1, 0).Item)
			require.NoError(t, err)
			assert.False(t, updated, "a deletion's version counts too")
		})
	}
}

// versions reads a kind through a store: the version of each item that is not deleted.
func versions(t *testing.T, store subsystems.PersistentDataStore, kind ldstoretypes.DataKind) map[string]int {
	t.Helper()
	items, err := store.GetAll(kind)
	require.NoError(t, err)
	got := map[string]int{}
	for _, item := range items {
		if !isDeleted(t, kind, item.Item) {
			got[item.Key] = item.Item.Version
		}
	}
	return got
}

// deleted is the tombstone that the SDK upserts to delete a flag.
func deleted(version int) ldstoretypes.SerializedItemDescriptor {
	return ldstoretypes.SerializedItemDescriptor{Version: version, Deleted: true,
		SerializedItem: ldstoreimpl.Features().Serialize(ldstoretypes.ItemDescriptor{Version: version})}
}

// isDeleted says whether the SDK takes a stored item for deleted: flagged so by the store, or a
// tombstone in its JSON.
func isDeleted(t *testing.T, kind ldstoretypes.DataKind, item ldstoretypes.SerializedItemDescriptor) bool {
	t.Helper()
	if item.Deleted {
		return true
	}
	decoded, err := kind.Deserialize(item.SerializedItem)
	require.NoError(t, err)
	return decoded.Item == nil
}
