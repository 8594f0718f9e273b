package lddynamodb

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/launchdarkly/go-jsonstream/v3/jreader"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
)

// Init's write engine. It keeps the order that the SDK's contract asks of a store that cannot
// write atomically: a put goes out only once every item it uses that this Init writes
// (prerequisite flags, segments of segmentMatch clauses) is acknowledged; deletes go out once
// every put is; the marker last. Items whose dependencies are written go out together, up to
// BatchConcurrency calls at once, and each partition key (flags, segments) is paced to the
// write rate that DynamoDB accepts, learnt from its UnprocessedItems and throughput errors.

const (
	// maxRetryBackoff caps the wait between Init's retries after a transient failure.
	maxRetryBackoff = 5 * time.Second
	// writeUnitBytes is the size that one write capacity unit pays for.
	writeUnitBytes = 1024
	// minPaceRate is the slowest pace, in write units a second, that throttling brings a
	// partition down to: one full batch a second.
	minPaceRate = maxBatchWriteItems
	// paceDecrease is the factor by which a throttle slows a partition's pace, at most once per
	// paceDecreaseInterval; each unit accepted while not throttled raises it by paceIncrease.
	paceDecrease         = 0.9
	paceDecreaseInterval = 200 * time.Millisecond
	paceIncrease         = 0.5
	// paceBurst is how much sending a paced partition may save up while it waits.
	paceBurst = 50 * time.Millisecond
)

// initProgressInterval is how often a running Init logs how far it got.
var initProgressInterval = 5 * time.Second

// Init replaces the data of the store's prefix with allData (see the store's doc comment for
// its calls).
func (s *store) Init(allData []ldstoretypes.SerializedCollection) error {
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
	sends     int
	// waiting counts the puts this one uses that are not acknowledged yet; users are the puts
	// that wait for this one.
	waiting int
	users   []*initWrite
}

// itemRef names an item of one kind.
type itemRef struct{ kind, key string }

// initPlan is what Init writes: the puts, then the deletes.
type initPlan struct {
	puts, deletes []*initWrite
	skipped       map[itemRef]bool
}

// planInit reads what the table holds and decides what to write. Differential Init: a row that
// already holds the new item, same version and same JSON, is left alone. The JSON is compared too
// because not every data source bumps versions (the file data source keeps a flag's version when
// the file changes). If another writer raises a row's version after the Query, skipping keeps its
// newer row where a rewrite would have replaced it: skipping never loses more than rewriting.
func (s *store) planInit(ctx context.Context, allData []ldstoretypes.SerializedCollection) (*initPlan, error) {
	plan := &initPlan{skipped: map[itemRef]bool{}}
	puts := map[itemRef]*initWrite{}
	uses := map[*initWrite][]itemRef{}
	for _, coll := range allData {
		namespace := Namespace(s.prefix, coll.Kind)
		stored, err := s.storedRows(ctx, namespace)
		if err != nil {
			return nil, s.errorf(err, "init: reading keys of %s", coll.Kind)
		}
		for _, item := range coll.Items {
			old, exists := stored[item.Key]
			delete(stored, item.Key)
			text := itemText(item.Key, item.Item)
			if exists && old.version == item.Item.Version && old.digest == sha256.Sum256(text) {
				continue
			}
			row := encodeRow(namespace, item.Key, item.Item)
			if problem := rowProblem(namespace, item.Key, row); problem != "" {
				// Readers see the item missing rather than silently outdated: its older row goes.
				s.loggers.Errorf("table %q: init: %s %q not stored: %s; its older row, if any, is removed",
					s.table, coll.Kind, item.Key, problem)
				s.metrics.recordSkipped()
				plan.skipped[itemRef{coll.Kind.GetName(), item.Key}] = true
				if exists {
					plan.deletes = append(plan.deletes, deleteWrite(namespace, item.Key))
				}
				continue
			}
			w := &initWrite{
				req:       types.WriteRequest{PutRequest: &types.PutRequest{Item: row}},
				namespace: namespace,
				key:       item.Key,
				units:     (RowSize(row) + writeUnitBytes - 1) / writeUnitBytes,
			}
			plan.puts = append(plan.puts, w)
			puts[itemRef{coll.Kind.GetName(), item.Key}] = w
			uses[w] = itemUses(text)
		}
		for key := range stored {
			plan.deletes = append(plan.deletes, deleteWrite(namespace, key))
		}
	}
	linkUses(plan.puts, puts, uses)
	return plan, nil
}

