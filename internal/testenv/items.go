package testenv

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/launchdarkly/go-sdk-common/v3/ldlog"
	"github.com/launchdarkly/go-sdk-common/v3/ldlogtest"
	"github.com/launchdarkly/go-sdk-common/v3/ldvalue"
	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldbuilders"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoreimpl"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
)

// Flag is a flag, on, serving true, as the SDK serializes it. padding adds that many bytes
// to its JSON (in a variation's value), to make items of a chosen size.
func Flag(key string, version int, padding int) ldstoretypes.KeyedSerializedItemDescriptor {
	variations := []ldvalue.Value{ldvalue.Bool(true), ldvalue.Bool(false)}
	if padding > 0 {
		variations = append(variations, ldvalue.String(strings.Repeat("x", padding)))
	}
	flag := ldbuilders.NewFlagBuilder(key).Version(version).On(true).
		Variations(variations...).FallthroughVariation(0).OffVariation(1).Build()
	item := ldstoretypes.ItemDescriptor{Version: version, Item: &flag}
	return ldstoretypes.KeyedSerializedItemDescriptor{Key: key, Item: ldstoretypes.SerializedItemDescriptor{
		Version: version, SerializedItem: ldstoreimpl.Features().Serialize(item)}}
}

// Segment is an empty segment as the SDK serializes it.
func Segment(key string, version int) ldstoretypes.KeyedSerializedItemDescriptor {
	segment := ldbuilders.NewSegmentBuilder(key).Version(version).Build()
	item := ldstoretypes.ItemDescriptor{Version: version, Item: &segment}
	return ldstoretypes.KeyedSerializedItemDescriptor{Key: key, Item: ldstoretypes.SerializedItemDescriptor{
		Version: version, SerializedItem: ldstoreimpl.Segments().Serialize(item)}}
}

// AllData is what Init takes: the given flags and segments.
func AllData(flags, segments []ldstoretypes.KeyedSerializedItemDescriptor) []ldstoretypes.SerializedCollection {
	return []ldstoretypes.SerializedCollection{
		{Kind: ldstoreimpl.Features(), Items: flags},
		{Kind: ldstoreimpl.Segments(), Items: segments},
	}
}

// Context is a client context for Build that logs to a mock log the test can inspect.
func Context() (subsystems.ClientContext, *ldlogtest.MockLog) {
	mockLog := ldlogtest.NewMockLog()
	return ContextWithLoggers(mockLog.Loggers), mockLog
}

// ContextWithLoggers is what the SDK passes to Build, logging to loggers: for a test that sets
// the loggers up itself (a level, or one mock log shared by several stores).
func ContextWithLoggers(loggers ldlog.Loggers) subsystems.ClientContext {
	return subsystems.BasicClientContext{Logging: subsystems.LoggingConfiguration{Loggers: loggers}}
}

// Build builds a store, a data store or a big segment store, with a Context, and closes it when
// the test ends.
func Build[T io.Closer](t testing.TB, builder subsystems.ComponentConfigurer[T]) (T, *ldlogtest.MockLog) {
	t.Helper()
	ctx, mockLog := Context()
	store, err := builder.Build(ctx)
	if err != nil {
		t.Fatalf("building store: %v", err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return store, mockLog
}

// PutRow writes a row as it is, bypassing the store, as another program would.
func PutRow(t testing.TB, table string, row map[string]types.AttributeValue) {
	t.Helper()
	if err := WriteRow(table, row); err != nil {
		t.Fatalf("putting row: %v", err)
	}
}

// WriteRow is PutRow for callers that have no testing.TB to fail, such as the SDK's test
// suites: it returns the error.
func WriteRow(table string, row map[string]types.AttributeValue) error {
	_, err := Client().PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: row})
	return err
}

// Rows reads every row of a namespace, bypassing the store, with a strongly consistent Query.
func Rows(t testing.TB, table, namespace string) []map[string]types.AttributeValue {
	t.Helper()
	rows, err := ReadRows(table, namespace)
	if err != nil {
		t.Fatalf("querying %s: %v", namespace, err)
	}
	return rows
}

// ClearNamespaces deletes every row of the given namespaces, bypassing the store.
func ClearNamespaces(table string, namespaces ...string) error {
	for _, namespace := range namespaces {
		rows, err := ReadRows(table, namespace)
		if err != nil {
			return err
		}
		for _, row := range rows {
			if _, err := Client().DeleteItem(context.Background(), &dynamodb.DeleteItemInput{
				TableName: aws.String(table),
				Key:       map[string]types.AttributeValue{"namespace": row["namespace"], "key": row["key"]},
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

// ReadRows is Rows for callers that have no testing.TB to fail, such as other goroutines: it
// returns the error.
func ReadRows(table, namespace string) ([]map[string]types.AttributeValue, error) {
	paginator := dynamodb.NewQueryPaginator(Client(), &dynamodb.QueryInput{
		TableName:                 aws.String(table),
		ConsistentRead:            aws.Bool(true),
		KeyConditionExpression:    aws.String("#ns = :ns"),
		ExpressionAttributeNames:  map[string]string{"#ns": "namespace"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":ns": &types.AttributeValueMemberS{Value: namespace}},
	})
	var rows []map[string]types.AttributeValue
	for paginator.HasMorePages() {
		page, err := paginator.NextPage(context.Background())
		if err != nil {
			return nil, err
		}
		rows = append(rows, page.Items...)
	}
	return rows, nil
}
