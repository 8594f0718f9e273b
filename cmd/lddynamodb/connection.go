package main

// Errors of reaching DynamoDB at all: an endpoint that does not answer, one that refuses the
// connection, and a profile that the shared files do not have. The AWS SDK reports these as a
// long chain ("operation error DynamoDB: DescribeTable, exceeded maximum attempts, 3, https
// response error ...: dial tcp ...: connect: connection refused"); the command says which
// endpoint, and what to check, and keeps the chain underneath for errors.As.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/smithy-go/middleware"
)

// defaultCallTimeout bounds one DynamoDB call of the command, its retries included: long enough
// for a Query page or a throttled batch, short enough that an endpoint that never answers is
// reported while the user is still waiting.
const defaultCallTimeout = 10 * time.Second

// endpointError says that a DynamoDB call got no usable connection to the endpoint.
type endpointError struct {
	target  target
	op      string        // the DynamoDB operation, such as "DescribeTable"
	table   string        // the table the command works on
	timeout time.Duration // the bound that ran out, for an endpoint that did not answer
	cause   error         // the AWS SDK's error
}

func (e *endpointError) Error() string {
	where := e.target.String()
	if e.timeout > 0 {
		return fmt.Sprintf("no answer from %s within %s (%s on table %q): check that the endpoint is a DynamoDB and that it is up, or allow more time with --timeout",
			where, e.timeout, e.op, e.table)
	}
	msg := fmt.Sprintf("%s refused the connection (%s on table %q): ", where, e.op, e.table)
	if e.target.local() {
		msg += "is the local DynamoDB running (make dynamodb in a clone of the repository)? "
	}
	msg += "Check --endpoint and AWS_ENDPOINT_URL_DYNAMODB"
	var netErr *net.OpError
	if errors.As(e.cause, &netErr) {
		msg += fmt.Sprintf(" (%v)", netErr)
	}
	return msg
}

func (e *endpointError) Unwrap() error { return e.cause }

// callTimeout is a middleware that bounds each DynamoDB call by the --timeout, and turns a call
// that timed out or was refused a connection into an endpointError.
func (a *app) callTimeout(stack *middleware.Stack) error {
	bound := middleware.InitializeMiddlewareFunc("lddynamodbCallTimeout", func(ctx context.Context,
		in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		callCtx, cancel := context.WithTimeout(ctx, a.timeout)
		defer cancel()
		out, md, err := next.HandleInitialize(callCtx, in)
		switch {
		case err == nil || ctx.Err() != nil:
		case errors.Is(callCtx.Err(), context.DeadlineExceeded):
			err = &endpointError{target: a.target, op: awsmiddleware.GetOperationName(ctx), table: a.table, timeout: a.timeout, cause: err}
		case errors.Is(err, syscall.ECONNREFUSED):
			err = &endpointError{target: a.target, op: awsmiddleware.GetOperationName(ctx), table: a.table, cause: err}
		}
		return out, md, err
	})
	return stack.Initialize.Add(bound, middleware.After)
}

// profileError says that the profile asked for is in neither shared file.
type profileError struct {
	profile string
	source  string // "--profile" or "AWS_PROFILE"
	cause   error
}

func (e *profileError) Error() string {
	configFile, credentialsFile := os.Getenv("AWS_CONFIG_FILE"), os.Getenv("AWS_SHARED_CREDENTIALS_FILE")
	if configFile == "" {
		configFile = config.DefaultSharedConfigFilename()
	}
	if credentialsFile == "" {
		credentialsFile = config.DefaultSharedCredentialsFilename()
	}
	return fmt.Sprintf("no profile %q (from %s) in the shared config file %s (AWS_CONFIG_FILE) or credentials file %s (AWS_SHARED_CREDENTIALS_FILE): check the name, or set the files",
		e.profile, e.source, configFile, credentialsFile)
}

func (e *profileError) Unwrap() error { return e.cause }

// configError explains a failure to load the AWS configuration.
func (a *app) configError(err error) error {
	var missing config.SharedConfigProfileNotExistError
	if errors.As(err, &missing) {
		source := "--profile"
		if a.profile == "" {
			source = "AWS_PROFILE"
		}
		return &profileError{profile: missing.Profile, source: source, cause: err}
	}
	return fmt.Errorf("loading AWS configuration: %w", err)
}
