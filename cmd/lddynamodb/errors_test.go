package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
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

// silentEndpoint is the URL of a loopback listener that accepts connections and never answers.
func silentEndpoint(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + l.Addr().String()
}

// connectionCommands are a command line of each command that calls DynamoDB, and its first call.
var connectionCommands = []struct {
	args []string
	op   string
}{
	{[]string{"create-table", "t"}, "CreateTable"},
	{[]string{"verify", "t"}, "DescribeTable"},
	{[]string{"dump", "t"}, "Query"},
	{[]string{"load", "t", "../../examples/flags.json"}, "Query"},
}

// Every command gives up on an endpoint that never answers after --timeout, and names it.
func TestEndpointThatNeverAnswers(t *testing.T) {
	endpoint := silentEndpoint(t)
	for _, c := range connectionCommands {
		t.Run(c.args[0], func(t *testing.T) {
			r := runRaw(t, append([]string{"--endpoint", endpoint, "--region", "us-east-1", "--timeout", "500ms"}, c.args...)...)
			assert.Equal(t, exitError, r.code)
			assert.Equal(t, "lddynamodb: no answer from region us-east-1, endpoint "+endpoint+" within 500ms ("+c.op+` on table "t"): `+
				"check that the endpoint is a DynamoDB and that it is up, or allow more time with --timeout\n", r.stderr)
		})
	}
	r := runRaw(t, "--endpoint", endpoint, "--region", "us-east-1", "--timeout", "0s", "verify", "t")
	assert.Equal(t, exitError, r.code)
	assert.Equal(t, "lddynamodb: --timeout 0s: give a positive duration, such as 10s\n", r.stderr)
}

// A refused connection names the endpoint and what to check, in one line without the AWS SDK's
// chain of wrappers.
func TestConnectionRefusedSaysWhatToCheck(t *testing.T) {
	endpoint := testenv.ClosedEndpoint(t)
	addr := strings.TrimPrefix(endpoint, "http://")
	for _, c := range connectionCommands {
		t.Run(c.args[0], func(t *testing.T) {
			r := runRaw(t, append([]string{"--endpoint", endpoint, "--region", "us-east-1"}, c.args...)...)
			assert.Equal(t, exitError, r.code)
			assert.Equal(t, "lddynamodb: region us-east-1, endpoint "+endpoint+" refused the connection ("+c.op+` on table "t"): `+
				"is the local DynamoDB running (make dynamodb in a clone of the repository)? Check --endpoint and AWS_ENDPOINT_URL_DYNAMODB "+
				"(dial tcp "+addr+": connect: connection refused)\n", r.stderr)
		})
	}
}

func TestUnknownProfileSaysWhereProfilesAre(t *testing.T) {
	configFile := filepath.Join(t.TempDir(), "config")
	require.NoError(t, os.WriteFile(configFile, []byte("[profile dev]\nregion = us-east-1\n"), 0o600))
	t.Setenv("AWS_CONFIG_FILE", configFile)
	want := func(source string) string {
		return `lddynamodb: no profile "prod" (from ` + source + `) in the shared config file ` + configFile + ` (AWS_CONFIG_FILE) or credentials file ` +
			os.Getenv("AWS_SHARED_CREDENTIALS_FILE") + " (AWS_SHARED_CREDENTIALS_FILE): check the name, or set the files\n"
	}
	r := cli(t, "--profile", "prod", "verify", "t")
	assert.Equal(t, exitError, r.code)
	assert.Equal(t, want("--profile"), r.stderr)

	t.Setenv("AWS_PROFILE", "prod")
	r = cli(t, "verify", "t")
	assert.Equal(t, exitError, r.code)
	assert.Equal(t, want("AWS_PROFILE"), r.stderr)
}
