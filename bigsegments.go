package lddynamodb

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/launchdarkly/go-sdk-common/v3/ldtime"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoreimpl"
	"go.opentelemetry.io/otel/metric"
)

// BigSegmentStoreBuilder configures the DynamoDB big segment store, which reads the big segment
// membership that the Relay Proxy writes to a table. Create it with BigSegmentStore and pass it
// to ldcomponents.BigSegments:
//
//	ldcomponents.BigSegments(lddynamodb.BigSegmentStore("my-table").Prefix("my-env"))
//
// Its setters are those of DataStoreBuilder that concern the table and the client, and they mean
// the same. A big segment store and a data store may share one table, one prefix and one
// Metrics. Build checks the options and makes no DynamoDB call.
type BigSegmentStoreBuilder struct {
	clientOptions
}

var _ subsystems.ComponentConfigurer[subsystems.BigSegmentStore] = (*BigSegmentStoreBuilder)(nil)

// BigSegmentStore returns a builder for a big segment store that reads the named DynamoDB table,
// which has the same key schema as the data store's (CreateTable makes one). The store only
// reads: the Relay Proxy fills the table. It needs the IAM action dynamodb:GetItem.
func BigSegmentStore(table string) *BigSegmentStoreBuilder {
	return &BigSegmentStoreBuilder{clientOptions: newClientOptions(table)}
}

// Prefix sets the prefix of the big segment rows' namespaces ("PREFIX:big_segments_user"): the
// prefix that the Relay Proxy uses for the environment. The default is no prefix.
func (b *BigSegmentStoreBuilder) Prefix(prefix string) *BigSegmentStoreBuilder {
	b.prefix = prefix
	return b
}

// DynamoClient sets a ready DynamoDB client instead of one made by Build, as
// DataStoreBuilder.DynamoClient does: it wins over ClientConfig and ClientOptions, and Build warns
// that they are ignored.
func (b *BigSegmentStoreBuilder) DynamoClient(client Client) *BigSegmentStoreBuilder {
	b.setClient(client)
	return b
}

// ClientConfig sets the AWS configuration from which Build makes the DynamoDB client, and adds
// optFns that adjust the client's options, as DataStoreBuilder.ClientConfig does.
func (b *BigSegmentStoreBuilder) ClientConfig(cfg aws.Config, optFns ...func(*dynamodb.Options)) *BigSegmentStoreBuilder {
	b.setClientConfig(cfg, optFns)
	return b
}

// ClientOptions sets DynamoDB client options (a region, an endpoint, a Retryer) and then applies
// optFns, as DataStoreBuilder.ClientOptions does; BaseEndpoint counts, unlike in the official
// store.
func (b *BigSegmentStoreBuilder) ClientOptions(options dynamodb.Options, optFns ...func(*dynamodb.Options)) *BigSegmentStoreBuilder {
	b.addClientOptions(options, optFns)
	return b
}

// OperationTimeout bounds each read, including the AWS SDK's own retries
// (DefaultOperationTimeout).
func (b *BigSegmentStoreBuilder) OperationTimeout(d time.Duration) *BigSegmentStoreBuilder {
	b.timeout = d
	return b
}

// Metrics sets a counter that the store adds its DynamoDB calls to; it may be shared with a data
// store.
func (b *BigSegmentStoreBuilder) Metrics(m *Metrics) *BigSegmentStoreBuilder {
	b.metrics = m
	return b
}

// MeterProvider sets the OpenTelemetry meter provider that the store records the duration of its
// DynamoDB requests and the capacity they consume with, as DataStoreBuilder.MeterProvider does.
func (b *BigSegmentStoreBuilder) MeterProvider(p metric.MeterProvider) *BigSegmentStoreBuilder {
	b.meters = p
	return b
}

// Build is called by the SDK to create the store. It validates the options and makes the client;
// it makes no DynamoDB call.
func (b *BigSegmentStoreBuilder) Build(ctx subsystems.ClientContext) (subsystems.BigSegmentStore, error) {
	if err := b.validate(); err != nil {
		return nil, err
	}
	conn, err := b.connect(context.Background(), loggersOf(ctx, "DynamoDBBigSegmentStore:"))
	if err != nil {
		return nil, err
	}
	return newBigSegmentStore(b, conn), nil
}

// bigSegmentStore is the DynamoDB BigSegmentStore. GetMetadata and GetMembership each make one
// strongly consistent GetItem (one read unit per 4 KB of the row); the SDK caches memberships
// (ContextCacheSize, ContextCacheTime) and polls the metadata (StatusPollInterval).
type bigSegmentStore struct {
	tableClient
}

