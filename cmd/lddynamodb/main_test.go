package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/launchdarkly/go-sdk-common/v3/ldvalue"
	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldbuilders"
	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldmodel"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoreimpl"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lddynamodb/lddynamodb"
	"github.com/lddynamodb/lddynamodb/internal/testenv"
	"github.com/lddynamodb/lddynamodb/internal/testenv/av"
)

func TestMain(m *testing.M) {
	// The commands load the AWS configuration as a user's shell would: give them fake static
	// credentials, and keep any real profile, region or config file of the machine out.
	os.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	os.Setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
	for _, name := range []string{"AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"} {
		os.Unsetenv(name)
	}
	os.Setenv("AWS_CONFIG_FILE", filepath.Join(os.TempDir(), "lddynamodb-test-no-aws-config"))
	os.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(os.TempDir(), "lddynamodb-test-no-aws-credentials"))
	os.Exit(testenv.Main(m))
}

type result struct {
	code   int
	stdout string
	stderr string
}

// cli runs the command line against the local DynamoDB.
func cli(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args = append([]string{"--endpoint", testenv.Endpoint(), "--region", "us-east-1"}, args...)
	code := run(context.Background(), args, &stdout, &stderr)
	t.Logf("lddynamodb %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func boolFlag(key string, version int, on bool) ldmodel.FeatureFlag {
	return ldbuilders.NewFlagBuilder(key).Version(version).On(on).
		Variations(ldvalue.Bool(false), ldvalue.Bool(true)).OffVariation(0).FallthroughVariation(1).Build()
}

// segmentFlag is true for members of the segment, false for everyone else.
func segmentFlag(key string, version int, segmentKey string) ldmodel.FeatureFlag {
	return ldbuilders.NewFlagBuilder(key).Version(version).On(true).
		Variations(ldvalue.Bool(false), ldvalue.Bool(true)).OffVariation(0).FallthroughVariation(0).
		AddRule(ldbuilders.NewRuleBuilder().ID("r0").Variation(1).
			Clauses(ldbuilders.SegmentMatchClause(segmentKey))).
		Build()
}

func segment(key string, version int, included ...string) ldmodel.Segment {
	return ldbuilders.NewSegmentBuilder(key).Version(version).Included(included...).Build()
}

// fill writes flags and segments to the table under the prefix through the store's own Init, as
// an SDK or the Relay Proxy would. A nil item is a deleted one.
func fill(t *testing.T, table, prefix string, flags map[string]*ldmodel.FeatureFlag, segments map[string]*ldmodel.Segment) {
	t.Helper()
	features, segs := ldstoreimpl.Features(), ldstoreimpl.Segments()
	collect := func(kind ldstoretypes.DataKind, items map[string]ldstoretypes.ItemDescriptor) ldstoretypes.SerializedCollection {
		coll := ldstoretypes.SerializedCollection{Kind: kind}
		for key, item := range items {
			coll.Items = append(coll.Items, ldstoretypes.KeyedSerializedItemDescriptor{
				Key:  key,
				Item: ldstoretypes.SerializedItemDescriptor{Version: item.Version, Deleted: item.Item == nil, SerializedItem: kind.Serialize(item)},
			})
		}
		return coll
	}
	flagItems := map[string]ldstoretypes.ItemDescriptor{}
	for key, f := range flags {
		if f == nil {
			flagItems[key] = ldstoretypes.ItemDescriptor{Version: 9, Item: nil}
			continue
		}
		flagItems[key] = ldstoretypes.ItemDescriptor{Version: f.Version, Item: f}
	}
	segItems := map[string]ldstoretypes.ItemDescriptor{}
	for key, s := range segments {
		if s == nil {
			segItems[key] = ldstoretypes.ItemDescriptor{Version: 9, Item: nil}
			continue
		}
		segItems[key] = ldstoretypes.ItemDescriptor{Version: s.Version, Item: s}
	}
	store, _ := testenv.Build(t, testenv.DataStore(table).Prefix(prefix))
	require.NoError(t, store.Init([]ldstoretypes.SerializedCollection{
		collect(features, flagItems), collect(segs, segItems),
	}))
}

func flagJSON(t *testing.T, f ldmodel.FeatureFlag) string {
	data, err := json.Marshal(f)
	require.NoError(t, err)
	return string(data)
}

func TestCreateTableCommand(t *testing.T) {
	table := testenv.TableName(t)

	r := cli(t, "create-table", table, "--read-capacity", "2", "--write-capacity", "3")
	require.Equal(t, exitOK, r.code)
	assert.Contains(t, r.stdout, fmt.Sprintf("created table %q; it is ACTIVE", table))
	out, err := testenv.Client().DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	require.NoError(t, err)
	assert.Equal(t, int64(3), aws.ToInt64(out.Table.ProvisionedThroughput.WriteCapacityUnits))
	require.NoError(t, lddynamodb.CheckTable(context.Background(), testenv.Client(), table))

	r = cli(t, "create-table", table)
	assert.Equal(t, exitOK, r.code, "an identical table exists: not an error")
	assert.Contains(t, r.stdout, fmt.Sprintf("table %q already existed with partition key", table))
}

func TestCreateTableCommandErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no table", []string{"create-table"}, "create-table: missing TABLE\n\nUsage:\n  lddynamodb create-table TABLE [flags]"},
		{"one capacity", []string{"create-table", "t", "--read-capacity", "5"}, "give both --read-capacity and --write-capacity"},
		{"negative capacity", []string{"create-table", "t", "--read-capacity", "-1", "--write-capacity", "-1"}, "give both"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := cli(t, c.args...)
			assert.Equal(t, exitError, r.code)
			assert.Contains(t, r.stderr, c.want)
		})
	}
}

