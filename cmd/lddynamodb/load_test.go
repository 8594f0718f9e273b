package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/launchdarkly/go-sdk-common/v3/ldcontext"
	"github.com/launchdarkly/go-sdk-common/v3/ldvalue"
	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldbuilders"
	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldmodel"
	ld "github.com/launchdarkly/go-server-sdk/v7"
	"github.com/launchdarkly/go-server-sdk/v7/interfaces/flagstate"
	"github.com/launchdarkly/go-server-sdk/v7/ldcomponents"
	"github.com/launchdarkly/go-server-sdk/v7/ldfiledata"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoreimpl"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lddynamodb/lddynamodb"
	"github.com/lddynamodb/lddynamodb/internal/testenv"
)

// prefixRows returns the flag and segment rows of a prefix as "kind key" -> "version item", and
// whether its initialized marker is there: what must survive a dump and load unchanged.
func prefixRows(t *testing.T, table, prefix string) (map[string]string, bool) {
	t.Helper()
	rows := map[string]string{}
	for _, kind := range kinds {
		for _, row := range testenv.Rows(t, table, lddynamodb.Namespace(prefix, kind)) {
			key, _ := stringAttr(row, lddynamodb.AttrKey)
			version := row["version"].(*types.AttributeValueMemberN).Value
			item, _ := stringAttr(row, "item")
			rows[kind.GetName()+" "+key] = version + " " + item
		}
	}
	marker := lddynamodb.InitedMarker(prefix)
	return rows, len(testenv.Rows(t, table, marker)) == 1
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	return path
}

// dump then load copies a prefix to another prefix and to another table row for row: live and
// deleted flags and segments, versions and JSON; and loading the same file again writes nothing
// but the marker, because load goes through the store's differential Init.
func TestDumpLoadRoundTrip(t *testing.T) {
	source := testenv.NewTable(t)
	base := boolFlag("base", 4, true)
	dependent := ldbuilders.NewFlagBuilder("dependent").Version(7).On(true).
		Variations(ldvalue.Bool(false), ldvalue.Bool(true)).OffVariation(0).FallthroughVariation(1).
		AddPrerequisite("base", 1).Build()
	member := segmentFlag("member", 2, "seg-1")
	seg := segment("seg-1", 3, "user-1")
	fill(t, source, "prod", map[string]*ldmodel.FeatureFlag{"base": &base, "dependent": &dependent, "member": &member, "gone": nil},
		map[string]*ldmodel.Segment{"seg-1": &seg, "seg-gone": nil})
	want, marker := prefixRows(t, source, "prod")
	require.True(t, marker)
	require.Len(t, want, 6)

	file := filepath.Join(t.TempDir(), "prod.json")
	require.Equal(t, exitOK, cli(t, "dump", source, "--prefix", "prod", "-o", file).code)

	other := testenv.NewTable(t)
	for _, dest := range []struct{ table, prefix string }{{source, "copy"}, {other, ""}, {other, "prod"}} {
		r := cli(t, "load", dest.table, file, "--prefix", dest.prefix)
		require.Equal(t, exitOK, r.code)
		assert.Contains(t, r.stdout, fmt.Sprintf("loaded %s into table %q, prefix %q: 4 flags and segments and 2 deleted items in the file; 6 rows written, 0 deleted, 0 unchanged, 0 skipped;", file, dest.table, dest.prefix))
		got, marker := prefixRows(t, dest.table, dest.prefix)
		assert.True(t, marker, "load writes the initialized marker")
		assert.Equal(t, want, got)
		assert.Equal(t, exitOK, cli(t, "verify", dest.table, "--prefix", dest.prefix).code)
	}
	got, _ := prefixRows(t, source, "prod")
	assert.Equal(t, want, got, "loading another prefix of the same table leaves this one alone")

	r := cli(t, "load", other, file)
	require.Equal(t, exitOK, r.code)
	assert.Contains(t, r.stdout, "0 rows written, 0 deleted, 6 unchanged, 0 skipped; 5 DynamoDB calls",
		"unchanged data: only the marker is written (Init reads the two namespaces and their parts namespaces)")

	// A dump of the copy is the same file.
	again := filepath.Join(t.TempDir(), "again.json")
	require.Equal(t, exitOK, cli(t, "dump", other, "-o", again).code)
	first, err := os.ReadFile(file)
	require.NoError(t, err)
	second, err := os.ReadFile(again)
	require.NoError(t, err)
	assert.Equal(t, string(first), string(second))
}

