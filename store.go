package lddynamodb

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/launchdarkly/go-sdk-common/v3/ldlog"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
	"golang.org/x/sync/errgroup"
)

// maxRetryBackoff caps the wait between Init's retries of throttled or unprocessed writes.
const maxRetryBackoff = 5 * time.Second

// store is the DynamoDB PersistentDataStore.
//
// DynamoDB calls per operation (n items, p = Query pages of 1 MB):
//   - Init: one Query per kind (p pages) for the stored keys, versions and items, ceil(w/25)
//     BatchWriteItem for the w rows that changed or disappeared, one PutItem for the marker.
//   - Get: one GetItem. GetAll: p Query pages. Upsert: one conditional PutItem.
//   - IsInitialized and IsStoreAvailable: one GetItem of the marker.
type store struct {
	tableClient
	consistentReads  bool
	batchConcurrency int
	initTimeout      time.Duration
	stale            *staleCache
	loggers          ldlog.Loggers
	warnedNoMarker   atomic.Bool // IsInitialized has logged that the marker is missing

	// beforeUpsertWrite, if set by a test, runs in Upsert just before the write.
	beforeUpsertWrite func()
}

var _ subsystems.PersistentDataStore = (*store)(nil)

func newStore(b *DataStoreBuilder, conn connection, loggers ldlog.Loggers) *store {
	tc := newTableClient(&b.clientOptions, conn)
	loggers.SetPrefix("DynamoDBDataStore:")
	return &store{
		tableClient:      tc,
		consistentReads:  b.consistentReads,
		batchConcurrency: b.batchConcurrency,
		initTimeout:      b.initTimeout,
		stale:            newStaleCache(b.staleMaxAge, loggers, tc.metrics),
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
	metrics   *Metrics // nil unless the builder was given one

	// ctx is cancelled by Close, so that no operation outlives the store.
	ctx    context.Context
	cancel context.CancelFunc
}

func newTableClient(o *clientOptions, conn connection) tableClient {
	client := conn.client
	if o.metrics != nil {
		client = meteredClient{inner: client, metrics: o.metrics}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return tableClient{
		client:    client,
		callOpts:  o.callOptions(),
		transport: conn.transport,
		table:     o.table,
		prefix:    o.prefix,
		timeout:   o.timeout,
		metrics:   o.metrics,
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

func (s *store) Init(allData []ldstoretypes.SerializedCollection) error {
	ctx, cancel := context.WithTimeout(s.ctx, s.initTimeout)
	defer cancel()

	var writes []types.WriteRequest
	for _, coll := range allData {
		namespace := Namespace(s.prefix, coll.Kind)
		stored, err := s.storedRows(ctx, namespace)
		if err != nil {
			return s.errorf(err, "init: reading keys of %s", coll.Kind)
		}
		// Differential Init: a row that already holds the new item, same version and same JSON,
		// is left alone. The JSON is compared too because not every data source bumps versions
		// (the file data source keeps a flag's version when the file changes). If another writer
		// raises a row's version after the Query, skipping keeps its newer row where a rewrite
		// would have replaced it: skipping never loses more than rewriting.
		for _, item := range coll.Items {
			old, exists := stored[item.Key]
			delete(stored, item.Key)
			if exists && old.version == item.Item.Version && old.digest == sha256.Sum256(itemText(item.Key, item.Item)) {
				continue
			}
			row := encodeRow(namespace, item.Key, item.Item)
			if size := RowSize(row); size > MaxItemBytes {
				s.loggers.Warnf("table %q: %s %q is %d bytes, over DynamoDB's item limit of %d; not stored (its row, if any, is left as it was)",
					s.table, coll.Kind, item.Key, size, MaxItemBytes)
				continue
			}
			writes = append(writes, types.WriteRequest{PutRequest: &types.PutRequest{Item: row}})
		}
		for key := range stored {
			writes = append(writes, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: rowKey(namespace, key)}})
		}
	}
	if err := s.batchWrite(ctx, writes); err != nil {
		return s.errorf(err, "init")
	}
	// The marker goes last, so that a store that failed halfway never reads as initialized.
	marker := &dynamodb.PutItemInput{TableName: &s.table, Item: initedRowKey(s.prefix)}
	err := retryUntilDone(ctx, func() (bool, error) {
		err := s.put(ctx, marker)
		return err == nil, err
	})
	if err != nil {
		return s.errorf(err, "init: writing the initialized marker")
	}
	s.stale.replaceAll(allData)
	return nil
}

// storedRow is what Init needs to know of a row to decide whether to rewrite it.
type storedRow struct {
	version int
	digest  [sha256.Size]byte // of the item's JSON, so that the JSON itself need not be kept
}

// storedRows reads the key, version and item digest of every row in a namespace. Projecting away
// only `namespace` saves nothing worth having: DynamoDB charges a Query, and cuts its 1 MB pages,
// by the size of the whole rows read. The read is strongly consistent whatever ConsistentReads
// says: an eventually consistent one could miss a row written a moment ago (which Init would
// then leave behind) or still show one just deleted at the new version (which Init would skip).
func (s *store) storedRows(ctx context.Context, namespace string) (map[string]storedRow, error) {
	rows := map[string]storedRow{}
	err := s.query(ctx, namespace, true, storedRowsQuery, func(row map[string]types.AttributeValue) error {
		key, _ := stringAttr(row, AttrKey)
		// A row whose version cannot be read is rewritten, so -1 never equals a real version.
		version, err := versionAttr(row)
		if err != nil {
			version = -1
		}
		text, _ := stringAttr(row, attrItem)
		rows[key] = storedRow{version: version, digest: sha256.Sum256([]byte(text))}
		return nil
	})
	return rows, err
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

// batchWrite writes requests in batches of 25, at most batchConcurrency at once. The first batch
// that fails cancels the others.
func (s *store) batchWrite(ctx context.Context, writes []types.WriteRequest) error {
	group, ctx := errgroup.WithContext(ctx)
	group.SetLimit(s.batchConcurrency)
	for start := 0; start < len(writes) && ctx.Err() == nil; start += maxBatchWriteItems {
		batch := writes[start:min(start+maxBatchWriteItems, len(writes))]
		group.Go(func() error {
			// A batch whose turn comes after another failed is not sent at all.
			if err := ctx.Err(); err != nil {
				return err
			}
			return s.writeBatch(ctx, batch)
		})
	}
	return group.Wait()
}

// writeBatch sends one batch and then its UnprocessedItems until all are written or ctx ends.
// DynamoDB hands items back unprocessed when it throttles, so giving up on them would silently
// lose data; a call that fails transiently (after the AWS SDK's own retries) is sent again too.
func (s *store) writeBatch(ctx context.Context, batch []types.WriteRequest) error {
	pending := map[string][]types.WriteRequest{s.table: batch}
	return retryUntilDone(ctx, func() (bool, error) {
		out, err := s.client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending}, s.callOpts...)
		if err != nil {
			return false, err
		}
		pending = out.UnprocessedItems
		return len(pending[s.table]) == 0, nil
	})
}

// retryUntilDone calls attempt, with jittered exponential backoff between calls, until it reports
// done, fails with an error that no retry can fix, or ctx ends (an error naming the last failure).
func retryUntilDone(ctx context.Context, attempt func() (done bool, err error)) error {
	backoff := retry.NewExponentialJitterBackoff(maxRetryBackoff)
	for n := 1; ; n++ {
		done, err := attempt()
		if done || (err != nil && !isTransient(err)) {
			return err
		}
		delay, _ := backoff.BackoffDelay(n, err)
		select {
		case <-ctx.Done():
			if err == nil {
				err = errors.New("items still unprocessed")
			}
			return fmt.Errorf("%w (gave up: %w)", err, ctx.Err())
		case <-time.After(delay):
		}
	}
}

func (s *store) put(ctx context.Context, in *dynamodb.PutItemInput) error {
	_, err := s.client.PutItem(ctx, in, s.callOpts...)
	return err
}

func (s *store) Get(kind ldstoretypes.DataKind, key string) (ldstoretypes.SerializedItemDescriptor, error) {
	ctx, cancel := s.operation()
	defer cancel()
	namespace := Namespace(s.prefix, kind)
	seq := s.stale.begin()
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.table,
		Key:            rowKey(namespace, key),
		ConsistentRead: &s.consistentReads,
	}, s.callOpts...)
	if err != nil {
		return s.stale.item(kind, key, s.errorf(err, "get %s %q", kind, key))
	}
	if out.Item == nil {
		s.stale.storeRead(kind, key, ldstoretypes.SerializedItemDescriptor{}.NotFound(), seq)
		return ldstoretypes.SerializedItemDescriptor{}.NotFound(), nil
	}
	_, item, err := DecodeRow(out.Item)
	if err != nil {
		return ldstoretypes.SerializedItemDescriptor{}, s.errorf(err, "get %s %q", kind, key)
	}
	s.stale.storeRead(kind, key, item, seq)
	return item, nil
}

