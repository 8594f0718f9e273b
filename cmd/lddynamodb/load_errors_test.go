package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldmodel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lddynamodb/lddynamodb/internal/faults"
	"github.com/lddynamodb/lddynamodb/internal/testenv"
)

// faultyEndpoint is the URL of a proxy that sends the command's calls through the injector to
// the local DynamoDB.
func faultyEndpoint(t *testing.T, inj *faults.Injector) string {
	t.Helper()
	target, err := url.Parse(testenv.Endpoint())
	require.NoError(t, err)
	proxy := &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport: inj,
	}
	server := httptest.NewServer(proxy)
	t.Cleanup(func() {
		server.Close()
		inj.CloseIdleConnections()
	})
	return server.URL
}

// An interrupt stops a load that DynamoDB keeps throttling, rather than letting Init retry until
// its timeout, and says what state the table is in.
func TestLoadInterruptStopsThrottledInit(t *testing.T) {
	table := testenv.NewTable(t)
	inj := faults.New(1, nil)
	inj.Set("BatchWriteItem", faults.Fault{ThrottleRate: 1})
	endpoint := faultyEndpoint(t, inj)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--endpoint", endpoint, "--region", "us-east-1", "load", table, "../../examples/flags.json"}, &stdout, &stderr)
	}()
	require.Eventually(t, func() bool { return inj.CountByOp()["BatchWriteItem"] >= 2 }, time.Minute, 10*time.Millisecond,
		"load sends its writes")
	cancel()
	var code int
	select {
	case code = <-done:
	case <-time.After(time.Minute): // a guard against a hang: Init's own timeout is 5 minutes
		t.Fatal("load did not stop after the interrupt")
	}
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	assert.Equal(t, exitError, code)
	assert.Regexp(t, fmt.Sprintf(`^lddynamodb: interrupted: table %q, prefix "" may be partly written \(0 rows written, 0 deleted\); `+
		`its initialized marker is unchanged: load the file again to finish\n$`, table), stderr.String())
	assert.Empty(t, stdout.String())
	_, marker := prefixRows(t, table, "")
	assert.False(t, marker)
}

// The built command stops a throttled load at Ctrl-C (SIGINT), as run does when its context
// ends: main turns the signal into that.
func TestLoadBinaryStopsAtInterrupt(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGINT to send")
	}
	binary := filepath.Join(t.TempDir(), "lddynamodb")
	build := exec.Command("go", "build", "-o", binary, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	table := testenv.NewTable(t)
	inj := faults.New(1, nil)
	inj.Set("BatchWriteItem", faults.Fault{ThrottleRate: 1})
	cmd := exec.Command(binary, "--endpoint", faultyEndpoint(t, inj), "--region", "us-east-1", "load", table, "../../examples/flags.json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	require.Eventually(t, func() bool { return inj.CountByOp()["BatchWriteItem"] >= 2 }, time.Minute, 10*time.Millisecond)
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	select {
	case err = <-done:
	case <-time.After(time.Minute): // a guard against a hang: Init's own timeout is 5 minutes
		_ = cmd.Process.Kill()
		t.Fatal("load did not stop after SIGINT")
	}
	t.Logf("stderr:\n%s", stderr.String())
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, exitError, exit.ExitCode())
	assert.Contains(t, stderr.String(), "may be partly written")
}

// An item that DynamoDB cannot hold is named, with why, as the store logs it and again in the
// summary, and load exits with 1; the other items are loaded.
func TestLoadReportsSkippedItems(t *testing.T) {
	table := testenv.NewTable(t)
	old := boolFlag("old", 1, true)
	fill(t, table, "", map[string]*ldmodel.FeatureFlag{"old": &old}, nil)
	long := strings.Repeat("k", 1100)
	file := writeFile(t, "flags.json", fmt.Sprintf(`{"flags": {"%s": %s, "fine": %s}}`,
		long, flagJSON(t, boolFlag(long, 1, true)), flagJSON(t, boolFlag("fine", 1, true))))

	r := cli(t, "load", table, file)
	assert.Equal(t, exitProblems, r.code)
	why := fmt.Sprintf(`features %q not stored: the key is 1100 bytes, over DynamoDB's sort key limit of 1024`, long)
	assert.Contains(t, r.stderr, why)
	assert.Contains(t, r.stdout, "2 flags and segments and 0 deleted items in the file; 1 rows written, 1 deleted, 0 unchanged, 1 skipped;")
	assert.Contains(t, r.stdout, "\nskipped (1), not in the table now:\n  "+why)
	rows, marker := prefixRows(t, table, "")
	assert.True(t, marker)
	assert.Equal(t, []string{"features fine"}, keys(rows))
}
