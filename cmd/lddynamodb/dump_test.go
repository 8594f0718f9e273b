package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/launchdarkly/go-sdk-common/v3/ldcontext"
	"github.com/launchdarkly/go-sdk-common/v3/ldvalue"
	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldmodel"
	ld "github.com/launchdarkly/go-server-sdk/v7"
	"github.com/launchdarkly/go-server-sdk/v7/interfaces/flagstate"
	"github.com/launchdarkly/go-server-sdk/v7/ldcomponents"
	"github.com/launchdarkly/go-server-sdk/v7/ldfiledata"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lddynamodb/lddynamodb/internal/testenv"
	"github.com/lddynamodb/lddynamodb/internal/testenv/av"
)

func TestDumpLoadsInFileDataSource(t *testing.T) {
	table := testenv.NewTable(t)
	a, b, off := boolFlag("flag-a", 3, true), segmentFlag("flag-b", 5, "seg-1"), boolFlag("flag-off", 2, false)
	seg := segment("seg-1", 2, "user-1")
	fill(t, table, "prod", map[string]*ldmodel.FeatureFlag{"flag-a": &a, "flag-b": &b, "flag-off": &off, "gone": nil},
		map[string]*ldmodel.Segment{"seg-1": &seg, "seg-gone": nil})
	fill(t, table, "", map[string]*ldmodel.FeatureFlag{"other-env": &a}, nil)

	file := filepath.Join(t.TempDir(), "dump.json")
	r := cli(t, "dump", table, "--prefix", "prod", "-o", file)
	require.Equal(t, exitOK, r.code)
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Contains(t, r.stderr, fmt.Sprintf("wrote 3 flags, 1 segments and 2 deleted items (%d bytes) to %s", len(data), file))
	var dumped flagsFile
	require.NoError(t, json.Unmarshal(data, &dumped))
	assert.ElementsMatch(t, []string{"flag-a", "flag-b", "flag-off"}, keys(dumped.Flags))
	assert.ElementsMatch(t, []string{"seg-1"}, keys(dumped.Segments))
	assert.Equal(t, &deletedItems{Flags: map[string]int{"gone": 9}, Segments: map[string]int{"seg-gone": 9}}, dumped.Deleted)

	// Every flag evaluates the same from the dump (file data source) as from the table (daemon mode).
	fromFile, _ := testenv.SDKClient(t, ld.Config{
		DataSource: ldfiledata.DataSource().FilePaths(file),
		DataStore:  ldcomponents.InMemoryDataStore(),
	})
	fromTable, _ := testenv.SDKClient(t, ld.Config{
		DataSource: ldcomponents.ExternalUpdatesOnly(),
		DataStore:  ldcomponents.PersistentDataStore(testenv.DataStore(table).Prefix("prod")),
	})
	for _, user := range []string{"user-1", "user-2"} {
		ctx := ldcontext.New(user)
		want := fromTable.AllFlagsState(ctx, flagstate.OptionDetailsOnlyForTrackedFlags())
		require.True(t, want.IsValid())
		assert.Len(t, want.ToValuesMap(), 3)
		assert.Equal(t, want, fromFile.AllFlagsState(ctx, flagstate.OptionDetailsOnlyForTrackedFlags()))
	}
	member, err := fromFile.BoolVariation("flag-b", ldcontext.New("user-1"), false)
	require.NoError(t, err)
	assert.True(t, member, "the segment came through the dump")
}

func TestDumpToStdout(t *testing.T) {
	table := testenv.NewTable(t)
	a := boolFlag("flag-a", 3, true)
	fill(t, table, "", map[string]*ldmodel.FeatureFlag{"flag-a": &a}, nil)

	r := cli(t, "dump", table)
	require.Equal(t, exitOK, r.code)
	var dumped map[string]map[string]ldvalue.Value
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &dumped))
	assert.Equal(t, 3, dumped["flags"]["flag-a"].GetByKey("version").IntValue())
	assert.Empty(t, dumped["segments"])
	assert.Empty(t, r.stderr)

}

// A dump of a prefix with no rows and no marker fails, as a backup of a misspelt prefix would be
// empty, and names the prefixes that have rows; an initialized prefix without flags dumps.
func TestDumpOfEmptyPrefix(t *testing.T) {
	table := testenv.NewTable(t)
	r := cli(t, "dump", table)
	assert.Equal(t, exitError, r.code)
	assert.Empty(t, r.stdout)
	assert.Contains(t, r.stderr, fmt.Sprintf(`lddynamodb: table %q: nothing under prefix "": no initialized marker "$inited" and no flags or segments; the table is empty`, table))

	a := boolFlag("flag-a", 3, true)
	fill(t, table, "production", map[string]*ldmodel.FeatureFlag{"flag-a": &a}, nil)
	file := filepath.Join(t.TempDir(), "backup.json")
	r = cli(t, "dump", table, "--prefix", "prod", "-o", file)
	assert.Equal(t, exitError, r.code)
	assert.Contains(t, r.stderr, `nothing under prefix "prod": no initialized marker "prod:$inited" and no flags or segments; the table has rows under other prefixes: did you mean --prefix production?`)
	assert.NoFileExists(t, file)

	testenv.PutRow(t, table, map[string]types.AttributeValue{"namespace": av.S("empty:$inited"), "key": av.S("empty:$inited")})
	r = cli(t, "dump", table, "--prefix", "empty")
	require.Equal(t, exitOK, r.code)
	assert.JSONEq(t, `{"flags": {}, "segments": {}, "deleted": {}}`, r.stdout)
	assert.Contains(t, r.stderr, `has no flags or segments under prefix "empty" (its initialized marker is there)`)
}

func TestDumpStopsAtBadRow(t *testing.T) {
	table := testenv.NewTable(t)
	a := boolFlag("flag-a", 3, true)
	fill(t, table, "", map[string]*ldmodel.FeatureFlag{"flag-a": &a}, nil)
	testenv.PutRow(t, table, map[string]types.AttributeValue{"namespace": av.S("segments"), "key": av.S("broken"), "version": av.N("1"), "item": av.S(`[1,2`)})

	r := cli(t, "dump", table)
	assert.Equal(t, exitError, r.code)
	assert.Empty(t, r.stdout)
	assert.Contains(t, r.stderr, `segments "broken": the SDK cannot parse its JSON`)
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
