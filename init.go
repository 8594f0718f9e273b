package lddynamodb

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
)

// What Init writes: it reads the stored rows, plans the puts of the items that changed and the
// deletes of the rows that are gone, and hands them to the write engine (initengine.go), which
// keeps the SDK's order and paces each partition key (pacer.go); the marker goes last.

const (
	// maxRetryBackoff caps the wait between Init's retries after a transient failure.
	maxRetryBackoff = 5 * time.Second
	// writeUnitBytes is the size that one write capacity unit pays for.
	writeUnitBytes = 1024
)

// Init replaces the data of the store's prefix with allData (see the store's doc comment for
// its calls).
func (s *store) Init(allData []ldstoretypes.SerializedCollection) (err error) {
	start := time.Now()
	defer func() { s.rec.initDone(start, err) }()
	ctx, cancel := context.WithTimeout(s.ctx, s.initTimeout)
	defer cancel()

	plan, err := s.planInit(ctx, allData)
	if err != nil {
		return err
	}
	if err := s.runInit(ctx, plan); err != nil {
		return s.errorf(err, "init")
	}
	// The marker goes last, so that a store that failed halfway never reads as initialized.
	marker := &dynamodb.PutItemInput{TableName: &s.table, Item: initedRowKey(s.prefix)}
	err = retryUntilDone(ctx, func() (bool, error) {
		err := s.put(ctx, marker)
		return err == nil, err
	})
	if err != nil {
		return s.errorf(err, "init: writing the initialized marker")
	}
	s.stale.replaceAll(withoutSkipped(allData, plan.skipped))
	return nil
}

// initWrite is one write request of an Init and what the engine knows of it.
type initWrite struct {
	req       types.WriteRequest
	namespace string
	key       string
	units     int // write units: ceil(row bytes / 1 KB), 1 for a delete
	wireBytes int // its size in the request body (writeRequestWireBytes)
	partBytes int // the size of a large item's part that it puts, 0 for any other write
	sends     int
	// waiting counts the writes this one waits for that are not acknowledged yet (the puts of
	// the items it uses and of its parts; for a delete of a large item's parts, the delete of
	// its main row); users are the writes that wait for this one.
	waiting int
	users   []*initWrite
}

func newInitWrite(req types.WriteRequest, namespace, key string) *initWrite {
	units := 1
	if req.PutRequest != nil {
		units = (RowSize(req.PutRequest.Item) + writeUnitBytes - 1) / writeUnitBytes
	}
	return &initWrite{req: req, namespace: namespace, key: key, units: units, wireBytes: writeRequestWireBytes(req)}
}

// waitFor makes w wait until before is acknowledged.
func (w *initWrite) waitFor(before *initWrite) {
	before.users = append(before.users, w)
	w.waiting++
}

// initPlan is what Init writes: the puts, then the deletes.
type initPlan struct {
	puts, deletes []*initWrite
	skipped       map[itemRef]bool
}

// orphanPartsGrace is how old parts that no main row names must be before Init removes them:
// younger ones may be another writer's Upsert between writing its parts and its main row.
var orphanPartsGrace = time.Minute

// planInit reads what the table holds and decides what to write. Differential Init: a row that
// already holds the new item, same version and same JSON, is left alone. The JSON is compared too
// because not every data source bumps versions (the file data source keeps a flag's version when
// the file changes); for a large item, its digest. If another writer raises a row's version after
// the Query, skipping keeps its newer row where a rewrite would have replaced it: skipping never
// loses more than rewriting. A large item's parts are put before its main row, the parts of rows
// it replaces are deleted after every put (those of a removed row after the row), and parts that
// no row names are removed once older than orphanPartsGrace.
func (s *store) planInit(ctx context.Context, allData []ldstoretypes.SerializedCollection) (*initPlan, error) {
	plan := &initPlan{skipped: map[itemRef]bool{}}
	puts := map[itemRef]*initWrite{}
	uses := map[*initWrite][]itemRef{}
	now := time.Now()
	partsID := newPartsID(now)
	for _, coll := range allData {
		namespace := Namespace(s.prefix, coll.Kind)
		stored, err := s.storedRows(ctx, namespace)
		if err != nil {
			return nil, s.errorf(err, "init: reading keys of %s", coll.Kind)
		}
		partsNamespace := partsNamespaceOf(namespace)
		groups, err := s.storedParts(ctx, partsNamespace)
		if err != nil {
			return nil, s.errorf(err, "init: reading keys of %s", partsNamespace)
		}
		// What becomes of each stored write's parts: kept, or deleted after the write given
		// (nil: once every put is done).
		kept := map[string]bool{}
		deleteAfter := map[string]*initWrite{}
		for _, item := range coll.Items {
			old, exists := stored[item.Key]
			delete(stored, item.Key)
			text := itemText(item.Key, item.Item)
			// A large item is unchanged only if its parts are all there too.
			if exists && old.version == item.Item.Version && old.digest == sha256.Sum256(text) && len(groups[old.partsPrefix]) == old.parts {
				kept[old.partsPrefix] = true
				continue
			}
			if exists {
				deleteAfter[old.partsPrefix] = nil
			}
			rows, problem := encodeItem(namespace, item.Key, item.Item, s.largeItems, partsID)
			if problem != "" {
				// Readers see the item missing rather than silently outdated: its older row goes.
				s.loggers.Errorf("table %q: init: %s %q not stored: %s; its older row, if any, is removed",
					s.table, coll.Kind, item.Key, problem)
				s.rec.add(countSkipped, 1)
				plan.skipped[itemRef{coll.Kind.GetName(), item.Key}] = true
				if exists {
					w := deleteWrite(namespace, item.Key)
					plan.deletes = append(plan.deletes, w)
					deleteAfter[old.partsPrefix] = w
				}
				continue
			}
			w := newInitWrite(types.WriteRequest{PutRequest: &types.PutRequest{Item: rows.main}}, namespace, item.Key)
			for _, part := range rows.parts {
				key, _ := stringAttr(part, AttrKey)
				pw := newInitWrite(types.WriteRequest{PutRequest: &types.PutRequest{Item: part}}, partsNamespace, key)
				pw.partBytes = RowSize(part)
				w.waitFor(pw)
				plan.puts = append(plan.puts, pw)
			}
			plan.puts = append(plan.puts, w)
			puts[itemRef{coll.Kind.GetName(), item.Key}] = w
			uses[w] = itemUses(text)
		}
		for key, old := range stored {
			w := deleteWrite(namespace, key)
			plan.deletes = append(plan.deletes, w)
			deleteAfter[old.partsPrefix] = w
		}
		for prefix, keys := range groups {
			after, replaced := deleteAfter[prefix]
			if kept[prefix] || (!replaced && !orphanOld(prefix, now)) {
				continue
			}
			for _, key := range keys {
				w := newInitWrite(types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: rowKey(partsNamespace, key)}}, partsNamespace, key)
				if after != nil {
					w.waitFor(after)
				}
				plan.deletes = append(plan.deletes, w)
			}
		}
	}
	linkUses(plan.puts, puts, uses)
	return plan, nil
}