func TestNoRegionIsAnError(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"--endpoint", testenv.Endpoint(), "verify", "t"}, &stdout, &stderr)
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr.String(), "no AWS region")
}

func TestHelp(t *testing.T) {
	r := cli(t, "--help")
	require.Equal(t, exitOK, r.code)
	for _, want := range []string{"create-table", "verify", "dump", "load", "--endpoint", "--region", "--profile", "dynamodb:Scan", "Exit status"} {
		assert.Contains(t, r.stdout, want)
	}
}

func TestVerifyEmptyTableFails(t *testing.T) {
	table := testenv.NewTable(t)
	r := cli(t, "verify", table)
	require.Equal(t, exitProblems, r.code)
	assert.Contains(t, r.stdout, `initialized marker "$inited": absent (no SDK or Relay Proxy has written this prefix yet)`)
	assert.Contains(t, r.stdout, "features: 0 live, 0 deleted")
	assert.Contains(t, r.stdout, "scanned 0 rows")
	assert.Contains(t, r.stdout, `nothing under prefix "": no initialized marker "$inited" and no flags or segments; the table is empty: write flags with "lddynamodb load"`)
	assert.NotContains(t, r.stdout, "\nok\n")
	assert.Empty(t, r.stderr, "no progress line when stderr is not a terminal")

	r = cli(t, "verify", table, "--no-scan")
	require.Equal(t, exitProblems, r.code)
	assert.Contains(t, r.stdout, "run without --no-scan to look for rows under other prefixes")
}

// A prefix with nothing in it fails, and names the prefixes that do have rows.
func TestVerifyWrongPrefixSuggestsOthers(t *testing.T) {
	table := testenv.NewTable(t)
	a := boolFlag("flag-a", 1, true)
	fill(t, table, "production", map[string]*ldmodel.FeatureFlag{"flag-a": &a}, nil)

	r := cli(t, "verify", table)
	require.Equal(t, exitProblems, r.code)
	assert.Contains(t, r.stdout, "the table has rows under other prefixes: did you mean --prefix production?")

	fill(t, table, "", map[string]*ldmodel.FeatureFlag{"flag-a": &a}, nil)
	r = cli(t, "verify", table, "--prefix", "prod")
	require.Equal(t, exitProblems, r.code)
	assert.Contains(t, r.stdout, `nothing under prefix "prod"`)
	assert.Contains(t, r.stdout, "did you mean to leave out --prefix, or --prefix production?")

	assert.Equal(t, exitOK, cli(t, "verify", table, "--prefix", "production").code)
}

