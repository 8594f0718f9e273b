package lddynamodb_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems"
	"github.com/launchdarkly/go-server-sdk/v7/testhelpers/storetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lddynamodb/lddynamodb"
	"github.com/lddynamodb/lddynamodb/internal/testenv"
)

// clearPrefix deletes every row whose namespace starts with the prefix's namespaces.
func clearPrefix(table string) func(prefix string) error {
	return func(prefix string) error {
		ctx := context.Background()
		client := testenv.Client()
		for _, name := range []string{"features", "segments", "$inited"} {
			namespace := name
			if prefix != "" {
				namespace = prefix + ":" + name
			}
			paginator := dynamodb.NewQueryPaginator(client, &dynamodb.QueryInput{
				TableName:                 aws.String(table),
				KeyConditionExpression:    aws.String("#n = :n"),
				ExpressionAttributeNames:  map[string]string{"#n": "namespace"},
				ExpressionAttributeValues: map[string]types.AttributeValue{":n": &types.AttributeValueMemberS{Value: namespace}},
			})
			for paginator.HasMorePages() {
				page, err := paginator.NextPage(ctx)
				if err != nil {
					return err
				}
				for _, row := range page.Items {
					if _, err := client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
						TableName: aws.String(table),
						Key:       map[string]types.AttributeValue{"namespace": row["namespace"], "key": row["key"]},
					}); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
}

// dataStore is a builder for the store under test in table.
func dataStore(table string) *lddynamodb.DataStoreBuilder {
	return lddynamodb.DataStore(table).ClientConfig(testenv.AWSConfig(), testenv.WithEndpoint)
}

func TestDataStoreConformance(t *testing.T) {
	table := testenv.NewTable(t)
	errorStore := lddynamodb.DataStore(table).
		ClientConfig(testenv.AWSConfig(), func(o *dynamodb.Options) {
			o.BaseEndpoint = aws.String(testenv.ClosedEndpoint(t))
			o.RetryMaxAttempts = 1
		})
	storetest.NewPersistentDataStoreTestSuite(
		func(prefix string) subsystems.ComponentConfigurer[subsystems.PersistentDataStore] {
			return dataStore(table).Prefix(prefix)
		},
		clearPrefix(table),
	).ErrorStoreFactory(errorStore, func(t assert.TestingT, err error) {
		assert.ErrorContains(t, err, table)
	}).ConcurrentModificationHook(lddynamodb.SetBeforeUpsertWrite).Run(t)
}

func TestBuildRejectsEmptyTable(t *testing.T) {
	_, err := lddynamodb.DataStore("").Build(nil)
	require.ErrorContains(t, err, "table name is empty")
}
