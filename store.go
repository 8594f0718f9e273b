package lddynamodb

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/launchdarkly/go-sdk-common/v3/ldlog"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
)

// store is the DynamoDB PersistentDataStore.
//
// DynamoDB calls per operation (n items, p = Query pages of 1 MB):
//   - Init: one Query per kind (p pages) for the stored keys, versions and items, and one of its
//     parts namespace; for each kind, ceil(w/25) BatchWriteItem for the w rows that changed,
//     then as many for the rows that disappeared (a few more when items wait for the items they
//     use, batches reach 16 MB, or DynamoDB throttles); one PutItem for the marker.
//   - Get: one GetItem. GetAll: p Query pages. None for a key or namespace that no row can
//     have, which is not found. Upsert: one conditional PutItem.
//   - Large items in parts add one Query (pages as needed) to Get, one Query of the kind's parts
//     namespace to GetAll when one is present, and the BatchWriteItem calls of the parts written
//     and deleted to Upsert; Init reads each kind's parts namespace too (parts.go).
//   - IsInitialized and IsStoreAvailable: one GetItem of the marker. The first Get or GetAll
//     that finds nothing also reads the marker, once per store, unless IsInitialized has.
type store struct {
	tableClient
	consistentReads  bool
	largeItems       bool
	batchConcurrency int
	initTimeout      time.Duration
	stale            *staleCache
	loggers          ldlog.Loggers
	warnedNoMarker   atomic.Bool // the store has logged that the marker is missing
	markerKnown      atomic.Bool // the marker was read once, by IsInitialized or a read that found nothing

	// beforeUpsertWrite, if set by a test, runs in Upsert just before the write.
	beforeUpsertWrite func()
}

var _ subsystems.PersistentDataStore = (*store)(nil)

func newStore(b *DataStoreBuilder, conn connection, loggers ldlog.Loggers) *store {
	tc := newTableClient(&b.clientOptions, conn)
	return &store{
		tableClient:      tc,
		consistentReads:  b.consistentReads,
		largeItems:       b.largeItems,
		batchConcurrency: b.batchConcurrency,
		initTimeout:      b.initTimeout,
		stale:            newStaleCache(b.staleMaxAge, loggers, tc.rec),
		loggers:          loggers,
	}
}

// tableClient is what both stores hold: a metered client for one table and prefix, the options
// passed on every call, and the bound and cancellation of each operation.
type tableClient struct {
	client    Client
	callOpts  []func(*dynamodb.Options)
	transport *http.Transport // owned by the store, or nil
	table     string
	prefix    string
	timeout   time.Duration
	rec       *recorder // nil unless the builder was given a Metrics or a MeterProvider

	// ctx is cancelled by Close, so that no operation outlives the store.
	ctx    context.Context
	cancel context.CancelFunc
}

func newTableClient(o *clientOptions, conn connection) tableClient {
	client := conn.client
	rec := newRecorder(o.metrics, conn.telemetry)
	if rec != nil {
		client = meteredClient{inner: client, rec: rec}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return tableClient{
		client:    client,
		callOpts:  o.callOptions(conn.telemetry),
		transport: conn.transport,
		table:     o.table,
		prefix:    o.prefix,
		timeout:   o.timeout,
		rec:       rec,
		ctx:       ctx,
		cancel:    cancel,
	}
}

// operation is the context of one operation other than Init: bounded by OperationTimeout, and
// ended by Close.
func (c *tableClient) operation() (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.ctx, c.timeout)
}

// Close stops every operation in progress and releases the connections of a client that Build
// made. A client given with DynamoClient is left open for its owner.
func (c *tableClient) Close() error {
	c.cancel()
	if c.transport != nil {
		c.transport.CloseIdleConnections()
	}
	return nil
}

// errorf wraps a failure with the table, and the operation and what it was about.
func (s *store) errorf(err error, format string, args ...any) error {
	return fmt.Errorf("lddynamodb: table %q: %s: %w", s.table, fmt.Sprintf(format, args...), withCredentialsCause(err))
}