func TestVerifyFilledTable(t *testing.T) {
	table := testenv.NewTable(t)
	a, b := boolFlag("flag-a", 3, true), segmentFlag("flag-b", 5, "seg-1")
	seg := segment("seg-1", 2, "user-1")
	fill(t, table, "prod", map[string]*ldmodel.FeatureFlag{"flag-a": &a, "flag-b": &b, "gone": nil},
		map[string]*ldmodel.Segment{"seg-1": &seg})
	fill(t, table, "", map[string]*ldmodel.FeatureFlag{"flag-a": &a}, nil)
	fill(t, table, "staging", map[string]*ldmodel.FeatureFlag{"flag-a": &a}, nil)
	testenv.PutRow(t, table, map[string]types.AttributeValue{"namespace": av.S("prod:big_segments_metadata"), "key": av.S("prod:big_segments_metadata"), "synchronizedOn": av.N("1700000000000")})
	testenv.PutRow(t, table, map[string]types.AttributeValue{"namespace": av.S("prod:big_segments_user"), "key": av.S("hash1"),
		"included": &types.AttributeValueMemberSS{Value: []string{"seg.g1"}}})

	r := cli(t, "verify", table, "--prefix", "prod")
	require.Equal(t, exitOK, r.code)
	assert.Contains(t, r.stdout, `prefix: "prod"`)
	assert.Contains(t, r.stdout, `initialized marker "prod:$inited": present`)
	assert.Contains(t, r.stdout, "features: 2 live, 1 deleted")
	assert.Contains(t, r.stdout, "segments: 1 live, 0 deleted")
	assert.Contains(t, r.stdout, "big segments: metadata row present, 1 membership rows")
	assert.Contains(t, r.stdout, `rows of other prefixes: 4 (prefixes "", "staging")`)
	assert.Contains(t, r.stdout, "scanned 11 rows")
	assert.NotContains(t, r.stdout, "problems")
	assert.Contains(t, r.stdout, "\nok\n")

	r = cli(t, "verify", table, "--no-scan")
	require.Equal(t, exitOK, r.code)
	assert.Contains(t, r.stdout, "features: 1 live, 0 deleted")
	assert.NotContains(t, r.stdout, "scanned")
}

func TestVerifyReportsBadRows(t *testing.T) {
	good := boolFlag("good", 1, true)
	cases := []struct {
		name   string
		row    map[string]types.AttributeValue
		noScan bool
		want   string
	}{
		{
			name: "JSON the SDK cannot parse",
			row:  map[string]types.AttributeValue{"namespace": av.S("features"), "key": av.S("broken"), "version": av.N("1"), "item": av.S(`{"key":"broken",`)},
			want: `features "broken" (namespace "features"): undecodable: the SDK cannot parse its JSON`,
		},
		{
			name: "version stored as a string",
			row:  map[string]types.AttributeValue{"namespace": av.S("features"), "key": av.S("strver"), "version": av.S("1"), "item": av.S(`{"key":"strver","version":1}`)},
			want: `features "strver" (namespace "features"): undecodable: row namespace="features" key="strver" cannot be decoded: "version" is not a number`,
		},
		{
			name: "JSON of another key",
			row:  map[string]types.AttributeValue{"namespace": av.S("features"), "key": av.S("alias"), "version": av.N("1"), "item": av.S(flagJSON(t, good))},
			want: `features "alias" (namespace "features"): its JSON has key "good"`,
		},
		{
			name: "JSON of another version",
			row:  map[string]types.AttributeValue{"namespace": av.S("segments"), "key": av.S("seg"), "version": av.N("4"), "item": av.S(`{"key":"seg","version":3}`)},
			want: `segments "seg" (namespace "segments"): the row has version 4 but its JSON has version 3`,
		},
		{
			name: "unknown namespace",
			row:  map[string]types.AttributeValue{"namespace": av.S("sessions"), "key": av.S("abc")},
			want: `unknown row namespace="sessions" key="abc"`,
		},
		{
			name: "odd marker",
			row:  map[string]types.AttributeValue{"namespace": av.S("$inited"), "key": av.S("yes")},
			want: `unknown row namespace="$inited" key="yes"`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			table := testenv.NewTable(t)
			fill(t, table, "", map[string]*ldmodel.FeatureFlag{"good": &good}, nil)
			testenv.PutRow(t, table, c.row)

			r := cli(t, "verify", table)
			assert.Equal(t, exitProblems, r.code)
			assert.Contains(t, r.stdout, "problems (1):")
			assert.Contains(t, r.stdout, c.want)
			assert.NotContains(t, r.stdout, "\nok\n")
		})
	}
}

