package lddynamodb

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
)

// How the store reads and writes the parts of large items (row format in largeitems.go). A
// reader may meet a main row whose parts a writer has just deleted (an Upsert switched versions
// between the two reads): it reads the main row again, up to maxLargeReads times, so that it
// returns a whole version and never an error for a race.

const (
	// maxLargeReads bounds the reads of a large item whose parts are missing. The second read
	// follows at once (a writer switched versions); later ones wait a little, for eventually
	// consistent reads to catch up.
	maxLargeReads     = 4
	largeReadMaxDelay = 250 * time.Millisecond
)

// readItem reads one item with GetItem, and the parts of a large item with one Query (pages as
// needed). It returns a not-found descriptor for an absent row, a *RowError for a row or part set
// that cannot be decoded, and DynamoDB's error for a failed call.
func (s *store) readItem(ctx context.Context, namespace, key string) (ldstoretypes.SerializedItemDescriptor, error) {
	backoff := retry.NewExponentialJitterBackoff(largeReadMaxDelay)
	for attempt := 1; ; attempt++ {
		out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
			TableName:      &s.table,
			Key:            rowKey(namespace, key),
			ConsistentRead: &s.consistentReads,
		}, s.callOpts...)
		if err != nil {
			return ldstoretypes.SerializedItemDescriptor{}, err
		}
		if out.Item == nil {
			return ldstoretypes.SerializedItemDescriptor{}.NotFound(), nil
		}
		l, rowErr := largeToRead(namespace, key, out.Item)
		if rowErr != nil {
			return ldstoretypes.SerializedItemDescriptor{}, rowErr
		}
		if l == nil {
			_, item, err := DecodeRow(out.Item)
			return item, err
		}
		parts, err := s.queryParts(ctx, partsNamespaceOf(namespace), l.partsPrefix)
		if err != nil {
			return ldstoretypes.SerializedItemDescriptor{}, err
		}
		chunks, complete := l.partsOf(parts)
		if complete || attempt == maxLargeReads {
			return l.item(namespace, key, chunks, complete)
		}
		if attempt > 1 {
			delay, _ := backoff.BackoffDelay(attempt, nil)
			select {
			case <-ctx.Done():
				return ldstoretypes.SerializedItemDescriptor{}, ctx.Err()
			case <-time.After(delay):
			}
		}
	}
}

// largeToRead returns the large row to read the parts of, if row is one whose data is in parts;
// a *RowError if it is a large row that cannot be read.
func largeToRead(namespace, key string, row map[string]types.AttributeValue) (*largeRow, *RowError) {
	if !isLargeRow(row) {
		return nil, nil
	}
	l, problem := parseLargeRow(key, row)
	if problem != "" {
		return nil, &RowError{Namespace: namespace, Key: key, Reason: problem}
	}
	if l.parts == 0 {
		return nil, nil
	}
	return l, nil
}

// item decodes a large item from its parts' data, or says why it cannot.
func (l *largeRow) item(namespace, key string, chunks [][]byte, complete bool) (ldstoretypes.SerializedItemDescriptor, error) {
	problem := ""
	var text []byte
	if !complete {
		problem = fmt.Sprintf("large item parts missing after %d reads: %d parts with keys %q... were expected in %q",
			maxLargeReads, l.parts, l.partsPrefix, partsNamespaceOf(namespace))
	} else {
		text, problem = l.decode(chunks)
	}
	if problem != "" {
		return ldstoretypes.SerializedItemDescriptor{}, &RowError{Namespace: namespace, Key: key, Reason: problem}
	}
	return ldstoretypes.SerializedItemDescriptor{Version: l.version, SerializedItem: text}, nil
}

