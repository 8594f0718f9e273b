package lddynamodb_test

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/launchdarkly/go-sdk-common/v3/ldlog"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoreimpl"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/lddynamodb/lddynamodb"
	"github.com/lddynamodb/lddynamodb/internal/testenv"
)

// buildNoAWSEnvironment hides every source of AWS settings that the default configuration chain
// reads, so that a test sees a machine where nothing is configured (and never reaches the
// instance metadata service).
func buildNoAWSEnvironment(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	for _, name := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_ENDPOINT_URL",
		"AWS_ENDPOINT_URL_DYNAMODB"} {
		t.Setenv(name, "")
	}
	t.Setenv("AWS_CONFIG_FILE", missing)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", missing)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// TestBuildErrorsSayWhatToFix gives Build configurations that cannot work: each fails at Build
// with an error that names the table and says what to set.
func TestBuildErrorsSayWhatToFix(t *testing.T) {
	defer testenv.NoGoroutinesLeft(t, goleak.IgnoreCurrent())
	tests := []struct {
		name    string
		env     func(t *testing.T)
		builder func() *lddynamodb.DataStoreBuilder
		wantErr []string
	}{
		{"empty table", nil, func() *lddynamodb.DataStoreBuilder { return testenv.DataStore("") }, []string{"table name is empty"}},
		{"no region in the config", nil, func() *lddynamodb.DataStoreBuilder {
			cfg := testenv.AWSConfig()
			cfg.Region = ""
			return lddynamodb.DataStore("my-table").ClientConfig(cfg, testenv.WithEndpoint)
		}, []string{`"my-table"`, "no AWS region", "AWS_REGION"}},
		{"no region anywhere", buildNoAWSEnvironment, func() *lddynamodb.DataStoreBuilder {
			return lddynamodb.DataStore("my-table").ClientOptions(dynamodb.Options{}, testenv.WithEndpoint)
		}, []string{`"my-table"`, "no AWS region", "AWS_REGION"}},
		{"no credentials in the config", nil, func() *lddynamodb.DataStoreBuilder {
			cfg := testenv.AWSConfig()
			cfg.Credentials = nil
			return lddynamodb.DataStore("my-table").ClientConfig(cfg, testenv.WithEndpoint)
		}, []string{`"my-table"`, "no AWS credentials"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != nil {
				tt.env(t)
			}
			ctx, _ := testenv.Context()
			store, err := tt.builder().InitTimeout(5 * time.Second).Build(ctx)
			assert.Nil(t, store)
			require.Error(t, err)
			for _, want := range tt.wantErr {
				assert.ErrorContains(t, err, want)
			}
		})
	}
}

// buildFirstUseErrors runs each store operation on a store that builds but cannot work, and
// returns the errors of those that return one; the others must report false.
func buildFirstUseErrors(t *testing.T, store subsystems.PersistentDataStore) map[string]error {
	t.Helper()
	errs := map[string]error{}
	errs["Init"] = store.Init([]ldstoretypes.SerializedCollection{
		{Kind: ldstoreimpl.Features(), Items: []ldstoretypes.KeyedSerializedItemDescriptor{testenv.Flag("my-flag", 1, 0)}}})
	_, errs["Get"] = store.Get(ldstoreimpl.Features(), "my-flag")
	_, errs["GetAll"] = store.GetAll(ldstoreimpl.Features())
	_, errs["Upsert"] = store.Upsert(ldstoreimpl.Features(), "my-flag", testenv.Flag("my-flag", 1, 0).Item)
	assert.False(t, store.IsInitialized(), "IsInitialized")
	assert.False(t, store.IsStoreAvailable(), "IsStoreAvailable")
	return errs
}

