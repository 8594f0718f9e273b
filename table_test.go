package lddynamodb_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lddynamodb/lddynamodb"
	"github.com/lddynamodb/lddynamodb/internal/testenv"
)

func describe(t *testing.T, table string) *types.TableDescription {
	out, err := testenv.Client().DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	require.NoError(t, err)
	return out.Table
}

func TestCreateTable(t *testing.T) {
	cases := []struct {
		name        string
		opts        []lddynamodb.TableOption
		wantBilling types.BillingMode
		wantRead    int64
		wantWrite   int64
	}{
		{name: "on demand by default", wantBilling: types.BillingModePayPerRequest},
		{name: "provisioned", opts: []lddynamodb.TableOption{lddynamodb.ProvisionedThroughput(3, 4)},
			wantBilling: types.BillingModeProvisioned, wantRead: 3, wantWrite: 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			table := testenv.TableName(t)
			require.NoError(t, lddynamodb.CreateTable(context.Background(), testenv.Client(), table, c.opts...))

			desc := describe(t, table)
			assert.Equal(t, types.TableStatusActive, desc.TableStatus)
			assert.Equal(t, []types.KeySchemaElement{
				{AttributeName: aws.String("namespace"), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String("key"), KeyType: types.KeyTypeRange},
			}, desc.KeySchema)
			assert.ElementsMatch(t, []types.AttributeDefinition{
				{AttributeName: aws.String("namespace"), AttributeType: types.ScalarAttributeTypeS},
				{AttributeName: aws.String("key"), AttributeType: types.ScalarAttributeTypeS},
			}, desc.AttributeDefinitions)
			require.NotNil(t, desc.ProvisionedThroughput)
			assert.Equal(t, c.wantRead, aws.ToInt64(desc.ProvisionedThroughput.ReadCapacityUnits))
			assert.Equal(t, c.wantWrite, aws.ToInt64(desc.ProvisionedThroughput.WriteCapacityUnits))
			// DynamoDB may leave the summary out for a table that was always provisioned (the
			// throughput above tells those apart); an on-demand table always has one.
			if c.wantBilling == types.BillingModePayPerRequest {
				require.NotNil(t, desc.BillingModeSummary, "billing mode summary of an on-demand table")
			}
			if desc.BillingModeSummary != nil {
				assert.Equal(t, c.wantBilling, desc.BillingModeSummary.BillingMode)
			}
		})
	}
}

func TestCreateTableTwiceSucceeds(t *testing.T) {
	ctx := context.Background()
	table := testenv.TableName(t)
	require.NoError(t, lddynamodb.CreateTable(ctx, testenv.Client(), table))

	// A second deployment with other options must not fail or change the table.
	require.NoError(t, lddynamodb.CreateTable(ctx, testenv.Client(), table, lddynamodb.ProvisionedThroughput(7, 7)))
	assert.NotEqual(t, int64(7), aws.ToInt64(describe(t, table).ProvisionedThroughput.ReadCapacityUnits))
}

func TestCreateTableRejectsOtherKeys(t *testing.T) {
	cases := []struct {
		name  string
		attrs []types.AttributeDefinition
		keys  []types.KeySchemaElement
	}{
		{
			name:  "partition key only",
			attrs: []types.AttributeDefinition{{AttributeName: aws.String("namespace"), AttributeType: types.ScalarAttributeTypeS}},
			keys:  []types.KeySchemaElement{{AttributeName: aws.String("namespace"), KeyType: types.KeyTypeHash}},
		},
		{
			name: "other names",
			attrs: []types.AttributeDefinition{
				{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS},
				{AttributeName: aws.String("sk"), AttributeType: types.ScalarAttributeTypeS},
			},
			keys: []types.KeySchemaElement{
				{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String("sk"), KeyType: types.KeyTypeRange},
			},
		},
		{
			name: "sort key a number",
			attrs: []types.AttributeDefinition{
				{AttributeName: aws.String("namespace"), AttributeType: types.ScalarAttributeTypeS},
				{AttributeName: aws.String("key"), AttributeType: types.ScalarAttributeTypeN},
			},
			keys: []types.KeySchemaElement{
				{AttributeName: aws.String("namespace"), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String("key"), KeyType: types.KeyTypeRange},
			},
		},
		{
			name: "keys swapped",
			attrs: []types.AttributeDefinition{
				{AttributeName: aws.String("namespace"), AttributeType: types.ScalarAttributeTypeS},
				{AttributeName: aws.String("key"), AttributeType: types.ScalarAttributeTypeS},
			},
			keys: []types.KeySchemaElement{
				{AttributeName: aws.String("key"), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String("namespace"), KeyType: types.KeyTypeRange},
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			table := testenv.TableName(t)
			_, err := testenv.Client().CreateTable(ctx, &dynamodb.CreateTableInput{
				TableName:            aws.String(table),
				AttributeDefinitions: c.attrs,
				KeySchema:            c.keys,
				BillingMode:          types.BillingModePayPerRequest,
			})
			require.NoError(t, err)

			err = lddynamodb.CreateTable(ctx, testenv.Client(), table)
			require.Error(t, err)
			assert.Contains(t, err.Error(), table)
			assert.Contains(t, err.Error(), "exists with other keys")
			assert.Error(t, lddynamodb.CheckTable(ctx, testenv.Client(), table))
		})
	}
}

func TestCheckTableMissing(t *testing.T) {
	table := testenv.TableName(t) // unique, and never created
	err := lddynamodb.CheckTable(context.Background(), testenv.Client(), table)
	var notFound *types.ResourceNotFoundException
	assert.True(t, errors.As(err, &notFound), "want a ResourceNotFoundException, got %v", err)
	assert.ErrorContains(t, err, table)
}

func TestCreateTableRejectsEmptyName(t *testing.T) {
	assert.ErrorContains(t, lddynamodb.CreateTable(context.Background(), testenv.Client(), ""), "table name is empty")
}
