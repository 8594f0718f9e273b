package main

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/launchdarkly/go-sdk-common/v3/ldcontext"
	"github.com/launchdarkly/go-sdk-common/v3/ldreason"
	"github.com/launchdarkly/go-sdk-common/v3/ldvalue"
	ld "github.com/launchdarkly/go-server-sdk/v7"
	"github.com/launchdarkly/go-server-sdk/v7/ldcomponents"
	"github.com/launchdarkly/go-server-sdk/v7/testhelpers/ldtestdata"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lddynamodb/lddynamodb"
	"github.com/lddynamodb/lddynamodb/internal/faults"
	"github.com/lddynamodb/lddynamodb/internal/testenv"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m))
}

// TestHandlerReadsFlagsFromTable fills a table as the Relay Proxy would (an SDK client with a
// data source and the DynamoDB store, whose Init writes the flags), then invokes the handler with
// the function's own daemon-mode configuration.
func TestHandlerReadsFlagsFromTable(t *testing.T) {
	table := testenv.NewTable(t)
	td := ldtestdata.DataSource()
	td.Update(td.Flag("new-checkout").BooleanFlag().VariationForUser("user-1", true).FallthroughVariation(false))
	td.Update(td.Flag("banner").ValueForAll(ldvalue.String("spring sale")))
	testenv.SDKClient(t, ld.Config{DataSource: td, DataStore: ldcomponents.PersistentDataStore(testenv.DataStore(table).Prefix("prod"))})

	reader, _ := testenv.SDKClient(t, daemonConfig(testenv.DataStore(table).Prefix("prod")))
	h := handler{client: reader}
	cases := []struct {
		name       string
		req        Request
		wantValue  ldvalue.Value
		wantReason ldreason.EvalReasonKind
	}{
		{"targeted", Request{Flag: "new-checkout", Context: "user-1"}, ldvalue.Bool(true), ldreason.EvalReasonTargetMatch},
		{"fallthrough", Request{Flag: "new-checkout", Context: "user-2"}, ldvalue.Bool(false), ldreason.EvalReasonFallthrough},
		{"string flag", Request{Flag: "banner", Context: "user-2"}, ldvalue.String("spring sale"), ldreason.EvalReasonFallthrough},
		{"unknown flag", Request{Flag: "nope", Context: "user-1"}, ldvalue.Null(), ldreason.EvalReasonError},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := h.Handle(context.Background(), c.req)
			require.NoError(t, err)
			assert.Equal(t, c.req.Flag, resp.Flag)
			assert.Equal(t, c.wantValue, resp.Value)
			assert.Equal(t, c.wantReason, resp.Reason.GetKind())
		})
	}

	// The response is what Lambda sends back as JSON.
	resp, err := h.Handle(context.Background(), Request{Flag: "new-checkout", Context: "user-1"})
	require.NoError(t, err)
	data, err := json.Marshal(resp)
	require.NoError(t, err)
	assert.JSONEq(t, `{"flag":"new-checkout","value":true,"reason":{"kind":"TARGET_MATCH"}}`, string(data))
}

func TestHandlerWithOtherPrefixSeesNoFlags(t *testing.T) {
	table := testenv.NewTable(t)
	td := ldtestdata.DataSource()
	td.Update(td.Flag("new-checkout").BooleanFlag().VariationForAll(true))
	testenv.SDKClient(t, ld.Config{DataSource: td, DataStore: ldcomponents.PersistentDataStore(testenv.DataStore(table).Prefix("prod"))})

	reader, _ := testenv.SDKClient(t, daemonConfig(testenv.DataStore(table).Prefix("staging")))
	h := handler{client: reader}
	resp, err := h.Handle(context.Background(), Request{Flag: "new-checkout", Context: "user-1"})
	require.NoError(t, err)
	assert.Equal(t, ldvalue.Null(), resp.Value)
	assert.Equal(t, ldreason.EvalReasonError, resp.Reason.GetKind())
}

func TestHandlerRejectsIncompleteRequest(t *testing.T) {
	reader, _ := testenv.SDKClient(t, daemonConfig(testenv.DataStore(testenv.NewTable(t)).Prefix("")))
	h := handler{client: reader}
	for _, req := range []Request{{Flag: "f"}, {Context: "c"}} {
		_, err := h.Handle(context.Background(), req)
		assert.ErrorContains(t, err, `needs "flag" and "context"`)
	}
}