func deleteWrite(namespace, key string) *initWrite {
	return &initWrite{
		req:       types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: rowKey(namespace, key)}},
		namespace: namespace,
		key:       key,
		units:     1,
	}
}

// linkUses makes each put wait for the puts of the items it uses. Uses of items that this Init
// does not write need no wait. A cycle (which the SDK's own sort also cannot order) is cut where
// the walk closes it, so that the engine never waits forever.
func linkUses(order []*initWrite, puts map[itemRef]*initWrite, uses map[*initWrite][]itemRef) {
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[*initWrite]int{}
	var visit func(w *initWrite)
	visit = func(w *initWrite) {
		state[w] = visiting
		for _, ref := range uses[w] {
			used := puts[ref]
			if used == nil || used == w {
				continue
			}
			switch state[used] {
			case visiting:
				continue // closes a cycle
			case unvisited:
				visit(used)
			}
			used.users = append(used.users, w)
			w.waiting++
		}
		state[w] = done
	}
	for _, w := range order {
		if state[w] == unvisited {
			visit(w)
		}
	}
}

// itemUses lists the items that a serialized flag or segment uses, read as a stream without
// building the SDK's model: prerequisites (flags) and the values of segmentMatch clauses in rules
// (segments). Parts that do not parse give no uses: they cannot name an item.
func itemUses(data []byte) []itemRef {
	var refs []itemRef
	r := jreader.NewReader(data)
	for obj := r.ObjectOrNull(); obj.Next(); {
		switch string(obj.Name()) {
		case "prerequisites":
			for arr := r.ArrayOrNull(); arr.Next(); {
				for pre := r.ObjectOrNull(); pre.Next(); {
					if string(pre.Name()) == "key" {
						if key, ok := r.StringOrNull(); ok {
							refs = append(refs, itemRef{"features", key})
						}
					}
				}
			}
		case "rules":
			for arr := r.ArrayOrNull(); arr.Next(); {
				for rule := r.ObjectOrNull(); rule.Next(); {
					if string(rule.Name()) == "clauses" {
						refs = append(refs, clauseSegments(&r)...)
					}
				}
			}
		}
	}
	return refs
}

