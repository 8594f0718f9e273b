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

// queryNamespace calls fn for every row of a namespace, or for those whose sort key begins with
// keyPrefix if it is not empty, with strongly consistent Query pages, as the store reads them.
// prog, if not nil, counts the rows read.
func queryNamespace(ctx context.Context, client *dynamodb.Client, table, namespace, keyPrefix string, prog *progress,
	fn func(map[string]types.AttributeValue)) error {
	keyCondition := expression.Key(lddynamodb.AttrNamespace).Equal(expression.Value(namespace))
	what := fmt.Sprintf("namespace %q", namespace)
	if keyPrefix != "" {
		keyCondition = keyCondition.And(expression.Key(lddynamodb.AttrKey).BeginsWith(keyPrefix))
		what += fmt.Sprintf(" keys %q...", keyPrefix)
	}
	expr, err := expression.NewBuilder().WithKeyCondition(keyCondition).Build()
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
			return fmt.Errorf("table %q: query %s: %w", table, what, err)
		}
		prog.add(len(page.Items))
		for _, row := range page.Items {
			fn(row)
		}
	}
	return nil
}