// queryParts reads the part rows of a parts namespace whose keys begin with keyPrefix (all of
// them if it is empty), page by page.
func (s *store) queryParts(ctx context.Context, partsNamespace, keyPrefix string) ([]map[string]types.AttributeValue, error) {
	keyCond := expression.Key(AttrNamespace).Equal(expression.Value(partsNamespace))
	if keyPrefix != "" {
		keyCond = keyCond.And(expression.Key(AttrKey).BeginsWith(keyPrefix))
	}
	// Built per call, unlike the fixed expressions: two values vary, and the call reads at
	// least a part of hundreds of kilobytes, beside which the builder's allocations are nothing.
	expr, err := expression.NewBuilder().WithKeyCondition(keyCond).Build()
	if err != nil {
		return nil, err
	}
	paginator := dynamodb.NewQueryPaginator(s.client, &dynamodb.QueryInput{
		TableName:                 &s.table,
		ConsistentRead:            &s.consistentReads,
		KeyConditionExpression:    expr.KeyCondition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
	})
	var rows []map[string]types.AttributeValue
	for paginator.HasMorePages() {
		page, err := paginator.NextPage(ctx, s.callOpts...)
		if err != nil {
			return nil, err
		}
		rows = append(rows, page.Items...)
	}
	s.rec.add(countPartsRead, len(rows))
	s.rec.add(countPartBytesRead, rowsSize(rows))
	return rows, nil
}

// readLargeItems completes a GetAll's large items (at the given indexes of items, with their main
// rows' data in large) with one Query of the kind's parts namespace. An item whose parts are not
// all there is read again on its own (readItem); one that is then gone is dropped.
func (s *store) readLargeItems(ctx context.Context, namespace string, items []ldstoretypes.KeyedSerializedItemDescriptor,
	large map[int]*largeRow) ([]ldstoretypes.KeyedSerializedItemDescriptor, error) {
	parts, err := s.queryParts(ctx, partsNamespaceOf(namespace), "")
	if err != nil {
		return nil, err
	}
	gone := map[int]bool{}
	for i, l := range large {
		key := items[i].Key
		chunks, complete := l.partsOf(parts)
		var item ldstoretypes.SerializedItemDescriptor
		if complete {
			item, err = l.item(namespace, key, chunks, true)
		} else {
			item, err = s.readItem(ctx, namespace, key)
		}
		if err != nil {
			return nil, err
		}
		if item.Version < 0 {
			gone[i] = true
		}
		items[i].Item = item
	}
	if len(gone) == 0 {
		return items, nil
	}
	kept := items[:0]
	for i, it := range items {
		if !gone[i] {
			kept = append(kept, it)
		}
	}
	return kept, nil
}

func rowsSize(rows []map[string]types.AttributeValue) int {
	size := 0
	for _, row := range rows {
		size += RowSize(row)
	}
	return size
}

// partDeletes are the requests that delete the parts of a large row.
func partDeletes(partsNamespace, keyPrefix string, count int) []types.WriteRequest {
	reqs := make([]types.WriteRequest, count)
	for pos := range reqs {
		reqs[pos] = types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: rowKey(partsNamespace, partKey(keyPrefix, pos))}}
	}
	return reqs
}

// partPuts are the requests that write parts.
func partPuts(parts []map[string]types.AttributeValue) []types.WriteRequest {
	reqs := make([]types.WriteRequest, len(parts))
	for i, part := range parts {
		reqs[i] = types.WriteRequest{PutRequest: &types.PutRequest{Item: part}}
	}
	return reqs
}

// deleteParts deletes the parts of rows (a large row's, if it is one with parts), logging a
// failure: the item itself is stored, and the next Init removes parts that no row names.
func (s *store) deleteParts(ctx context.Context, row map[string]types.AttributeValue, why string) {
	partsNamespace, prefix, count := LargeRowParts(row)
	if count == 0 {
		return
	}
	if err := s.writeRows(ctx, partDeletes(partsNamespace, prefix, count)); err != nil {
		s.loggers.Errorf("table %q: deleting the %d parts %q... of %s: %v; the next Init removes them",
			s.table, count, prefix, why, err)
	}
}