// A local run: the request from the command line, the answer as JSON on stdout.
func TestInvokeOnce(t *testing.T) {
	table := testenv.NewTable(t)
	td := ldtestdata.DataSource()
	td.Update(td.Flag("new-checkout").BooleanFlag().VariationForUser("user-1", true).FallthroughVariation(false))
	testenv.SDKClient(t, ld.Config{DataSource: td, DataStore: ldcomponents.PersistentDataStore(testenv.DataStore(table))})
	reader, _ := testenv.SDKClient(t, daemonConfig(testenv.DataStore(table)))
	h := handler{client: reader}

	var out strings.Builder
	require.NoError(t, invokeOnce(h, `{"flag": "new-checkout", "context": "user-1"}`, &out))
	assert.Equal(t, `{"flag":"new-checkout","value":true,"reason":{"kind":"TARGET_MATCH"}}`+"\n", out.String())

	assert.ErrorContains(t, invokeOnce(h, `new-checkout`, &out), `the request must be JSON such as {"flag": "my-flag", "context": "user-1"}`)
	assert.ErrorContains(t, invokeOnce(h, `{"flag": "new-checkout"}`, &out), `needs "flag" and "context"`)
}

// TestHandlerServesLastKnownFlagsWhenDynamoDBHangs makes DynamoDB stop answering once the
// function has read the flags: the next invocation must get the flag as last read (StaleIfError),
// after OperationTimeout rather than after the function's own timeout.
func TestHandlerServesLastKnownFlagsWhenDynamoDBHangs(t *testing.T) {
	table := testenv.NewTable(t)
	td := ldtestdata.DataSource()
	td.Update(td.Flag("new-checkout").BooleanFlag().VariationForUser("user-1", true).FallthroughVariation(false))
	testenv.SDKClient(t, ld.Config{DataSource: td, DataStore: ldcomponents.PersistentDataStore(testenv.DataStore(table).Prefix("prod"))})

	inj := faults.New(1, nil)
	t.Cleanup(inj.CloseIdleConnections)
	reader, _ := testenv.SDKClient(t, daemonConfig(lddynamodb.DataStore(table).Prefix("prod").
		ClientConfig(testenv.AWSConfig(), testenv.WithEndpoint, inj.ClientOption())))
	// All flags are read once (one Query); the SDK caches that list, not each flag, so the
	// invocation below still asks the store for its flag.
	require.True(t, reader.AllFlagsState(ldcontext.New("user-1")).IsValid())
	inj.SetAll(faults.Fault{Latency: time.Hour})

	resp, err := handler{client: reader}.Handle(context.Background(), Request{Flag: "new-checkout", Context: "user-1"})
	require.NoError(t, err)
	assert.Equal(t, ldvalue.Bool(true), resp.Value)
	assert.Equal(t, ldreason.EvalReasonTargetMatch, resp.Reason.GetKind())
	assert.Equal(t, 1, inj.CountByOp()["GetItem"], "the flag's read was sent, and timed out")
}

// TestREADMEDeploysWithinTheseLimits checks the build and deploy commands of README.md: the
// function's timeout leaves room for a DynamoDB read that times out and for sending events, and
// the build writes only under bin/, which git ignores.
func TestREADMEDeploysWithinTheseLimits(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	timeout := regexp.MustCompile(`--timeout (\d+)`).FindSubmatch(readme)
	require.NotNil(t, timeout, "the deploy command sets --timeout")
	seconds, err := strconv.Atoi(string(timeout[1]))
	require.NoError(t, err)
	assert.Greater(t, time.Duration(seconds)*time.Second, operationTimeout+flushTimeout)

	outputs := regexp.MustCompile(`(?:-o |cd |fileb://)(\S+)`).FindAllSubmatch(readme, -1)
	require.NotEmpty(t, outputs)
	for _, out := range outputs {
		assert.True(t, strings.HasPrefix(string(out[1]), "bin/"), "%s writes or reads outside bin/", out[0])
	}
	ignore, err := os.ReadFile("../../.gitignore")
	require.NoError(t, err)
	assert.Contains(t, strings.Split(string(ignore), "\n"), "/bin/")
}
