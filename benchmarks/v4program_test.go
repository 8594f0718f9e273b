package benchmarks

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/launchdarkly/go-sdk-common/v3/ldvalue"
	official "github.com/launchdarkly/go-server-sdk-dynamodb/v4"
	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldbuilders"
	ld "github.com/launchdarkly/go-server-sdk/v7"
	"github.com/launchdarkly/go-server-sdk/v7/ldcomponents"
	"github.com/launchdarkly/go-server-sdk/v7/testhelpers/ldtestdata"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lddynamodb/lddynamodb/internal/testenv"
)

const (
	programDir     = "testdata/v4program"
	ourImport      = `"github.com/lddynamodb/lddynamodb"`
	officialImport = `lddynamodb "github.com/launchdarkly/go-server-sdk-dynamodb/v4"`
)

// The flags that the official store writes for the program to read: one served to everyone, one
// through a segment the official store also writes, one through a big segment whose membership
// is in rows as the Relay Proxy writes them.
var programFlags = []string{"everyone", "in-segment", "in-big-segment"}

// TestV4ProgramReadsWhatTheOfficialStoreWrote builds testdata/v4program, a program written for the
// official store with only its import path changed, and the same program with the official
// import path put back. Both read, in daemon mode, flags that the official store wrote, with each
// way the official store offers to configure the client. They read the same, except where the
// official store drops BaseEndpoint from ClientOptions: its client then goes where the
// environment says (here a closed port) and finds no flags, while lddynamodb's reads them.
func TestV4ProgramReadsWhatTheOfficialStoreWrote(t *testing.T) {
	dir := t.TempDir()
	ours := buildProgram(t, dir, "ours", "")
	theirs := buildProgram(t, dir, "official", officialImport)

	table := testenv.NewTable(t)
	writeWithOfficialStore(t, table, "prod")

	closed := testenv.ClosedEndpoint(t)
	everything := map[string]any{"everyone": true, "in-segment": true, "in-big-segment": true}
	nothing := map[string]any{"everyone": nil, "in-segment": nil, "in-big-segment": nil} // the defaults
	tests := []struct {
		client string
		// env is the program's AWS environment; where the client is configured in code, it points
		// DynamoDB at a closed port, so that whatever the code does not set fails.
		env          []string
		wantOurs     map[string]any
		wantOfficial map[string]any
	}{
		{"default", []string{"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=AKIDLOCAL", "AWS_SECRET_ACCESS_KEY=local-secret",
			"AWS_ENDPOINT_URL_DYNAMODB=" + testenv.Endpoint()}, everything, everything},
		{"config", []string{"AWS_ENDPOINT_URL_DYNAMODB=" + closed}, everything, everything},
		{"options", []string{"AWS_ENDPOINT_URL_DYNAMODB=" + closed}, everything, nothing},
		{"client", []string{"AWS_ENDPOINT_URL_DYNAMODB=" + closed}, everything, everything},
	}
	for _, tt := range tests {
		t.Run(tt.client, func(t *testing.T) {
			assert.Equal(t, tt.wantOurs, runProgram(t, ours, table, "prod", tt.client, tt.env), "lddynamodb")
			assert.Equal(t, tt.wantOfficial, runProgram(t, theirs, table, "prod", tt.client, tt.env), "official store")
		})
	}
	t.Run("other context", func(t *testing.T) {
		// The segments decide: a context in neither gets the fallthrough, false.
		got := runProgram(t, ours, table, "prod", "options", []string{"AWS_ENDPOINT_URL_DYNAMODB=" + closed}, "-context", "user-2")
		assert.Equal(t, map[string]any{"everyone": true, "in-segment": false, "in-big-segment": false}, got)
	})
}

// buildProgram builds testdata/v4program, with importLine in place of lddynamodb's import when it
// is not empty (through the go command's -overlay, which leaves the file on disk as it is).
func buildProgram(t *testing.T, dir, name, importLine string) string {
	t.Helper()
	args := []string{"build", "-o", filepath.Join(dir, name)}
	if importLine != "" {
		source, err := os.ReadFile(filepath.Join(programDir, "main.go"))
		require.NoError(t, err)
		require.Equal(t, 1, strings.Count(string(source), ourImport), "the program imports lddynamodb once")
		changed := filepath.Join(dir, name+".go")
		require.NoError(t, os.WriteFile(changed, []byte(strings.Replace(string(source), ourImport, importLine, 1)), 0o600))
		original, err := filepath.Abs(filepath.Join(programDir, "main.go"))
		require.NoError(t, err)
		overlay, err := json.Marshal(map[string]map[string]string{"Replace": {original: changed}})
		require.NoError(t, err)
		overlayFile := filepath.Join(dir, name+".overlay.json")
		require.NoError(t, os.WriteFile(overlayFile, overlay, 0o600))
		args = append(args, "-overlay", overlayFile)
	}
	out, err := exec.Command(goCommand(), append(args, "./"+programDir)...).CombinedOutput()
	require.NoError(t, err, "building the program (%s): %s", name, out)
	return filepath.Join(dir, name)
}