// query calls fn for every row of a namespace, page by page, with expr (namespaceQuery or
// storedRowsQuery) and strongly consistent reads if consistent is set.
func (s *store) query(ctx context.Context, namespace string, consistent bool, expr fixedExpression,
	fn func(map[string]types.AttributeValue) error) error {
	paginator := dynamodb.NewQueryPaginator(s.client, &dynamodb.QueryInput{
		TableName:                 &s.table,
		ConsistentRead:            &consistent,
		KeyConditionExpression:    expr.keyCondition,
		ProjectionExpression:      expr.projection,
		ExpressionAttributeNames:  expr.names,
		ExpressionAttributeValues: expr.valuesWith(&types.AttributeValueMemberS{Value: namespace}),
	})
	for paginator.HasMorePages() {
		page, err := paginator.NextPage(ctx, s.callOpts...)
		if err != nil {
			return err
		}
		for _, row := range page.Items {
			if err := fn(row); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *store) put(ctx context.Context, in *dynamodb.PutItemInput) error {
	_, err := s.client.PutItem(ctx, in, s.callOpts...)
	return err
}

func (s *store) Get(kind ldstoretypes.DataKind, key string) (ldstoretypes.SerializedItemDescriptor, error) {
	ctx, cancel := s.operation()
	defer cancel()
	namespace := Namespace(s.prefix, kind)
	if keyProblem(namespace, key) != "" {
		// No row can have this key, and DynamoDB would refuse the read with a ValidationException,
		// which the SDK takes for an unavailable store.
		return ldstoretypes.SerializedItemDescriptor{}.NotFound(), nil
	}
	seq := s.stale.begin()
	item, err := s.readItem(ctx, namespace, key)
	var rowErr *RowError
	switch {
	case errors.As(err, &rowErr):
		// An undecodable row is not transient, so stale data never hides it.
		return ldstoretypes.SerializedItemDescriptor{}, s.errorf(err, "get %s %q", kind, key)
	case err != nil:
		return s.stale.item(kind, key, s.errorf(err, "get %s %q", kind, key))
	}
	s.stale.storeRead(kind, key, item, seq)
	if item.Version < 0 {
		s.foundNothing()
	}
	return item, nil
}

func (s *store) GetAll(kind ldstoretypes.DataKind) ([]ldstoretypes.KeyedSerializedItemDescriptor, error) {
	ctx, cancel := s.operation()
	defer cancel()
	namespace := Namespace(s.prefix, kind)
	if len(namespace) > MaxPartitionKeyBytes {
		return nil, nil // as in Get: no row can be there, and DynamoDB would refuse the Query
	}
	var items []ldstoretypes.KeyedSerializedItemDescriptor
	var large map[int]*largeRow // items whose data is in parts, by index
	seq := s.stale.begin()
	err := s.query(ctx, namespace, s.consistentReads, namespaceQuery, func(row map[string]types.AttributeValue) error {
		key, _ := stringAttr(row, AttrKey)
		if l, rowErr := largeToRead(namespace, key, row); rowErr != nil {
			return rowErr
		} else if l != nil {
			if large == nil {
				large = map[int]*largeRow{}
			}
			large[len(items)] = l
			items = append(items, ldstoretypes.KeyedSerializedItemDescriptor{Key: key})
			return nil
		}
		key, item, err := DecodeRow(row)
		if err != nil {
			return err
		}
		items = append(items, ldstoretypes.KeyedSerializedItemDescriptor{Key: key, Item: item})
		return nil
	})
	if err == nil && large != nil {
		items, err = s.readLargeItems(ctx, namespace, items, large)
	}
	if err != nil {
		// An undecodable row is not transient, so stale data never hides it.
		return s.stale.all(kind, s.errorf(err, "get all %s", kind))
	}
	s.stale.storeAll(kind, items, seq)
	if len(items) == 0 {
		s.foundNothing()
	}
	return items, nil
}

// Upsert writes an item if the stored version is lower. A large item's parts are written first,
// then its main row, with the version condition; the PutItem returns the row it replaced, whose
// parts, if any, are then deleted, and a refused Upsert deletes the parts it wrote: when it
// returns, no part of an older version is left (unless a delete failed, which is logged).
func (s *store) Upsert(kind ldstoretypes.DataKind, key string, item ldstoretypes.SerializedItemDescriptor) (bool, error) {
	ctx, cancel := s.operation()
	defer cancel()
	namespace := Namespace(s.prefix, kind)
	rows, problem := encodeItem(namespace, key, item, s.largeItems, newPartsID(time.Now()))
	if problem != "" {
		s.rec.add(countSkipped, 1)
		return false, fmt.Errorf("lddynamodb: table %q: upsert %s %q version %d: not stored: %s",
			s.table, kind, key, item.Version, problem)
	}
	what := fmt.Sprintf("%s %q version %d", kind, key, item.Version)
	if len(rows.parts) > 0 {
		if err := s.writeRows(ctx, partPuts(rows.parts)); err != nil {
			s.deleteParts(ctx, rows.main, what+", whose write failed")
			return false, s.errorf(err, "upsert %s: writing its parts", what)
		}
		s.rec.add(countPartsWritten, len(rows.parts))
		s.rec.add(countPartBytesWritten, rowsSize(rows.parts))
	}
	if s.beforeUpsertWrite != nil {
		s.beforeUpsertWrite()
	}
	out, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 &s.table,
		Item:                      rows.main,
		ConditionExpression:       upsertCondition.condition,
		ExpressionAttributeNames:  upsertCondition.names,
		ExpressionAttributeValues: upsertCondition.valuesWith(rows.main[attrVersion]),
		ReturnValues:              types.ReturnValueAllOld,
	}, s.callOpts...)
	if isConditionFailed(err) {
		s.deleteParts(ctx, rows.main, what+", refused as older than the stored version")
		return false, nil
	}
	if err != nil {
		// The write may have happened (a timeout after DynamoDB took it): its parts stay, for the
		// next Init to remove if no row names them.
		return false, s.errorf(err, "upsert %s", what)
	}
	s.deleteParts(ctx, out.Attributes, fmt.Sprintf("%s %q, replaced by version %d", kind, key, item.Version))
	s.stale.storeWrite(kind, key, item)
	return true, nil
}

func isConditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

func (s *store) IsInitialized() bool {
	inited, err := s.getMarker(s.consistentReads)
	if err != nil {
		s.loggers.Warnf("table %q: checking the initialized marker: %v", s.table, err)
		return false
	}
	s.markerKnown.Store(true)
	if !inited {
		s.warnNoMarker()
	}
	return inited
}

// foundNothing checks the marker, once per store, the first time a read finds nothing: in
// daemon mode the SDK does not call IsInitialized, so a wrong prefix or an empty table would
// otherwise only show as every flag evaluating as not found. It costs one eventually consistent
// GetItem of the marker per store at most, and none once IsInitialized has read it.
func (s *store) foundNothing() {
	if s.markerKnown.Swap(true) {
		return
	}
	if inited, err := s.getMarker(false); err == nil && !inited {
		s.warnNoMarker()
	}
}

// warnNoMarker logs, once per store, that the marker is missing.
func (s *store) warnNoMarker() {
	if s.warnedNoMarker.Swap(true) {
		return
	}
	s.loggers.Warnf("table %q has no initialized marker (row %q) for %s: flags read from it are not found until an SDK or the Relay Proxy "+
		"with this prefix writes its data; check the table name and prefix", s.table, prefixed(s.prefix, initedKey), describePrefix(s.prefix))
}

func describePrefix(prefix string) string {
	if prefix == "" {
		return "no prefix"
	}
	return fmt.Sprintf("prefix %q", prefix)
}

// IsStoreAvailable probes DynamoDB with an eventually consistent read of the marker row, the
// cheapest call there is (half a read unit).
func (s *store) IsStoreAvailable() bool {
	_, err := s.getMarker(false)
	return err == nil
}

func (s *store) getMarker(consistent bool) (bool, error) {
	ctx, cancel := s.operation()
	defer cancel()
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:                &s.table,
		Key:                      initedRowKey(s.prefix),
		ConsistentRead:           &consistent,
		ProjectionExpression:     markerProjection.projection,
		ExpressionAttributeNames: markerProjection.names,
	}, s.callOpts...)
	if err != nil {
		return false, s.errorf(err, "get %s", strconv.Quote(prefixed(s.prefix, initedKey)))
	}
	return out.Item != nil, nil
}