// clauseSegments reads an array of clauses and returns the segments of its segmentMatch ones.
func clauseSegments(r *jreader.Reader) []itemRef {
	var refs []itemRef
	for arr := r.ArrayOrNull(); arr.Next(); {
		var op string
		var values []string
		for clause := r.ObjectOrNull(); clause.Next(); {
			switch string(clause.Name()) {
			case "op":
				op, _ = r.StringOrNull()
			case "values":
				for vals := r.ArrayOrNull(); vals.Next(); {
					v := r.Any()
					switch v.Kind {
					case jreader.StringValue:
						values = append(values, v.String)
					case jreader.ArrayValue:
						for v.Array.Next() {
						}
					case jreader.ObjectValue:
						for v.Object.Next() {
						}
					}
				}
			}
		}
		if op == "segmentMatch" {
			for _, key := range values {
				refs = append(refs, itemRef{"segments", key})
			}
		}
	}
	return refs
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

// initRun is the state of one Init's writes, shared by its senders under mu.
type initRun struct {
	s *store

	mu         sync.Mutex
	partitions []*initPartition // in a fixed order, taken in turn
	byName     map[string]*initPartition
	turn       int
	deletes    []*initWrite // queued once every put is acknowledged
	unacked    int          // writes of the current phase not yet acknowledged
	// releasing counts the calls in flight that carry writes that other puts wait for.
	releasing int
	written   int
	total     int
	throttled int
	lastErr   error // the last failure, for the error of an Init that runs out of time
	// delayed are batches that failed transiently, each waiting out its backoff.
	delayed []delayedBatch
	err     error
	changed chan struct{} // closed and replaced whenever a sender may have work
}

// initPartition is the queue and pace of one partition key.
type initPartition struct {
	ready   []*initWrite // may be sent now
	blocked int          // puts waiting for items they use
	pace    pacer
}

// delayedBatch is a batch to send again after a transient failure, once its backoff is over.
type delayedBatch struct {
	at     time.Time
	p      *initPartition
	writes []*initWrite
}

// runInit sends the puts, then the deletes, with batchConcurrency senders.
func (s *store) runInit(ctx context.Context, plan *initPlan) error {
	run := &initRun{
		s:       s,
		byName:  map[string]*initPartition{},
		deletes: plan.deletes,
		total:   len(plan.puts) + len(plan.deletes),
		changed: make(chan struct{}),
	}
	for _, w := range plan.puts {
		p := run.partition(w.namespace)
		if w.waiting == 0 {
			p.ready = append(p.ready, w)
		} else {
			p.blocked++
		}
	}
	run.unacked = len(plan.puts)
	if run.unacked == 0 {
		run.startDeletes()
	}
	if run.total == 0 {
		return nil
	}
	stopProgress := run.logProgress()
	defer stopProgress()
	errs := make(chan error, s.batchConcurrency)
	for i := 0; i < s.batchConcurrency; i++ {
		go func() { errs <- run.send(ctx) }()
	}
	var err error
	for i := 0; i < s.batchConcurrency; i++ {
		if e := <-errs; e != nil && err == nil {
			err = e
		}
	}
	return err
}

func (run *initRun) partition(name string) *initPartition {
	p := run.byName[name]
	if p == nil {
		p = &initPartition{}
		run.byName[name] = p
		run.partitions = append(run.partitions, p)
	}
	return p
}

// startDeletes queues the deletes, once every put is acknowledged.
func (run *initRun) startDeletes() {
	for _, w := range run.deletes {
		p := run.partition(w.namespace)
		p.ready = append(p.ready, w)
	}
	run.unacked = len(run.deletes)
	run.deletes = nil
}

// wakeLocked tells waiting senders that the state changed.
func (run *initRun) wakeLocked() {
	close(run.changed)
	run.changed = make(chan struct{})
}

// logProgress logs, every initProgressInterval until stopped, how many writes are done, so that
// a long, throttled Init never looks hung.
func (run *initRun) logProgress() (stop func()) {
	done := make(chan struct{})
	ticker := time.NewTicker(initProgressInterval)
	go func() {
		defer ticker.Stop()
		for {
			select {
			case <-done:
				return
			case <-ticker.C:
				run.mu.Lock()
				written, total, throttled := run.written, run.total, run.throttled
				run.mu.Unlock()
				run.s.loggers.Infof("table %q: init: %d of %d writes done (%d throttled so far)",
					run.s.table, written, total, throttled)
			}
		}
	}()
	return func() { close(done) }
}

// send takes batches and writes them until the run is over.
func (run *initRun) send(ctx context.Context) error {
	s := run.s
	for {
		p, batch, err := run.take(ctx)
		if p == nil {
			return err
		}
		reqs := make([]types.WriteRequest, len(batch))
		for i, w := range batch {
			reqs[i] = w.req
		}
		sent := time.Now()
		out, err := s.client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{
			RequestItems: map[string][]types.WriteRequest{s.table: reqs},
		}, s.callOpts...)
		var unprocessed []types.WriteRequest
		if err == nil {
			unprocessed = out.UnprocessedItems[s.table]
		}
		run.finish(p, batch, sent, unprocessed, err)
	}
}