// Load replaces what the prefix had, as an SDK's Init does: rows the file does not have go.
func TestLoadReplacesThePrefix(t *testing.T) {
	table := testenv.NewTable(t)
	old := boolFlag("old", 1, true)
	fill(t, table, "", map[string]*ldmodel.FeatureFlag{"old": &old}, nil)

	r := cli(t, "load", table, writeFile(t, "new.json", `{"flagValues": {"new": "hello"}}`))
	require.Equal(t, exitOK, r.code)
	assert.Contains(t, r.stdout, "1 flags and segments and 0 deleted items in the file; 1 rows written, 1 deleted, 0 unchanged, 0 skipped;")
	rows, marker := prefixRows(t, table, "")
	assert.True(t, marker)
	assert.Len(t, rows, 1)
	assert.Contains(t, rows, "features new")
}

// A YAML file, with flags and flagValues, evaluates from the table after load exactly as the
// SDK's file data source evaluates the file itself.
func TestLoadYAMLEvaluatesAsFileDataSource(t *testing.T) {
	const yamlFile = `
# flags as the file data source reads them
flags:
  new-checkout:
    key: new-checkout
    version: 3
    "on": true
    variations: [false, true]
    offVariation: 0
    fallthrough: {variation: 0}
    targets:
      - values: [user-1]
        variation: 1
  premium:
    key: premium
    version: 1
    "on": true
    variations: [basic, premium]
    offVariation: 0
    fallthrough: {variation: 0}
    prerequisites:
      - key: new-checkout
        variation: 1
    rules:
      - id: r0
        variation: 1
        clauses:
          - {attribute: "", op: segmentMatch, values: [beta]}
flagValues:
  banner: spring sale
segments:
  beta:
    key: beta
    version: 2
    included: [user-1]
`
	file := writeFile(t, "flags.yaml", yamlFile)
	table := testenv.NewTable(t)
	r := cli(t, "load", table, file, "--prefix", "env")
	require.Equal(t, exitOK, r.code)
	assert.Contains(t, r.stdout, "4 flags and segments and 0 deleted items in the file; 4 rows written, 0 deleted, 0 unchanged, 0 skipped;")

	fromFile, _ := testenv.SDKClient(t, ld.Config{
		DataSource: ldfiledata.DataSource().FilePaths(file),
		DataStore:  ldcomponents.InMemoryDataStore(),
	})
	fromTable, _ := testenv.SDKClient(t, ld.Config{
		DataSource: ldcomponents.ExternalUpdatesOnly(),
		DataStore:  ldcomponents.PersistentDataStore(testenv.DataStore(table).Prefix("env")),
	})
	for _, user := range []string{"user-1", "user-2"} {
		ctx := ldcontext.New(user)
		want := fromFile.AllFlagsState(ctx, flagstate.OptionDetailsOnlyForTrackedFlags())
		require.True(t, want.IsValid())
		assert.Len(t, want.ToValuesMap(), 3)
		assert.Equal(t, want, fromTable.AllFlagsState(ctx, flagstate.OptionDetailsOnlyForTrackedFlags()))
	}
	value, detail, err := fromTable.StringVariationDetail("premium", ldcontext.New("user-1"), "")
	require.NoError(t, err)
	assert.Equal(t, "premium", value, "the prerequisite and the segment came through (%s); in YAML, quote \"on\"", detail.Reason)
}

// The example file that the quick start loads is a valid flags file.
func TestExampleFlagsFileLoads(t *testing.T) {
	table := testenv.NewTable(t)
	r := cli(t, "load", table, filepath.Join("..", "..", "examples", "flags.json"))
	require.Equal(t, exitOK, r.code)
	assert.Equal(t, exitOK, cli(t, "verify", table).code)
}

