package main

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoreimpl"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"

	"github.com/lddynamodb/lddynamodb"
)

// kinds are the data kinds that the SDK keeps in the table, in the order they are reported.
var kinds = []ldstoretypes.DataKind{ldstoreimpl.Features(), ldstoreimpl.Segments()}

// queryNamespace calls fn for every row of a namespace, with strongly consistent Query pages, as
// the store reads them.
func queryNamespace(ctx context.Context, client *dynamodb.Client, table, namespace string, prog *progress,
	fn func(map[string]types.AttributeValue)) error {
	expr, err := expression.NewBuilder().WithKeyCondition(
		expression.Key(lddynamodb.AttrNamespace).Equal(expression.Value(namespace))).Build()
	if err != nil {
		return err
	}
	paginator := dynamodb.NewQueryPaginator(client, &dynamodb.QueryInput{
		TableName:                 aws.String(table),
		ConsistentRead:            aws.Bool(true),
		KeyConditionExpression:    expr.KeyCondition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
	})
	for paginator.HasMorePages() {
		page, err := paginator.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("table %q: query namespace %q: %w", table, namespace, err)
		}
		prog.add(len(page.Items))
		for _, row := range page.Items {
			fn(row)
		}
	}
	return nil
}
