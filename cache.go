package lddynamodb

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/launchdarkly/go-sdk-common/v3/ldlog"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
)

// StaleIfError lets reads fall back to the last value the store read or wrote, when DynamoDB
// fails in a way that a retry could fix (throttling, timeouts, 5xx responses, connection
// failures) and that value is younger than maxAge. The SDK's own cache (CacheSeconds) then keeps
// serving flags through an outage longer than its TTL, instead of every flag falling back to its
// default. Zero, the default, turns it off.
//
// Errors that no retry fixes (a missing table, access denied, a bad request, an undecodable row)
// are always returned. A deleted item is remembered as deleted, so it never comes back. The first
// read served stale in an outage logs a warning; each one is counted in Metrics.StaleReads, and
// each failed call in Metrics.Errors. IsStoreAvailable still reports the truth, but the SDK only
// asks it after a read has failed, so while stale data answers every read the SDK's
// DataStoreStatusProvider keeps reporting the store as available: watch the warning and Metrics.
//
// Cost: one entry per flag or segment key the store has read or written (the serialized item, as
// large as the item itself: about as much memory again as the SDK's own cache of the same data),
// kept while the store is open. No goroutines.
func (b *DataStoreBuilder) StaleIfError(maxAge time.Duration) *DataStoreBuilder {
	b.staleMaxAge = maxAge
	return b
}

// staleCache is the last-known-good layer behind StaleIfError. A nil *staleCache is off: its
// methods store nothing and return the error they are given.
type staleCache struct {
	maxAge  time.Duration
	now     func() time.Time
	loggers ldlog.Loggers
	metrics *Metrics

	mu     sync.Mutex
	kinds  map[string]*staleKind // by kind name
	outage bool                  // a stale read was served and no read has succeeded since
}

// staleKind holds what is known of one kind: each key's newest item (with a not-found
// descriptor for keys known to be absent) and when the whole set was last read or written.
type staleKind struct {
	items    map[string]staleItem
	complete time.Time
}

type staleItem struct {
	item ldstoretypes.SerializedItemDescriptor
	at   time.Time
}

func newStaleCache(maxAge time.Duration, loggers ldlog.Loggers, metrics *Metrics) *staleCache {
	if maxAge <= 0 {
		return nil
	}
	return &staleCache{maxAge: maxAge, now: time.Now, loggers: loggers, metrics: metrics, kinds: map[string]*staleKind{}}
}

// isTransient says whether a retry could fix err: the only errors that stale data may hide.
func isTransient(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	return retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err) == aws.TrueTernary
}

func (c *staleCache) kind(kind ldstoretypes.DataKind) *staleKind {
	k := c.kinds[kind.GetName()]
	if k == nil {
		k = &staleKind{items: map[string]staleItem{}}
		c.kinds[kind.GetName()] = k
	}
	return k
}

// setLocked keeps the newer of the known and the new item, so that a slow read cannot replace
// what a later Upsert wrote. A key found absent replaces anything: only an Init removes rows.
func (k *staleKind) setLocked(key string, item ldstoretypes.SerializedItemDescriptor, at time.Time) {
	if old, ok := k.items[key]; ok && item.Version >= 0 && old.item.Version > item.Version {
		item = old.item
	}
	k.items[key] = staleItem{item: item, at: at}
}

// succeededLocked ends an outage, if one was being served around: any successful read or write
// shows that DynamoDB answers again, so the next outage gets its own warning.
func (c *staleCache) succeededLocked() {
	if c.outage {
		c.outage = false
		c.loggers.Info("DynamoDB reads succeed again; no longer serving stale data")
	}
}

func (c *staleCache) storeItem(kind ldstoretypes.DataKind, key string, item ldstoretypes.SerializedItemDescriptor) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.kind(kind).setLocked(key, item, c.now())
	c.succeededLocked()
}

// storeAll records a complete read of a kind. Keys that are no longer there are remembered as
// absent.
func (c *staleCache) storeAll(kind ldstoretypes.DataKind, items []ldstoretypes.KeyedSerializedItemDescriptor) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	k := c.kind(kind)
	present := make(map[string]bool, len(items))
	for _, it := range items {
		present[it.Key] = true
		k.setLocked(it.Key, it.Item, now)
	}
	for key := range k.items {
		if !present[key] {
			k.items[key] = staleItem{item: ldstoretypes.SerializedItemDescriptor{}.NotFound(), at: now}
		}
	}
	k.complete = now
	c.succeededLocked()
}

// replaceAll records an Init, which replaces everything regardless of versions.
func (c *staleCache) replaceAll(allData []ldstoretypes.SerializedCollection) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for _, coll := range allData {
		k := c.kind(coll.Kind)
		for key := range k.items {
			k.items[key] = staleItem{item: ldstoretypes.SerializedItemDescriptor{}.NotFound(), at: now}
		}
		for _, it := range coll.Items {
			k.items[it.Key] = staleItem{item: it.Item, at: now}
		}
		k.complete = now
	}
	c.succeededLocked()
}

// item answers a failed Get: the known item if the failure is transient and the item fresh
// enough, otherwise err.
func (c *staleCache) item(kind ldstoretypes.DataKind, key string, err error) (ldstoretypes.SerializedItemDescriptor, error) {
	if c == nil || !isTransient(err) {
		return ldstoretypes.SerializedItemDescriptor{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	known, ok := c.kind(kind).items[key]
	if !ok || c.now().Sub(known.at) > c.maxAge {
		return ldstoretypes.SerializedItemDescriptor{}, err
	}
	c.servedStaleLocked(err)
	return known.item, nil
}

// all answers a failed GetAll, as item does for Get.
func (c *staleCache) all(kind ldstoretypes.DataKind, err error) ([]ldstoretypes.KeyedSerializedItemDescriptor, error) {
	if c == nil || !isTransient(err) {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := c.kind(kind)
	if k.complete.IsZero() || c.now().Sub(k.complete) > c.maxAge {
		return nil, err
	}
	items := make([]ldstoretypes.KeyedSerializedItemDescriptor, 0, len(k.items))
	for key, known := range k.items {
		if known.item.Version >= 0 { // not a key known to be absent
			items = append(items, ldstoretypes.KeyedSerializedItemDescriptor{Key: key, Item: known.item})
		}
	}
	c.servedStaleLocked(err)
	return items, nil
}

func (c *staleCache) servedStaleLocked(err error) {
	c.metrics.recordStaleRead()
	if !c.outage {
		c.outage = true
		c.loggers.Warnf("DynamoDB reads are failing (%v); serving data up to %v old until they succeed", err, c.maxAge)
	}
}
