package lddynamodb

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
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
// Errors that no retry fixes (a missing table, access denied, missing or expired credentials, a
// bad request, an undecodable row) are always returned. What the layer learns is ordered by when
// each operation started: a read that started before a write or an Init finished never replaces
// what that write or Init stored, even if it returns later, and a higher version of an item
// always wins. So a deleted item is remembered as deleted, and an item that an Init removed as
// absent: neither comes back. With ConsistentReads(false), a read that starts within about a
// second of a write may still see the row before it, as DynamoDB itself may answer.
//
// The first read served stale in an outage logs a warning; each one is counted in
// Metrics.StaleReads (and lddynamodb.stale.reads), and each failed call in Metrics.Errors. IsStoreAvailable still reports the
// truth, but the SDK only asks it after a read has failed, so while stale data answers every read
// the SDK's DataStoreStatusProvider keeps reporting the store as available: watch the warning and
// Metrics.
//
// Cost: one entry per flag or segment key read or written within the last maxAge (the
// serialized item, about as much memory again as the SDK's own cache of the same data, or a few
// dozen bytes for a key found absent). Entries older than maxAge are dropped when new keys arrive,
// so each kind holds at most twice the number of keys read or written within maxAge (or 1,024,
// whichever is more), however many distinct keys callers ask for. No goroutines.
func (b *DataStoreBuilder) StaleIfError(maxAge time.Duration) *DataStoreBuilder {
	b.staleMaxAge = maxAge
	return b
}

// staleSweepMin is how many entries a kind may hold before the first sweep of old ones.
const staleSweepMin = 1024

// staleCache is the last-known-good layer behind StaleIfError. A nil *staleCache is off: its
// methods store nothing and return the error they are given.
//
// Operations are numbered from seq: a read takes its number before it calls DynamoDB (begin),
// a write when it has finished. An entry learned by operation n reflects every write that
// finished before n, so a read numbered below an entry's number may be older than the entry and
// never replaces it.
type staleCache struct {
	maxAge  time.Duration
	now     func() time.Time
	loggers ldlog.Loggers
	rec     *recorder
	seq     atomic.Uint64

	mu     sync.Mutex
	kinds  map[string]*staleKind // by kind name
	outage bool                  // a stale read was served and no read has succeeded since
}

// staleKind holds what is known of one kind: each key's newest item (a not-found descriptor
// for a key that a Get found absent), and when the whole set was last read or written. A key
// with no entry is absent if the kind's complete set is fresh.
type staleKind struct {
	items    map[string]staleItem
	complete time.Time // when the last complete set was read or written; every entry is as fresh
	listed   uint64    // the number of the operation that learned the complete set
	barrier  uint64    // reads numbered below are ignored: an Init, or an entry that a sweep dropped, came after they started
	sweepAt  int       // the number of entries at which to drop those older than maxAge
}

type staleItem struct {
	item ldstoretypes.SerializedItemDescriptor
	at   time.Time // when the entry was last read or written
	seq  uint64    // the number of the operation it was learned from
}

func newStaleCache(maxAge time.Duration, loggers ldlog.Loggers, rec *recorder) *staleCache {
	if maxAge <= 0 {
		return nil
	}
	return &staleCache{maxAge: maxAge, now: time.Now, loggers: loggers, rec: rec, kinds: map[string]*staleKind{}}
}

// isTransient says whether a retry could fix err: the only errors that stale data may hide.
// Failing to get credentials is never transient, even when the credential endpoint could not be
// reached: it is about access, not about DynamoDB.
func isTransient(err error) bool {
	var credErr *CredentialsError
	if errors.As(err, &credErr) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	return retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err) == aws.TrueTernary
}

// begin numbers a read that is about to call DynamoDB.
func (c *staleCache) begin() uint64 {
	if c == nil {
		return 0
	}
	return c.seq.Add(1)
}

func (c *staleCache) kind(kind ldstoretypes.DataKind) *staleKind {
	k := c.kinds[kind.GetName()]
	if k == nil {
		k = &staleKind{items: map[string]staleItem{}, sweepAt: staleSweepMin}
		c.kinds[kind.GetName()] = k
	}
	return k
}

// setLocked records what operation seq learned of a key. Of two versions of an item the higher
// wins whatever the order; otherwise, and against "absent" (which has no version), the entry of
// the later operation wins.
func (c *staleCache) setLocked(k *staleKind, key string, item ldstoretypes.SerializedItemDescriptor, seq uint64, now time.Time) {
	old, known := k.items[key]
	if !known {
		if seq < k.listed {
			return // absent in the complete set read after this read started
		}
		if len(k.items) >= k.sweepAt {
			c.sweepLocked(k, now)
		}
		k.items[key] = staleItem{item: item, at: now, seq: seq}
		return
	}
	later := seq > old.seq
	if item.Version >= 0 && old.item.Version >= 0 {
		if item.Version != old.item.Version {
			later = item.Version > old.item.Version
		}
		if seq > old.seq {
			// The kept version was still the newest when seq started, and the key was seen then:
			// the entry is as fresh as that read, so that a sweep cannot drop a key just read.
			old.seq, old.at = seq, now
		}
	}
	if later {
		old = staleItem{item: item, at: now, seq: seq}
	}
	k.items[key] = old
}