// take waits for a batch that may be sent: the next partition in turn with ready writes, no
// backoff and pace to spare. A batch is sent short of 25 writes only if its partition has no
// puts waiting or no call in flight carries writes that puts wait for. It returns no partition when the run
// is over, with the error that ended it, if any.
func (run *initRun) take(ctx context.Context) (*initPartition, []*initWrite, error) {
	for {
		run.mu.Lock()
		if run.err != nil || run.unacked == 0 {
			err := run.err
			run.mu.Unlock()
			return nil, nil, err
		}
		now := time.Now()
		var wait time.Duration
		delayed := run.delayed[:0]
		for _, d := range run.delayed {
			if now.Before(d.at) {
				delayed = append(delayed, d)
				if w := d.at.Sub(now); wait == 0 || w < wait {
					wait = w
				}
				continue
			}
			d.p.ready = append(d.writes, d.p.ready...)
		}
		run.delayed = delayed
		for i := range run.partitions {
			p := run.partitions[(run.turn+i)%len(run.partitions)]
			if len(p.ready) == 0 {
				continue
			}
			if len(p.ready) < maxBatchWriteItems && p.blocked > 0 && run.releasing > 0 {
				continue
			}
			if d := p.pace.wait(now); d > 0 {
				if wait == 0 || d < wait {
					wait = d
				}
				continue
			}
			n := min(len(p.ready), maxBatchWriteItems)
			batch := p.ready[:n:n]
			p.ready = p.ready[n:]
			units, resent := 0, 0
			for _, w := range batch {
				units += w.units
				if w.sends > 0 {
					resent++
				}
				w.sends++
			}
			p.pace.spend(units, now)
			if releases(batch) {
				run.releasing++
			}
			run.turn = (run.turn + i + 1) % len(run.partitions)
			run.mu.Unlock()
			run.s.metrics.recordInit(0, resent)
			return p, batch, nil
		}
		changed := run.changed
		run.mu.Unlock()
		var timer *time.Timer
		var expired <-chan time.Time
		if wait > 0 {
			timer = time.NewTimer(wait)
			expired = timer.C
		}
		select {
		case <-ctx.Done():
			run.mu.Lock()
			if run.err == nil {
				run.err = fmt.Errorf("%d of %d writes not done: %w (gave up: %w)",
					run.total-run.written, run.total, cmp.Or(run.lastErr, errors.New("items still unprocessed")), ctx.Err())
				run.wakeLocked()
			}
			run.mu.Unlock()
		case <-changed:
		case <-expired:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// releases says whether a batch carries writes that other puts wait for.
func releases(batch []*initWrite) bool {
	for _, w := range batch {
		if len(w.users) > 0 {
			return true
		}
	}
	return false
}

// finish records the answer to a batch: acknowledged writes release the puts that wait for them,
// the others go back to the front of their queue.
func (run *initRun) finish(p *initPartition, batch []*initWrite, sent time.Time, unprocessed []types.WriteRequest, err error) {
	run.mu.Lock()
	defer run.mu.Unlock()
	defer run.wakeLocked()
	if releases(batch) {
		run.releasing--
	}
	if err != nil {
		run.lastErr = err
	}
	now := time.Now()
	var back []*initWrite
	switch {
	case err != nil && isThroughputError(err):
		back = batch
		p.pace.observe(sent, now, 0, len(batch))
	case err != nil && isTransient(err):
		// After the AWS SDK's own retries: wait longer before the batch's next attempt, without
		// holding up the other batches.
		delay, _ := retry.NewExponentialJitterBackoff(maxRetryBackoff).BackoffDelay(batch[0].sends, err)
		run.delayed = append(run.delayed, delayedBatch{at: now.Add(delay), p: p, writes: batch})
		return
	case err != nil:
		if run.err == nil {
			run.err = err
		}
		return
	default:
		back = pickUnprocessed(batch, unprocessed)
		accepted := 0
		for _, w := range batch {
			accepted += w.units
		}
		for _, w := range back {
			accepted -= w.units
		}
		p.pace.observe(sent, now, accepted, len(back))
	}
	if err == nil || isThroughputError(err) {
		run.throttled += len(back)
		run.s.metrics.recordInit(len(back), 0)
	}
	acked := len(batch) - len(back)
	if acked > 0 {
		returned := make(map[*initWrite]bool, len(back))
		for _, w := range back {
			returned[w] = true
		}
		for _, w := range batch {
			if !returned[w] {
				run.ack(w)
			}
		}
	}
	p.ready = append(back, p.ready...)
	if run.unacked == 0 && len(run.deletes) > 0 {
		run.startDeletes()
	}
}

// ack records that DynamoDB holds w, and readies the puts that waited only for it.
func (run *initRun) ack(w *initWrite) {
	run.written++
	run.unacked--
	for _, user := range w.users {
		user.waiting--
		if user.waiting == 0 {
			up := run.byName[user.namespace]
			up.blocked--
			up.ready = append(up.ready, user)
		}
	}
}

// pickUnprocessed finds the writes of a batch that DynamoDB handed back, by their keys.
func pickUnprocessed(batch []*initWrite, unprocessed []types.WriteRequest) []*initWrite {
	if len(unprocessed) == 0 {
		return nil
	}
	keys := make(map[[2]string]bool, len(unprocessed))
	for _, r := range unprocessed {
		var key map[string]types.AttributeValue
		switch {
		case r.PutRequest != nil:
			key = r.PutRequest.Item
		case r.DeleteRequest != nil:
			key = r.DeleteRequest.Key
		}
		namespace, _ := stringAttr(key, AttrNamespace)
		k, _ := stringAttr(key, AttrKey)
		keys[[2]string{namespace, k}] = true
	}
	var back []*initWrite
	for _, w := range batch {
		if keys[[2]string{w.namespace, w.key}] {
			back = append(back, w)
		}
	}
	return back
}

// isThroughputError says whether DynamoDB refused a call for want of capacity. Other throttling
// errors (of the account's request rate, or of the control plane) are retried as any transient
// failure is.
func isThroughputError(err error) bool {
	var pte *types.ProvisionedThroughputExceededException
	return errors.As(err, &pte)
}

// pacer paces the writes to one partition key. It sends freely until DynamoDB first throttles
// the key; from then on it spends write units from a bucket filled at rate units a second, which
// it sets to what DynamoDB accepts, learnt from the answers (additive increase, multiplicative
// decrease):
//   - at the first throttle, to the units accepted over the last second;
//   - at each throttle after, never below the rate of units accepted in calls sent since the
//     first throttle, over the last second at most (DynamoDB sustains that much: capacity it had
//     saved up is spent by then), nor minPaceRate: at the second, to that rate; later, down by
//     paceDecrease. It slows at most once per paceDecreaseInterval, and only for calls sent
//     after it last slowed, whose answers tell of the new pace;
//   - for each unit accepted in a call with nothing throttled, up by paceIncrease.
type pacer struct {
	rate      float64 // 0 until the first throttle
	tokens    float64
	at        time.Time // when tokens was last brought up to date
	slowedAt  time.Time
	throttled time.Time // the first throttle
	// calibrated says that the rate was set once from what DynamoDB accepted after the first
	// throttle.
	calibrated bool
	// accepted holds the units accepted in calls sent over the last second, and acceptedSum
	// their sum.
	accepted    []acceptedUnits
	acceptedSum int
}

type acceptedUnits struct {
	at    time.Time
	units int
}

// wait is how long to wait before the next batch may be sent.
func (p *pacer) wait(now time.Time) time.Duration {
	if p.rate == 0 {
		return 0
	}
	p.refill(now)
	if p.tokens >= 0 {
		return 0
	}
	return time.Duration(-p.tokens / p.rate * float64(time.Second))
}

func (p *pacer) refill(now time.Time) {
	p.tokens = min(p.tokens+now.Sub(p.at).Seconds()*p.rate, p.rate*paceBurst.Seconds())
	p.at = now
}

// spend takes the units of a batch being sent; the bucket may go into debt by one batch.
func (p *pacer) spend(units int, now time.Time) {
	if p.rate == 0 {
		return
	}
	p.refill(now)
	p.tokens -= float64(units)
}

// observe learns from the answer to a call sent at sent: accepted units, and how many writes
// were throttled.
func (p *pacer) observe(sent, now time.Time, accepted, throttled int) {
	p.accepted = append(p.accepted, acceptedUnits{sent, accepted})
	p.acceptedSum += accepted
	for len(p.accepted) > 0 && now.Sub(p.accepted[0].at) > time.Second {
		p.acceptedSum -= p.accepted[0].units
		p.accepted = p.accepted[1:]
	}
	switch {
	case throttled == 0 && p.rate > 0:
		p.rate += paceIncrease * float64(accepted)
	case throttled == 0:
	case p.rate == 0:
		p.rate = max(float64(p.acceptedSum), minPaceRate)
		p.tokens, p.at, p.slowedAt, p.throttled = 0, now, now, now
	case sent.After(p.slowedAt) && now.Sub(p.slowedAt) >= paceDecreaseInterval:
		rate := p.rate * paceDecrease
		if !p.calibrated {
			// The first rate counted capacity that DynamoDB had saved up; what it accepted
			// since is the rate it sustains.
			rate, p.calibrated = 0, true
		}
		p.rate = max(rate, p.acceptedRate(now), minPaceRate)
		p.slowedAt = now
	}

}

// acceptedRate is the rate of units accepted in calls sent since the first throttle, over the
// last second at most.
func (p *pacer) acceptedRate(now time.Time) float64 {
	since := now.Add(-time.Second)
	if p.throttled.After(since) {
		since = p.throttled
	}
	units := 0
	for _, a := range p.accepted {
		if a.at.After(since) {
			units += a.units
		}
	}
	return float64(units) / now.Sub(since).Seconds()
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