// orphanOld says whether parts that no row names are old enough to remove.
func orphanOld(prefix string, now time.Time) bool {
	at, ok := partsIDTime(prefix)
	return !ok || now.Sub(at) >= orphanPartsGrace
}

func deleteWrite(namespace, key string) *initWrite {
	return newInitWrite(types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: rowKey(namespace, key)}}, namespace, key)
}

// withoutSkipped is allData without the skipped items, which the table does not hold.
func withoutSkipped(allData []ldstoretypes.SerializedCollection, skipped map[itemRef]bool) []ldstoretypes.SerializedCollection {
	if len(skipped) == 0 {
		return allData
	}
	out := make([]ldstoretypes.SerializedCollection, 0, len(allData))
	for _, coll := range allData {
		items := make([]ldstoretypes.KeyedSerializedItemDescriptor, 0, len(coll.Items))
		for _, item := range coll.Items {
			if !skipped[itemRef{coll.Kind.GetName(), item.Key}] {
				items = append(items, item)
			}
		}
		out = append(out, ldstoretypes.SerializedCollection{Kind: coll.Kind, Items: items})
	}
	return out
}

// storedRow is what Init needs to know of a row to decide whether to rewrite it.
type storedRow struct {
	version int
	digest  [sha256.Size]byte // of the item's JSON, so that the JSON itself need not be kept
	// partsPrefix is what the keys of a large item's parts begin with, and parts how many it
	// has ("" and 0 if none).
	partsPrefix string
	parts       int
}

// storedRows reads the key, version and item digest of every row in a namespace. Projecting away
// only `namespace` and a large item's data saves nothing worth having: DynamoDB charges a Query,
// and cuts its 1 MB pages, by the size of the whole rows read. The read is strongly consistent
// whatever ConsistentReads says: an eventually consistent one could miss a row written a moment
// ago (which Init would then leave behind) or still show one just deleted at the new version
// (which Init would skip).
func (s *store) storedRows(ctx context.Context, namespace string) (map[string]storedRow, error) {
	rows := map[string]storedRow{}
	err := s.query(ctx, namespace, true, storedRowsQuery, func(row map[string]types.AttributeValue) error {
		key, _ := stringAttr(row, AttrKey)
		// A row whose version cannot be read is rewritten, so -1 never equals a real version.
		version, err := versionAttr(row)
		if err != nil {
			version = -1
		}
		stored := storedRow{version: version}
		if isLargeRow(row) {
			var ok bool
			if stored.digest, stored.partsPrefix, stored.parts, ok = largeRowDigest(key, row); !ok {
				stored.version = -1
			}
		} else {
			text, _ := stringAttr(row, attrItem)
			stored.digest = sha256.Sum256([]byte(text))
		}
		rows[key] = stored
		return nil
	})
	return rows, err
}

// storedParts reads the keys of every part in a parts namespace, grouped by the write that
// stored them (their key prefix). Like storedRows, the Query reads whole rows: up to 400 KB a
// part, for keys only; Init pays it once per kind, and nothing when no large item was ever stored.
func (s *store) storedParts(ctx context.Context, partsNamespace string) (map[string][]string, error) {
	groups := map[string][]string{}
	err := s.query(ctx, partsNamespace, true, partKeysQuery, func(row map[string]types.AttributeValue) error {
		key, _ := stringAttr(row, AttrKey)
		prefix, _, ok := parsePartKey(key)
		if !ok {
			prefix = key // not a part this store wrote: removed as an orphan
		}
		groups[prefix] = append(groups[prefix], key)
		return nil
	})
	return groups, err
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