// A bad file is refused with the file's name and what is wrong, before anything is written.
func TestLoadBadFileWritesNothing(t *testing.T) {
	good := boolFlag("flag-a", 1, true)
	cases := []struct {
		name, content, want string
	}{
		{"not JSON or YAML", "flags: [unclosed", "not JSON (it does not start with '{') nor YAML"},
		{"broken JSON", "{\n  \"flags\": {\n    \"a\": {\"key\": \"a\",}\n  }\n}", `line 3, column 22: invalid JSON (in flags "a"): invalid character '}'`},
		{"cut short", "{\"flags\": {\"a\": {\"key\": \"a\",\n  \"variations\": [tru", `line 2, column 21: the file ends before its JSON does (in flags "a"): is it cut short?`},
		{"misspelt section", `{"flag": {}}`, `line 1, column 2: unknown section "flag": a flags file has "flags", "flagValues", "segments" and "deleted"`},
		{"misspelt deleted section", `{"deleted": {"flag": {}}}`, `line 1, column 14: unknown section "deleted.flag": "deleted" has "flags" and "segments"`},
		{"section not an object", `{"flags": ["a"]}`, `line 1, column 11: "flags" must be a JSON object`},
		{"key twice in a section", "{\"flags\": {\"a\": {\"key\": \"a\", \"version\": 1},\n  \"a\": {\"key\": \"a\", \"version\": 2}}}", `line 2, column 3: flags "a" is given twice in the section`},
		{"deleted version not a number", `{"deleted": {"segments": {"s": "2"}}}`, `line 1, column 32: deleted.segments "s": the version must be a whole number, not a string`},
		{"flag the SDK cannot parse", `{"flags": {"a": {"key": "a", "version": "one"}}}`, `line 1, column 41: flags "a": the SDK cannot parse it: field "version" must be a number, not "one"`},
		{"on as a string", "{\"flags\": {\n  \"a\": {\"key\": \"a\", \"version\": 1, \"on\": \"yes\"}}}", `line 2, column 41: flags "a": the SDK cannot parse it: field "on" must be a boolean, not "yes"`},
		{"nested field", "{\"segments\": {\"s\": {\"key\": \"s\",\n  \"rules\": [{\"clauses\": [{\"op\": 5}]}]}}}", `line 2, column 33: segments "s": the SDK cannot parse it: field "rules[0].clauses[0].op" must be a string, not 5`},
		{"YAML bare on", "flags:\n  a:\n    key: a\n    version: 1\n    on: true\n", `flags "a": it has a field "true", which is how YAML 1.1 reads a bare on: or off: (or yes:, no:); quote the key, as in "on": true`},
		{"YAML wrong type", "segments:\n  s:\n    key: s\n    version: [1]\n", `segments "s": the SDK cannot parse it: field "version" must be a number, not [1]`},
		{"key that disagrees", `{"flags": {"a": ` + flagJSON(t, good) + `}}`, `flags "a": its "key" is "flag-a"; it must be the same as the key it is listed under`},
		{"no key", `{"segments": {"s": {"version": 1}}}`, `segments "s": its "key" is ""`},
		{"live and deleted", `{"flags": {"flag-a": ` + flagJSON(t, good) + `}, "deleted": {"flags": {"flag-a": 2}}}`, `"flag-a" is in both flags and deleted.flags: give each key once`},
		{"flag and flagValue", `{"flags": {"flag-a": ` + flagJSON(t, good) + `}, "flagValues": {"flag-a": true}}`, `"flag-a" is in both flags and flagValues`},
		{"flagValue and deleted", `{"flagValues": {"flag-a": true}, "deleted": {"flags": {"flag-a": 2}}}`, `"flag-a" is in both flagValues and deleted.flags`},
		{"segment live and deleted", `{"segments": {"s": {"key": "s", "version": 1}}, "deleted": {"segments": {"s": 2}}}`, `"s" is in both segments and deleted.segments`},
		{"empty", `{}`, "no flags, flagValues, segments or deleted items; loading it would delete everything under the prefix"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			table := testenv.NewTable(t)
			fill(t, table, "", map[string]*ldmodel.FeatureFlag{"flag-a": &good}, nil)
			before, _ := prefixRows(t, table, "")
			file := writeFile(t, "bad.json", c.content)

			r := cli(t, "load", table, file)
			assert.Equal(t, exitError, r.code)
			assert.Contains(t, r.stderr, "lddynamodb: "+file+": "+c.want)
			assert.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line")
			after, marker := prefixRows(t, table, "")
			assert.Equal(t, before, after)
			assert.True(t, marker)
		})
	}

	r := cli(t, "load", testenv.NewTable(t), filepath.Join(t.TempDir(), "missing.json"))
	assert.Equal(t, exitError, r.code)
	assert.Contains(t, r.stderr, "missing.json: no such file or directory")
}

// The store's Init gets segments before flags, as the SDK gives them.
func TestReadFlagsFileSegmentsFirst(t *testing.T) {
	colls, err := readFlagsFile(writeFile(t, "f.json", `{"flags": {"f": {"key": "f", "version": 1}}, "segments": {"s": {"key": "s", "version": 1}}}`))
	require.NoError(t, err)
	require.Len(t, colls, 2)
	assert.Equal(t, []ldstoretypes.DataKind{ldstoreimpl.Segments(), ldstoreimpl.Features()}, []ldstoretypes.DataKind{colls[0].Kind, colls[1].Kind})
}
