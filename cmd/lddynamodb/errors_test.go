package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lddynamodb/lddynamodb/internal/testenv"
)

// runRaw runs the command line as given, without the test endpoint and region.
func runRaw(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	t.Logf("lddynamodb %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// unsetEnv removes environment variables for the test and puts them back after it.
func unsetEnv(t *testing.T, names ...string) {
	for _, name := range names {
		if old, ok := os.LookupEnv(name); ok {
			t.Cleanup(func() { os.Setenv(name, old) })
		}
		os.Unsetenv(name)
	}
}

func TestMissingTableSaysWhatToDo(t *testing.T) {
	for _, args := range [][]string{{"verify", "no-such-table"}, {"dump", "no-such-table"}, {"load", "no-such-table", "../../examples/flags.json"}} {
		t.Run(args[0], func(t *testing.T) {
			r := cli(t, args...)
			assert.Equal(t, exitError, r.code)
			assert.Equal(t, `lddynamodb: table "no-such-table" does not exist in region us-east-1, endpoint `+testenv.Endpoint()+
				`: create it with "lddynamodb create-table no-such-table", or check --region and --endpoint`+"\n", r.stderr)
		})
	}
}

func TestErrorsHaveOnePrefix(t *testing.T) {
	table := testenv.NewTable(t)
	r := cli(t, "load", table, "../../examples/flags.json", "--prefix", "p")
	require.Equal(t, exitOK, r.code)
	// A library error that starts with the package name.
	r = cli(t, "create-table", "")
	assert.Equal(t, exitError, r.code)
	assert.Equal(t, "lddynamodb: table name is empty\n", r.stderr)
}

func TestNoCredentialsSaysWhatToSet(t *testing.T) {
	unsetEnv(t, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
	cases := []struct {
		name, endpoint string
		local          bool
	}{
		{"local endpoint", testenv.Endpoint(), true},
		{"AWS", "https://dynamodb.us-east-1.amazonaws.com", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runRaw(t, "--endpoint", c.endpoint, "--region", "us-east-1", "verify", "t")
			assert.Equal(t, exitError, r.code)
			assert.True(t, strings.HasPrefix(r.stderr,
				"lddynamodb: no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, use --profile (or AWS_PROFILE) with a profile that has them, or run with an IAM role"), r.stderr)
			assert.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line")
			assert.Equal(t, c.local, strings.Contains(r.stderr, "is a local endpoint, so any keys work (AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local)"))
		})
	}
}

func TestEndpointWithoutScheme(t *testing.T) {
	r := runRaw(t, "--endpoint", "localhost:8000", "--region", "us-east-1", "verify", "t")
	assert.Equal(t, exitError, r.code)
	assert.Equal(t, `lddynamodb: --endpoint "localhost:8000" is not a URL: add the scheme, as in http://localhost:8000 (or https:// for a remote endpoint)`+"\n", r.stderr)

	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", "127.0.0.1:8000")
	r = runRaw(t, "--region", "us-east-1", "dump", "t")
	assert.Equal(t, exitError, r.code)
	assert.Contains(t, r.stderr, `AWS_ENDPOINT_URL_DYNAMODB or AWS_ENDPOINT_URL "127.0.0.1:8000" is not a URL: add the scheme, as in http://127.0.0.1:8000`)
}

// The environment's endpoint is used, and named in errors.
func TestEndpointFromEnvironment(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", testenv.Endpoint())
	r := runRaw(t, "--region", "us-east-1", "verify", "no-such-table")
	assert.Equal(t, exitError, r.code)
	assert.Contains(t, r.stderr, "endpoint "+testenv.Endpoint())
}

func TestCommandLineMistakes(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"missing table", []string{"verify"}, []string{"lddynamodb: verify: missing TABLE\n", "Usage:\n  lddynamodb verify TABLE [flags]"}},
		{"missing file", []string{"load", "t"}, []string{"lddynamodb: load: missing FILE\n", "Usage:\n  lddynamodb load TABLE FILE [flags]"}},
		{"missing both", []string{"load"}, []string{"lddynamodb: load: missing TABLE and FILE\n"}},
		{"extra argument", []string{"dump", "t", "u"}, []string{`lddynamodb: dump: unexpected argument "u"`, "Usage:"}},
		{"misspelt flag", []string{"verify", "t", "--prefx", "p"}, []string{"lddynamodb: unknown flag: --prefx (did you mean --prefix?)\n", "Usage:\n  lddynamodb verify TABLE [flags]"}},
		{"misspelt global flag", []string{"dump", "t", "--regoin", "x"}, []string{"(did you mean --region?)"}},
		{"misspelt command", []string{"verfy", "t"}, []string{`unknown command "verfy"`, "Did you mean this?\n\tverify"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := cli(t, c.args...)
			assert.Equal(t, exitError, r.code)
			for _, want := range c.want {
				assert.Contains(t, r.stderr, want)
			}
		})
	}
}
