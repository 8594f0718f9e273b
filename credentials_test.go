package lddynamodb_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go"
	"github.com/launchdarkly/go-sdk-common/v3/ldlog"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lddynamodb/lddynamodb"
	"github.com/lddynamodb/lddynamodb/internal/faults"
	"github.com/lddynamodb/lddynamodb/internal/testenv"
)

// credsSwitch gives the test's static credentials until fail is set, and then those of
// failing: credentials that worked when the store started and stop working later, as when a
// role's endpoint goes away or a session expires.
type credsSwitch struct {
	fail     atomic.Bool
	failing  aws.CredentialsProvider
	attempts atomic.Int64 // calls to failing
}

func (p *credsSwitch) Retrieve(ctx context.Context) (aws.Credentials, error) {
	if p.fail.Load() {
		p.attempts.Add(1)
		return p.failing.Retrieve(ctx)
	}
	return testenv.AWSConfig().Credentials.Retrieve(ctx)
}

type credsFunc func() (aws.Credentials, error)

func (f credsFunc) Retrieve(context.Context) (aws.Credentials, error) { return f() }

// TestStaleIfErrorNeverMasksCredentialFailures warms a store's stale layer, then makes getting
// credentials fail (or DynamoDB refuse them): the reads must return the error, not stale data,
// whether Build made the client or it was given.
func TestStaleIfErrorNeverMasksCredentialFailures(t *testing.T) {
	failures := []struct {
		name     string
		provider func(t *testing.T) aws.CredentialsProvider // nil: credentials work, DynamoDB refuses them
		expired  bool
		timeout  time.Duration // OperationTimeout, if not the default
	}{
		{"credential endpoint unreachable", func(t *testing.T) aws.CredentialsProvider {
			return endpointcreds.New(testenv.ClosedEndpoint(t) + "/credentials")
		}, false, 0},
		{"credential endpoint times out", func(*testing.T) aws.CredentialsProvider {
			return credsFunc(func() (aws.Credentials, error) {
				return aws.Credentials{}, fmt.Errorf("failed to load credentials: %w", context.DeadlineExceeded)
			})
		}, false, 0},
		// The operation's deadline passes while the credentials are fetched: a deadline, which
		// for a DynamoDB call would be transient, but here no DynamoDB call was made.
		{"credential endpoint hangs", func(t *testing.T) aws.CredentialsProvider {
			return endpointcreds.New(hangingEndpoint(t) + "/credentials")
		}, false, 500 * time.Millisecond},
		{"credential endpoint hangs behind the AWS SDK's credentials cache", func(t *testing.T) aws.CredentialsProvider {
			return aws.NewCredentialsCache(endpointcreds.New(hangingEndpoint(t) + "/credentials"))
		}, false, 500 * time.Millisecond},
		{"no role", func(*testing.T) aws.CredentialsProvider {
			return credsFunc(func() (aws.Credentials, error) { return aws.Credentials{}, errors.New("no EC2 IMDS role found") })
		}, false, 0},
		{"refresh of expired credentials fails", func(*testing.T) aws.CredentialsProvider {
			return credsFunc(func() (aws.Credentials, error) {
				return aws.Credentials{}, errors.New("the SSO session has expired or is invalid")
			})
		}, false, 0},
		{"expired token refused by DynamoDB", nil, true, 0},
	}
	for _, given := range []bool{false, true} {
		for _, tt := range failures {
			name := tt.name + " (client made by Build)"
			if given {
				name = tt.name + " (client given)"
			}
			t.Run(name, func(t *testing.T) {
				table := testenv.NewTable(t)
				creds := &credsSwitch{}
				if tt.provider != nil {
					creds.failing = tt.provider(t)
				}
				inj := faults.New(1, nil)
				t.Cleanup(inj.CloseIdleConnections)
				cfg := testenv.AWSConfig()
				cfg.Credentials = creds
				metrics := &lddynamodb.Metrics{}
				builder := lddynamodb.DataStore(table).Metrics(metrics).StaleIfError(time.Hour)
				if given {
					builder = builder.DynamoClient(dynamodb.NewFromConfig(cfg, testenv.WithEndpoint, inj.ClientOption()))
				} else {
					builder = builder.ClientConfig(cfg, testenv.WithEndpoint, inj.ClientOption())
				}
				if tt.timeout > 0 {
					builder = builder.OperationTimeout(tt.timeout)
				}
				store, mockLog := testenv.Build(t, builder)
				f := testenv.Flag("f", 1, 0)
				require.NoError(t, store.Init(testenv.AllData([]ldstoretypes.KeyedSerializedItemDescriptor{f}, nil)))
				got, err := store.Get(features, "f")
				require.NoError(t, err)
				require.Equal(t, f.Item, got, "the stale layer knows f")

				if tt.expired {
					inj.Script("", faults.ExpiredToken, faults.ExpiredToken, faults.ExpiredToken)
				} else {
					creds.fail.Store(true)
				}
				_, getErr := store.Get(features, "f")
				if !tt.expired {
					assert.Equal(t, int64(1), creds.attempts.Load(), "a credential failure is not retried")
				}
				_, allErr := store.GetAll(features)
				for op, err := range map[string]error{"Get": getErr, "GetAll": allErr} {
					require.Error(t, err, "%s must not be answered from stale data", op)
					assert.ErrorContains(t, err, table, op)
					var credErr *lddynamodb.CredentialsError
					var apiErr smithy.APIError
					if tt.expired {
						require.ErrorAs(t, err, &apiErr, op)
						assert.Equal(t, "ExpiredTokenException", apiErr.ErrorCode(), op)
					} else {
						require.ErrorAs(t, err, &credErr, op)
						assert.ErrorContains(t, err, "AWS_ACCESS_KEY_ID", op)
					}
					if tt.timeout > 0 {
						assert.ErrorIs(t, err, context.DeadlineExceeded, "%s says that the fetch ran out of time", op)
					}
				}
				assert.Zero(t, metrics.Snapshot().StaleReads)
				assert.False(t, mockLog.HasMessageMatch(ldlog.Warn, "serving data"), "no outage warning")
			})
		}
	}
}

// hangingEndpoint is the URL of a loopback HTTP server that accepts requests and never answers
// them, until the client gives up or the test ends.
func hangingEndpoint(t *testing.T) string {
	t.Helper()
	done := make(chan struct{})
	server := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	t.Cleanup(func() {
		close(done)
		server.Close()
	})
	return server.URL
}