// TestFirstUseErrorsSayWhatToFix builds stores that Build cannot check without a DynamoDB call:
// every operation then fails with an error that names the table, the key where there is one,
// and the cause to fix; IsInitialized logs its error.
func TestFirstUseErrorsSayWhatToFix(t *testing.T) {
	wrongKeys := testenv.TableName(t)
	_, err := testenv.Client().CreateTable(context.Background(), &dynamodb.CreateTableInput{
		TableName:            aws.String(wrongKeys),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	require.NoError(t, err)
	closed := testenv.ClosedEndpoint(t)
	missing := testenv.TableName(t) // unique, and never created, whatever the endpoint holds
	defer testenv.NoGoroutinesLeft(t, goleak.IgnoreCurrent())
	tests := []struct {
		name    string
		env     func(t *testing.T)
		table   string
		builder func() *lddynamodb.DataStoreBuilder
		wantErr string // a regular expression, as the log is searched with one
	}{
		{"unreachable endpoint", nil, "my-table", func() *lddynamodb.DataStoreBuilder {
			return lddynamodb.DataStore("my-table").ClientConfig(testenv.AWSConfig(), func(o *dynamodb.Options) {
				o.BaseEndpoint = aws.String(closed)
				o.RetryMaxAttempts = 2
			})
		}, "connection refused"},
		{"no credentials anywhere", func(t *testing.T) {
			buildNoAWSEnvironment(t)
			t.Setenv("AWS_REGION", "us-east-1")
		}, "my-table", func() *lddynamodb.DataStoreBuilder {
			return lddynamodb.DataStore("my-table").ClientOptions(dynamodb.Options{}, testenv.WithEndpoint)
		}, "no usable AWS credentials .set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"},
		{"missing table", nil, missing, func() *lddynamodb.DataStoreBuilder { return testenv.DataStore(missing) }, "ResourceNotFoundException"},
		{"table with other keys", nil, wrongKeys, func() *lddynamodb.DataStoreBuilder { return testenv.DataStore(wrongKeys) }, "ValidationException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != nil {
				tt.env(t)
			}
			ctx, mockLog := testenv.Context()
			store, err := tt.builder().InitTimeout(5 * time.Second).Build(ctx)
			require.NoError(t, err, "Build makes no DynamoDB call, so it cannot know yet")
			defer store.Close()
			errs := buildFirstUseErrors(t, store)
			t.Logf("Get says: %v", errs["Get"])
			for op, err := range errs {
				require.Error(t, err, op)
				assert.Regexp(t, tt.wantErr, err.Error(), op)
				assert.ErrorContains(t, err, strconv.Quote(tt.table), op)
				if op == "Get" || op == "Upsert" {
					assert.ErrorContains(t, err, `"my-flag"`, op)
				}
				var credErr *lddynamodb.CredentialsError
				if assert.Equal(t, tt.name == "no credentials anywhere", errors.As(err, &credErr), op) && credErr != nil {
					assert.NotContains(t, err.Error(), "get identity", "%s: the AWS SDK's wrapping is cut", op)
					assert.NotContains(t, err.Error(), "attempts", "%s: credential failures are not retried", op)
				}
			}
			assert.True(t, mockLog.HasMessageMatch(ldlog.Warn, tt.wantErr), "IsInitialized logs why it cannot tell")
		})
	}
}

// TestBuildTakesRegionAndCredentialsFromClientOptions sets the region and credentials only in
// ClientOptions, on a machine with no AWS settings: the client that Build makes has them, so
// Build must accept them and the store must work.
func TestBuildTakesRegionAndCredentialsFromClientOptions(t *testing.T) {
	table := testenv.NewTable(t)
	fromOptions := func(o *dynamodb.Options) {
		o.Region = "us-east-1"
		o.Credentials = testenv.AWSConfig().Credentials
	}
	tests := []struct {
		name    string
		builder *lddynamodb.DataStoreBuilder
	}{
		{"default chain", lddynamodb.DataStore(table).ClientOptions(dynamodb.Options{}, fromOptions, testenv.WithEndpoint)},
		{"ClientConfig without them", lddynamodb.DataStore(table).ClientConfig(aws.Config{}, fromOptions, testenv.WithEndpoint)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buildNoAWSEnvironment(t)
			store, _ := testenv.Build(t, tt.builder)
			require.NoError(t, store.Init(testenv.AllData([]ldstoretypes.KeyedSerializedItemDescriptor{testenv.Flag("f", 1, 0)}, nil)))
			got, err := store.Get(ldstoreimpl.Features(), "f")
			require.NoError(t, err)
			assert.Equal(t, 1, got.Version)
		})
	}
}