func TestVerifyReportsMissingMarker(t *testing.T) {
	table := testenv.NewTable(t)
	testenv.PutRow(t, table, map[string]types.AttributeValue{"namespace": av.S("features"), "key": av.S("f"), "version": av.N("1"), "item": av.S(flagJSON(t, boolFlag("f", 1, true)))})

	r := cli(t, "verify", table, "--no-scan")
	assert.Equal(t, exitProblems, r.code)
	assert.Contains(t, r.stdout, `no initialized marker "$inited" but 1 flag and segment rows`)
}

func TestVerifyWarnsNearItemLimit(t *testing.T) {
	table := testenv.NewTable(t)
	big := ldbuilders.NewFlagBuilder("big").Version(1).
		Variations(ldvalue.String(strings.Repeat("x", nearLimitBytes))).OffVariation(0).Build()
	fill(t, table, "", map[string]*ldmodel.FeatureFlag{"big": &big}, nil)

	r := cli(t, "verify", table)
	assert.Equal(t, exitOK, r.code)
	assert.Contains(t, r.stdout, "warnings (1):")
	assert.Contains(t, r.stdout, `features "big" (namespace "features"): `)
	assert.Contains(t, r.stdout, "near DynamoDB's item limit")
}

// verifySizedRow is a flag row whose size by lddynamodb.RowSize is exactly size bytes.
func verifySizedRow(size int) map[string]types.AttributeValue {
	row := map[string]types.AttributeValue{"namespace": av.S("features"), "key": av.S("sized"), "version": av.N("1"),
		"item": av.S(`{"key":"sized","version":1,"padding":""}`)}
	padding := strings.Repeat("x", size-lddynamodb.RowSize(row))
	row["item"] = av.S(`{"key":"sized","version":1,"padding":"` + padding + `"}`)
	return row
}

// TestVerifyChecksRowSizes pins verify's size findings on both sides of each boundary: a warning
// over 90 % of DynamoDB's item limit, a problem over the limit itself.
func TestVerifyChecksRowSizes(t *testing.T) {
	cases := []struct {
		name             string
		size             int
		warning, problem bool
	}{
		{"at the warning threshold", nearLimitBytes, false, false},
		{"just over the warning threshold", nearLimitBytes + 1, true, false},
		{"at the item limit", lddynamodb.MaxItemBytes, true, false},
		{"just over the item limit", lddynamodb.MaxItemBytes + 1, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			row := verifySizedRow(c.size)
			require.Equal(t, c.size, lddynamodb.RowSize(row))
			deleted, _, problems, warnings := checkItemRow(ldstoreimpl.Features(), row, nil)
			assert.False(t, deleted)
			if c.warning {
				require.Len(t, warnings, 1)
				assert.Contains(t, warnings[0], fmt.Sprintf(`features "sized" (namespace "features"): %d bytes, near DynamoDB's item limit`, c.size))
			} else {
				assert.Empty(t, warnings)
			}
			if c.problem {
				require.Len(t, problems, 1)
				assert.Contains(t, problems[0], fmt.Sprintf(`features "sized" (namespace "features"): oversize: %d bytes, over DynamoDB's item limit of %d`,
					c.size, lddynamodb.MaxItemBytes))
			} else {
				assert.Empty(t, problems)
			}
		})
	}
}

