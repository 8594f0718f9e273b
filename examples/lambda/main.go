// Command lambda is an AWS Lambda function that evaluates a LaunchDarkly flag from a DynamoDB
// table in daemon mode: the Relay Proxy (or another SDK) keeps the table up to date, and the
// function only reads it, so it opens no streaming connection that a frozen container would drop.
//
// The SDK client is made once per container, in main, before the first invocation; warm
// invocations reuse it and its 30-second cache, and so make no DynamoDB call for flags read in
// the last 30 seconds. As docs/caching.md advises for Lambda, the store serves the last flags it
// read for up to 10 minutes when DynamoDB fails (StaleIfError), and gives up on a DynamoDB call
// after 2 seconds, well within the function's timeout, so that a hanging DynamoDB gets that stale
// answer instead of timing the function out.
//
// Environment:
//
//	LAUNCHDARKLY_DYNAMODB_TABLE      the table the Relay Proxy writes
//	LAUNCHDARKLY_DYNAMODB_PREFIX     the Relay Proxy's prefix for this environment, if any
//	LAUNCHDARKLY_SDK_KEY             the environment's server-side SDK key, to send analytics
//	                                 events; without it the function only evaluates
//
// The function's role needs dynamodb:GetItem and dynamodb:Query on the table.
//
// Invoke it with {"flag": "my-flag", "context": "user-key"}; it answers with the value and the
// reason, such as {"flag": "my-flag", "value": true, "reason": {"kind": "FALLTHROUGH"}}.
//
// Given a request as its argument, it runs the handler once on this machine and prints the
// answer, instead of waiting for Lambda's invocations (see README.md in this folder):
//
//	go run ./examples/lambda '{"flag": "new-checkout", "context": "user-1"}'
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/launchdarkly/go-sdk-common/v3/ldcontext"
	"github.com/launchdarkly/go-sdk-common/v3/ldreason"
	"github.com/launchdarkly/go-sdk-common/v3/ldvalue"
	ld "github.com/launchdarkly/go-server-sdk/v7"
	"github.com/launchdarkly/go-server-sdk/v7/ldcomponents"

	"github.com/lddynamodb/lddynamodb"
)

const (
	// flushTimeout bounds how long an invocation waits to send its analytics events: Lambda may
	// freeze the container as soon as the handler returns, so events left in the queue could be
	// lost.
	flushTimeout = 2 * time.Second
	// cacheSeconds is the SDK cache's TTL: how late an update that the Relay Proxy wrote may show.
	cacheSeconds = 30
	// staleIfError is how old the flags served while DynamoDB fails may be; past it, flags fall
	// back to their defaults.
	staleIfError = 10 * time.Minute
	// operationTimeout bounds each DynamoDB read, retries included. With flushTimeout it must stay
	// well under the function's timeout (10 s in README.md's deploy command).
	operationTimeout = 2 * time.Second
)

// Request is the invocation's input.
type Request struct {
	Flag    string `json:"flag"`
	Context string `json:"context"`
}

// Response is the flag's value for the context, and why.
type Response struct {
	Flag   string                    `json:"flag"`
	Value  ldvalue.Value             `json:"value"`
	Reason ldreason.EvaluationReason `json:"reason"`
}

// handler evaluates flags with one SDK client for the life of the container.
type handler struct {
	client *ld.LDClient
}

// Handle evaluates the requested flag. A flag that does not exist, or an unreadable table, gives
// a null value and an ERROR reason rather than a failed invocation, as an SDK evaluation does.
func (h handler) Handle(ctx context.Context, req Request) (Response, error) {
	if req.Flag == "" || req.Context == "" {
		return Response{}, errors.New(`the request needs "flag" and "context"`)
	}
	value, detail, _ := h.client.JSONVariationDetailCtx(ctx, req.Flag, ldcontext.New(req.Context), ldvalue.Null())
	h.client.FlushAndWait(flushTimeout)
	return Response{Flag: req.Flag, Value: value, Reason: detail.Reason}, nil
}

// daemonConfig is the SDK configuration for reading flags from the table only, with the store's
// StaleIfError and OperationTimeout set for Lambda. It makes the store's DynamoDB client from the
// function's role, through the default AWS configuration chain.
func daemonConfig(store *lddynamodb.DataStoreBuilder) ld.Config {
	store.StaleIfError(staleIfError).OperationTimeout(operationTimeout)
	return ld.Config{
		DataSource: ldcomponents.ExternalUpdatesOnly(),
		DataStore:  ldcomponents.PersistentDataStore(store).CacheSeconds(cacheSeconds),
	}
}

// invokeOnce runs the handler on one JSON request, as Lambda would, and writes the JSON answer.
func invokeOnce(h handler, request string, out io.Writer) error {
	var req Request
	if err := json.Unmarshal([]byte(request), &req); err != nil {
		return fmt.Errorf(`the request must be JSON such as {"flag": "my-flag", "context": "user-1"}: %w`, err)
	}
	resp, err := h.Handle(context.Background(), req)
	if err != nil {
		return err
	}
	return json.NewEncoder(out).Encode(resp)
}

func main() {
	table := os.Getenv("LAUNCHDARKLY_DYNAMODB_TABLE")
	if table == "" {
		log.Fatal("set LAUNCHDARKLY_DYNAMODB_TABLE (and LAUNCHDARKLY_SDK_KEY to send analytics events)")
	}
	sdkKey := os.Getenv("LAUNCHDARKLY_SDK_KEY")
	config := daemonConfig(lddynamodb.DataStore(table).Prefix(os.Getenv("LAUNCHDARKLY_DYNAMODB_PREFIX")))
	if sdkKey == "" {
		// Events need the environment's key; without one, evaluate only.
		config.Events = ldcomponents.NoEvents()
	}
	// In daemon mode the client is ready at once: it makes no connection to wait for.
	client, err := ld.MakeCustomClient(sdkKey, config, 5*time.Second)
	if err != nil {
		log.Fatalf("creating the LaunchDarkly client: %v", err)
	}
	h := handler{client: client}
	if len(os.Args) > 1 {
		err := invokeOnce(h, os.Args[1], os.Stdout)
		_ = client.Close()
		if err != nil {
			log.Fatal(err)
		}
		return
	}
	lambda.Start(h.Handle)
}