var _ subsystems.BigSegmentStore = (*bigSegmentStore)(nil)

func newBigSegmentStore(b *BigSegmentStoreBuilder, conn connection) *bigSegmentStore {
	return &bigSegmentStore{tableClient: newTableClient(&b.clientOptions, conn)}
}

// GetMetadata reads when the Relay Proxy last synchronized the big segments. A missing row, or
// one without synchronizedOn (Relay writes its lastVersion cursor first), means "never
// synchronized": a zero LastUpToDate and no error, as the SDK expects.
func (s *bigSegmentStore) GetMetadata() (subsystems.BigSegmentStoreMetadata, error) {
	key := prefixed(s.prefix, bigSegmentsMetadataKey)
	row, err := s.getRow(key, key, bigSegmentsSyncTimeAttr)
	if err != nil {
		return subsystems.BigSegmentStoreMetadata{}, err
	}
	var synced uint64
	switch v := row[bigSegmentsSyncTimeAttr].(type) {
	case nil: // never synchronized
	case *types.AttributeValueMemberN:
		if synced, err = strconv.ParseUint(v.Value, 10, 64); err != nil {
			return subsystems.BigSegmentStoreMetadata{}, s.rowError(key, key,
				"%q is not a count of milliseconds: %q", bigSegmentsSyncTimeAttr, v.Value)
		}
	default:
		return subsystems.BigSegmentStoreMetadata{}, s.rowError(key, key,
			"%q is not a number (type %T)", bigSegmentsSyncTimeAttr, v)
	}
	return subsystems.BigSegmentStoreMetadata{LastUpToDate: ldtime.UnixMillisecondTime(synced)}, nil
}

// GetMembership reads the segment references that include or exclude the context whose hash the
// SDK passes. A missing row, or missing sets, mean no membership; a reference in both sets counts
// as included, as the SDK's membership type defines.
func (s *bigSegmentStore) GetMembership(contextHash string) (subsystems.BigSegmentMembership, error) {
	namespace := prefixed(s.prefix, bigSegmentsUserKey)
	row, err := s.getRow(namespace, contextHash, bigSegmentsIncludedAttr, bigSegmentsExcludedAttr)
	if err != nil {
		return nil, err
	}
	included, err := s.stringSet(row, namespace, contextHash, bigSegmentsIncludedAttr)
	if err != nil {
		return nil, err
	}
	excluded, err := s.stringSet(row, namespace, contextHash, bigSegmentsExcludedAttr)
	if err != nil {
		return nil, err
	}
	return ldstoreimpl.NewBigSegmentMembershipFromSegmentRefs(included, excluded), nil
}

// getRow reads the named attributes of one row with a consistent read, so that the SDK sees
// Relay's latest write. A missing row reads as an empty one.
func (s *bigSegmentStore) getRow(namespace, key string, attrs ...string) (map[string]types.AttributeValue, error) {
	ctx, cancel := s.operation()
	defer cancel()
	var proj expression.ProjectionBuilder
	for _, attr := range attrs {
		proj = proj.AddNames(expression.Name(attr))
	}
	expr, err := expression.NewBuilder().WithProjection(proj).Build()
	if err != nil {
		return nil, s.errorf(err, namespace, key)
	}
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:                &s.table,
		Key:                      rowKey(namespace, key),
		ConsistentRead:           aws.Bool(true),
		ProjectionExpression:     expr.Projection(),
		ExpressionAttributeNames: expr.Names(),
	}, s.callOpts...)
	if err != nil {
		return nil, s.errorf(err, namespace, key)
	}
	return out.Item, nil
}

// stringSet reads a string set attribute; Relay removes a set when its last reference goes, so
// an absent one is empty.
func (s *bigSegmentStore) stringSet(row map[string]types.AttributeValue, namespace, key, attr string) ([]string, error) {
	switch v := row[attr].(type) {
	case nil:
		return nil, nil
	case *types.AttributeValueMemberSS:
		return v.Value, nil
	default:
		return nil, s.rowError(namespace, key, "%q is not a string set (type %T)", attr, v)
	}
}

func (s *bigSegmentStore) errorf(err error, namespace, key string) error {
	return fmt.Errorf("lddynamodb: table %q: get big segments row namespace=%q key=%q: %w", s.table, namespace, key, withCredentialsCause(err))
}

// rowError reports a row that Relay would not have written; the RowError names the row.
func (s *bigSegmentStore) rowError(namespace, key, format string, args ...any) error {
	return fmt.Errorf("lddynamodb: table %q: %w", s.table, &RowError{Namespace: namespace, Key: key, Reason: fmt.Sprintf(format, args...)})
}