// TestVerifyListsAtMostALimit fills a table with more unknown rows than verify lists: it lists
// the first maxListed, says how many more there are, and still counts them all.
func TestVerifyListsAtMostALimit(t *testing.T) {
	for _, n := range []int{maxListed, maxListed + 7} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			table := testenv.NewTable(t)
			rows := make([]map[string]types.AttributeValue, n)
			for i := range rows {
				rows[i] = map[string]types.AttributeValue{"namespace": av.S("sessions"), "key": av.S(fmt.Sprintf("s%04d", i))}
			}
			// With the marker, so that the unknown rows are the only problems.
			testenv.PutRows(t, table, append(rows, map[string]types.AttributeValue{"namespace": av.S("$inited"), "key": av.S("$inited")}))

			r := cli(t, "verify", table)
			assert.Equal(t, exitProblems, r.code)
			assert.Contains(t, r.stdout, fmt.Sprintf("problems (%d):", n))
			assert.Equal(t, min(n, maxListed), strings.Count(r.stdout, `unknown row namespace="sessions"`), "rows listed")
			if n > maxListed {
				assert.Contains(t, r.stdout, fmt.Sprintf("  ... and %d more\n", n-maxListed))
			} else {
				assert.NotContains(t, r.stdout, "... and")
			}
		})
	}
}

func TestVerifyWarnsOfKeysAtTheLimit(t *testing.T) {
	table := testenv.NewTable(t)
	at := strings.Repeat("k", lddynamodb.MaxSortKeyBytes)
	below := at[1:]
	flagAt, flagBelow := boolFlag(at, 1, true), boolFlag(below, 1, true)
	fill(t, table, "", map[string]*ldmodel.FeatureFlag{at: &flagAt, below: &flagBelow}, nil)

	r := cli(t, "verify", table)
	assert.Equal(t, exitOK, r.code)
	assert.Contains(t, r.stdout, "warnings (1):")
	assert.Contains(t, r.stdout, "its sort key is 1024 bytes, at DynamoDB's limit of 1024")
}

func TestClassify(t *testing.T) {
	cases := []struct {
		name, prefix, namespace, key string
		want                         rowClass
		wantOther                    string
	}{
		{"own flag", "", "features", "f", rowOwnData, ""},
		{"own prefixed segment", "p", "p:segments", "s", rowOwnData, ""},
		{"own marker", "p", "p:$inited", "p:$inited", rowOwnMarker, ""},
		{"marker with another key", "", "$inited", "x", rowUnknown, ""},
		{"big segment metadata", "", "big_segments_metadata", "big_segments_metadata", rowBigSegmentMetadata, ""},
		{"big segment metadata with another key", "", "big_segments_metadata", "x", rowUnknown, ""},
		{"big segment user", "p", "p:big_segments_user", "hash", rowBigSegmentUser, ""},
		{"own parts", "", "features:parts", "f/1/id/0000", rowOwnParts, ""},
		{"own prefixed segment parts", "p", "p:segments:parts", "s/1/id/0000", rowOwnParts, ""},
		{"another prefix's parts", "p", "q:features:parts", "f/1/id/0000", rowOtherPrefix, "q"},
		{"no prefix's parts seen from a prefix", "p", "segments:parts", "s/1/id/0000", rowOtherPrefix, ""},
		{"parts of an unknown name", "", "sessions:parts", "x", rowUnknown, ""},
		{"another prefix", "", "q:features", "f", rowOtherPrefix, "q"},
		{"no prefix seen from a prefix", "p", "features", "f", rowOtherPrefix, ""},
		{"prefix with a colon", "p", "a:b:$inited", "a:b:$inited", rowOtherPrefix, "a:b"},
		{"unknown namespace", "", "sessions", "x", rowUnknown, ""},
		{"unknown name under own prefix", "p", "p:sessions", "x", rowUnknown, ""},
		{"empty prefix part", "", ":features", "x", rowUnknown, ""},
		{"other separator", "p", "p/features", "x", rowUnknown, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, other := classify(c.prefix, c.namespace, c.key)
			assert.Equal(t, c.want, got)
			assert.Equal(t, c.wantOther, other)
		})
	}
}

func TestProgress(t *testing.T) {
	var buf bytes.Buffer
	p := &progress{w: &buf}
	p.add(3)
	p.add(1000)
	p.done()
	assert.Equal(t, "\rread 3 rows\rread 1003 rows\r\x1b[K", buf.String())

	var off *progress
	off.add(5)
	off.done()

	quiet := &app{quiet: true, stderr: os.Stderr}
	assert.Nil(t, quiet.progress())
	piped := &app{stderr: &buf}
	assert.Nil(t, piped.progress())
}