func (s *store) GetAll(kind ldstoretypes.DataKind) ([]ldstoretypes.KeyedSerializedItemDescriptor, error) {
	ctx, cancel := s.operation()
	defer cancel()
	var items []ldstoretypes.KeyedSerializedItemDescriptor
	seq := s.stale.begin()
	err := s.query(ctx, Namespace(s.prefix, kind), s.consistentReads, namespaceQuery, func(row map[string]types.AttributeValue) error {
		key, item, err := DecodeRow(row)
		if err != nil {
			return err
		}
		items = append(items, ldstoretypes.KeyedSerializedItemDescriptor{Key: key, Item: item})
		return nil
	})
	if err != nil {
		// An undecodable row is not transient, so stale data never hides it.
		return s.stale.all(kind, s.errorf(err, "get all %s", kind))
	}
	s.stale.storeAll(kind, items, seq)
	return items, nil
}

func (s *store) Upsert(kind ldstoretypes.DataKind, key string, item ldstoretypes.SerializedItemDescriptor) (bool, error) {
	ctx, cancel := s.operation()
	defer cancel()
	row := encodeRow(Namespace(s.prefix, kind), key, item)
	if size := RowSize(row); size > MaxItemBytes {
		return false, fmt.Errorf("lddynamodb: table %q: upsert %s %q: %d bytes is over DynamoDB's item limit of %d",
			s.table, kind, key, size, MaxItemBytes)
	}
	if s.beforeUpsertWrite != nil {
		s.beforeUpsertWrite()
	}
	err := s.put(ctx, &dynamodb.PutItemInput{
		TableName:                 &s.table,
		Item:                      row,
		ConditionExpression:       upsertCondition.condition,
		ExpressionAttributeNames:  upsertCondition.names,
		ExpressionAttributeValues: upsertCondition.valuesWith(row[attrVersion]),
	})
	if isConditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, s.errorf(err, "upsert %s %q version %d", kind, key, item.Version)
	}
	s.stale.storeWrite(kind, key, item)
	return true, nil
}

func isConditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

func (s *store) IsInitialized() bool {
	inited, err := s.getMarker(s.consistentReads)
	switch {
	case err != nil:
		s.loggers.Warnf("table %q: checking the initialized marker: %v", s.table, err)
	case !inited && !s.warnedNoMarker.Swap(true):
		// Once per store: a wrong prefix or an empty table would otherwise only show as every
		// flag evaluating as not found.
		s.loggers.Warnf("table %q has no initialized marker (row %q) for %s: flags read from it are not found until an SDK or the Relay Proxy "+
			"with this prefix writes its data; check the table name and prefix", s.table, prefixed(s.prefix, initedKey), describePrefix(s.prefix))
	}
	return inited
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
