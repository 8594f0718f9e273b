// Package testenv gives tests a real DynamoDB API: the endpoint in DYNAMODB_ENDPOINT if set
// (DynamoDB Local, or AWS), otherwise a dynalite server that Main starts for the test binary.
package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"go.uber.org/goleak"

	"github.com/lddynamodb/lddynamodb"
	"github.com/lddynamodb/lddynamodb/internal/dynalite"
)

// EndpointVariable names the environment variable that points the tests at another server.
const EndpointVariable = "DYNAMODB_ENDPOINT"

var (
	endpoint   string
	tableCount atomic.Int64
)

// Main runs a package's tests against the endpoint (starting dynalite when none is given), with
// the instance metadata service turned off so that nothing reaches for real credentials.
func Main(m *testing.M) int {
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	endpoint = os.Getenv(EndpointVariable)
	if endpoint == "" {
		server, err := dynalite.Start()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer server.Close()
		endpoint = server.Endpoint
	}
	if err := checkLoopback(endpoint); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// checkLoopback refuses endpoints off this machine unless they are AWS's own, so that tests
// never send traffic to another host by accident.
func checkLoopback(endpoint string) error {
	host := strings.TrimPrefix(strings.TrimPrefix(endpoint, "http://"), "https://")
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if onAWS() || host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("testenv: %s=%s is neither loopback nor AWS", EndpointVariable, endpoint)
}

func onAWS() bool {
	return strings.HasSuffix(strings.TrimSuffix(endpoint, "/"), ".amazonaws.com")
}

// Endpoint is the base URL of the DynamoDB API under test.
func Endpoint() string { return endpoint }

// AWSConfig is a configuration with static fake credentials and a fixed region, and no endpoint:
// give it one with WithEndpoint. Against AWS itself it is the default configuration chain, so
// real credentials and region come from the environment.
func AWSConfig() aws.Config {
	if onAWS() {
		cfg, err := config.LoadDefaultConfig(context.Background())
		if err == nil {
			return cfg
		}
	}
	return aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "test-secret", ""),
	}
}

// WithEndpoint points a client at the server under test.
func WithEndpoint(o *dynamodb.Options) { o.BaseEndpoint = aws.String(endpoint) }

// Client returns a client of the server under test.
func Client() *dynamodb.Client {
	return dynamodb.NewFromConfig(AWSConfig(), WithEndpoint)
}

// DataStore is a builder for the data store under test in table, on the server under test.
func DataStore(table string) *lddynamodb.DataStoreBuilder {
	return lddynamodb.DataStore(table).ClientConfig(AWSConfig(), WithEndpoint)
}

// BigSegmentStore is a builder for the big segment store under test in table, on the server
// under test.
func BigSegmentStore(table string) *lddynamodb.BigSegmentStoreBuilder {
	return lddynamodb.BigSegmentStore(table).ClientConfig(AWSConfig(), WithEndpoint)
}

// NewTable creates a table with a name unique to this run, and deletes it when the test ends.
func NewTable(t testing.TB) string {
	t.Helper()
	name := TableName(t)
	if err := lddynamodb.CreateTable(context.Background(), Client(), name); err != nil {
		t.Fatalf("creating table: %v", err)
	}
	return name
}

// TableName is a table name unique to this run, for a test that creates the table itself: the
// table, if there is one by then, is deleted when the test ends.
func TableName(t testing.TB) string {
	name := fmt.Sprintf("lddynamodb-test-%d-%d", time.Now().UnixNano(), tableCount.Add(1))
	t.Cleanup(func() {
		_, _ = Client().DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
	return name
}

// ClosedEndpoint is the URL of a loopback port that nothing listens on.
func ClosedEndpoint(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// NoGoroutinesLeft fails the test if goroutines other than those that opts ignore are still
// running once they have had a minute to end. goleak's own wait is under a second, too short for
// the connection goroutines of a closed transport on a loaded machine; this one returns as soon
// as they are gone.
func NoGoroutinesLeft(t testing.TB, opts ...goleak.Option) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		err := goleak.Find(opts...)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Error(err)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