// sweepLocked drops the entries of a kind older than maxAge, which can never be served again,
// into a new map (a Go map never shrinks), and sweeps again once the kind has doubled, so that
// sweeping costs O(1) per new key.
func (c *staleCache) sweepLocked(k *staleKind, now time.Time) {
	old := 0
	var newestDropped uint64
	for _, it := range k.items {
		if now.Sub(it.at) > c.maxAge {
			old++
			newestDropped = max(newestDropped, it.seq)
		}
	}
	if old > 0 {
		kept := make(map[string]staleItem, len(k.items)-old)
		for key, it := range k.items {
			if now.Sub(it.at) <= c.maxAge {
				kept[key] = it
			}
		}
		k.items = kept
		// A read that started before a dropped entry was learned may be older than it, and must
		// not bring back what it had replaced; a read that started after every dropped entry
		// (a GetAll in flight, say) is newer than all of them, and is kept.
		k.barrier = max(k.barrier, newestDropped)
	}
	k.sweepAt = max(2*len(k.items), staleSweepMin)
}

// succeededLocked ends an outage, if one was being served around: any successful read or write
// shows that DynamoDB answers again, so the next outage gets its own warning.
func (c *staleCache) succeededLocked() {
	if c.outage {
		c.outage = false
		c.loggers.Info("DynamoDB reads succeed again; no longer serving stale data")
	}
}

// storeRead records what a Get numbered seq (by begin) read: the item, or a not-found descriptor.
func (c *staleCache) storeRead(kind ldstoretypes.DataKind, key string, item ldstoretypes.SerializedItemDescriptor, seq uint64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.succeededLocked()
	if k := c.kind(kind); seq > k.barrier {
		c.setLocked(k, key, item, seq, c.now())
	}
}

// storeWrite records an item that an Upsert has just written.
func (c *staleCache) storeWrite(kind ldstoretypes.DataKind, key string, item ldstoretypes.SerializedItemDescriptor) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.succeededLocked()
	c.setLocked(c.kind(kind), key, item, c.seq.Add(1), c.now())
}

// storeAll records a complete read of a kind by a GetAll numbered seq. A key it did not list is
// forgotten, and so reads as absent, unless it was learned after the read started.
func (c *staleCache) storeAll(kind ldstoretypes.DataKind, items []ldstoretypes.KeyedSerializedItemDescriptor, seq uint64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.succeededLocked()
	k := c.kind(kind)
	if seq < k.barrier || seq < k.listed {
		return
	}
	now := c.now()
	k.listed = seq
	for _, it := range items {
		c.setLocked(k, it.Key, it.Item, seq, now)
	}
	for key, known := range k.items {
		if known.seq < seq {
			delete(k.items, key)
			continue
		}
		known.at = now
		k.items[key] = known
	}
	k.complete = now
}

// replaceAll records an Init that has finished: it replaces everything regardless of versions,
// and reads that started before it ended are ignored.
func (c *staleCache) replaceAll(allData []ldstoretypes.SerializedCollection) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.succeededLocked()
	now := c.now()
	seq := c.seq.Add(1)
	for _, coll := range allData {
		k := c.kind(coll.Kind)
		k.items = make(map[string]staleItem, len(coll.Items))
		for _, it := range coll.Items {
			k.items[it.Key] = staleItem{item: it.Item, at: now, seq: seq}
		}
		k.complete, k.listed, k.barrier = now, seq, seq
		k.sweepAt = max(2*len(k.items), staleSweepMin)
	}
}

// item answers a failed Get: the known item (or absent, for a key missing from a complete set)
// if the failure is transient and what is known fresh enough, otherwise err.
func (c *staleCache) item(kind ldstoretypes.DataKind, key string, err error) (ldstoretypes.SerializedItemDescriptor, error) {
	if c == nil || !isTransient(err) {
		return ldstoretypes.SerializedItemDescriptor{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := c.kind(kind)
	known, ok := k.items[key]
	if !ok {
		known = staleItem{item: ldstoretypes.SerializedItemDescriptor{}.NotFound(), at: k.complete}
	}
	if known.at.IsZero() || c.now().Sub(known.at) > c.maxAge {
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
	c.rec.add(countStaleReads, 1)
	if !c.outage {
		c.outage = true
		c.loggers.Warnf("DynamoDB reads are failing (%v); serving data up to %v old until they succeed", err, c.maxAge)
	}
}