// goCommand is the go command of the toolchain running the test.
func goCommand() string {
	if gobin := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(gobin) {
		return gobin
	}
	return "go"
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// runProgram runs a build of the program with only env for AWS settings (no shared files, no
// instance metadata), and returns the flag values it printed (nil for the default).
func runProgram(t *testing.T, program, table, prefix, client string, env []string, args ...string) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, program, append([]string{"-table", table, "-prefix", prefix, "-client", client,
		"-endpoint", testenv.Endpoint(), "-flags", strings.Join(programFlags, ",")}, args...)...)
	missing := filepath.Join(t.TempDir(), "missing")
	cmd.Env = append(withoutAWS(os.Environ()), "HOME="+t.TempDir(), "AWS_CONFIG_FILE="+missing,
		"AWS_SHARED_CREDENTIALS_FILE="+missing, "AWS_EC2_METADATA_DISABLED=true")
	cmd.Env = append(cmd.Env, env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "%s -client %s: %s", filepath.Base(program), client, stderr.String())
	var values map[string]any
	require.NoError(t, json.Unmarshal(out, &values), "%s", out)
	return values
}

func withoutAWS(env []string) []string {
	var kept []string
	for _, v := range env {
		if !strings.HasPrefix(v, "AWS_") {
			kept = append(kept, v)
		}
	}
	return kept
}

// writeWithOfficialStore has an SDK client persist the program's flags and segments through the
// official store, and puts big segment rows as the Relay Proxy writes them: user-1 is in both
// segments, and big segments were synchronized just now.
func writeWithOfficialStore(t *testing.T, table, prefix string) {
	t.Helper()
	data := ldtestdata.DataSource()
	data.UsePreconfiguredSegment(ldbuilders.NewSegmentBuilder("beta").Version(1).Included("user-1").Build())
	data.UsePreconfiguredSegment(ldbuilders.NewSegmentBuilder("big").Version(1).Unbounded(true).Generation(1).Build())
	data.Update(data.Flag("everyone").VariationForAll(true))
	for key, segment := range map[string]string{"in-segment": "beta", "in-big-segment": "big"} {
		data.UsePreconfiguredFlag(ldbuilders.NewFlagBuilder(key).Version(1).On(true).
			Variations(ldvalue.Bool(false), ldvalue.Bool(true)).OffVariation(0).FallthroughVariation(0).
			AddRule(ldbuilders.NewRuleBuilder().ID("segment").Variation(1).Clauses(ldbuilders.SegmentMatchClause(segment))).
			Build())
	}
	writer, err := ld.MakeCustomClient("writer-sdk-key", ld.Config{
		DataSource: data,
		DataStore: ldcomponents.PersistentDataStore(
			official.DataStore(table).Prefix(prefix).ClientConfig(testenv.AWSConfig(), testenv.WithEndpoint)),
		Events:  ldcomponents.NoEvents(),
		Logging: ldcomponents.NoLogging(),
	}, 10*time.Second)
	require.NoError(t, err)
	require.NoError(t, writer.Close())

	hash := sha256.Sum256([]byte("user-1"))
	metadata := prefix + ":big_segments_metadata"
	testenv.PutRows(t, table, []map[string]types.AttributeValue{
		{"namespace": &types.AttributeValueMemberS{Value: metadata}, "key": &types.AttributeValueMemberS{Value: metadata},
			"synchronizedOn": &types.AttributeValueMemberN{Value: strconv.FormatInt(time.Now().UnixMilli(), 10)}},
		{"namespace": &types.AttributeValueMemberS{Value: prefix + ":big_segments_user"},
			"key":      &types.AttributeValueMemberS{Value: base64.StdEncoding.EncodeToString(hash[:])},
			"included": &types.AttributeValueMemberSS{Value: []string{"big.g1"}}},
	})
}
