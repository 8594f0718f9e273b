package lddynamodb

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Init's write engine (for what it writes, see init.go). It keeps the order that the SDK's contract asks of a store that cannot
// write atomically: a put goes out only once every item it uses that this Init writes
// (prerequisite flags, segments of segmentMatch clauses) is acknowledged; deletes go out once
// every put is; the marker last. Items whose dependencies are written go out together, up to
// BatchConcurrency calls at once, and each partition key (flags, segments) is paced to the
// write rate that DynamoDB accepts, learnt from its UnprocessedItems and throughput errors. The
// parts of large items have partition keys of their own, paced as any other; a large item's
// main row waits for its parts like a put for the items it uses, and the delete of a removed
// large item's parts for the delete of its main row.

// initProgressInterval is how often a running Init logs how far it got.
var initProgressInterval = 5 * time.Second

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

// paceDeadlineFactor is how much faster than the rate that would write all of a partition's
// units by the Init's deadline it is paced at least: at that floor, the pace alone would let
// the Init finish in half its time.
const paceDeadlineFactor = 2

// initPartition is the queue and pace of one partition key.
type initPartition struct {
	name    string
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
	units := map[*initPartition]int{}
	for _, w := range plan.deletes {
		units[run.partition(w.namespace)] += w.units
	}
	for _, w := range plan.puts {
		p := run.partition(w.namespace)
		units[p] += w.units
		if w.waiting == 0 {
			p.ready = append(p.ready, w)
		} else {
			p.blocked++
		}
	}
	if deadline, ok := ctx.Deadline(); ok {
		for _, p := range run.partitions {
			p.pace.floor = paceDeadlineFactor * float64(units[p]) / max(time.Until(deadline).Seconds(), 1)
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
		p = &initPartition{name: name}
		run.byName[name] = p
		run.partitions = append(run.partitions, p)
	}
	return p
}

// startDeletes queues the deletes, once every put is acknowledged.
func (run *initRun) startDeletes() {
	for _, w := range run.deletes {
		p := run.partition(w.namespace)
		if w.waiting == 0 {
			p.ready = append(p.ready, w)
		} else {
			p.blocked++
		}
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
				written, total, throttled, pacing := run.written, run.total, run.throttled, run.pacingLocked()
				run.mu.Unlock()
				run.s.loggers.Infof("table %q: init: %d of %d writes done (%d throttled so far)%s",
					run.s.table, written, total, throttled, pacing)
			}
		}
	}()
	return func() { close(done) }
}

// pacingLocked describes the pace of each paced partition, for the progress log and the error
// of an Init that runs out of time, saying so where the deadline's floor, not what DynamoDB
// accepted, sets the pace.
func (run *initRun) pacingLocked() string {
	var b strings.Builder
	for _, p := range run.partitions {
		if !p.pace.paced() {
			continue
		}
		fmt.Fprintf(&b, "; %q paced to %.0f write units a second", p.name, p.pace.pace())
		if p.pace.held() {
			fmt.Fprintf(&b, ", its floor, twice the rate that writes all its units by the init timeout (DynamoDB took about %.0f)",
				p.pace.rate)
		}
	}
	return b.String()
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
		}, append(s.callOpts, withoutThroughputRetries)...)
		var unprocessed []types.WriteRequest
		if err == nil {
			unprocessed = out.UnprocessedItems[s.table]
		}
		run.finish(p, batch, sent, unprocessed, err)
	}
}

// take waits for a batch that may be sent: the next partition in turn with ready writes, no
// backoff and pace to spare. Batches are cut at 25 writes or 16 MB as sent. A batch is sent short of 25 writes only if its partition has no
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
			n := batchLength(p.ready)
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
			run.s.rec.add(countResent, resent)
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
				run.err = fmt.Errorf("%d of %d writes not done%s: %w (gave up: %w)",
					run.total-run.written, run.total, run.pacingLocked(), cmp.Or(run.lastErr, errors.New("items still unprocessed")), ctx.Err())
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

// batchLength is how many of the ready writes go in the next batch: at most maxBatchWriteItems,
// and no more than fit in maxBatchWriteBytes.
func batchLength(ready []*initWrite) int {
	n, bytes := 0, 0
	for n < len(ready) && n < maxBatchWriteItems && (n == 0 || bytes+ready[n].wireBytes <= maxBatchWriteBytes) {
		bytes += ready[n].wireBytes
		n++
	}
	return n
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
	units := 0
	for _, w := range batch {
		units += w.units
	}
	var back []*initWrite
	switch {
	case err != nil && isThroughputError(err):
		back = batch
		p.pace.observe(sent, now, units, 0)
	case err != nil && isTransient(err):
		// After the AWS SDK's own retries: wait longer before the batch's next attempt, without
		// holding up the other batches.
		p.pace.forget(units)
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
		accepted := units
		for _, w := range back {
			accepted -= w.units
		}
		p.pace.observe(sent, now, units, accepted)
	}
	if err == nil || isThroughputError(err) {
		run.throttled += len(back)
		run.s.rec.add(countThrottled, len(back))
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
	if w.partBytes > 0 {
		run.s.rec.add(countPartsWritten, 1)
		run.s.rec.add(countPartBytesWritten, w.partBytes)
	}
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

// withoutThroughputRetries keeps the AWS SDK from retrying a BatchWriteItem that DynamoDB
// refused for want of capacity: the engine sends it again itself, at the pace that the refusal
// teaches, where the SDK's retries would spend the capacity unseen by the pacer.
func withoutThroughputRetries(o *dynamodb.Options) {
	if r, ok := o.Retryer.(aws.RetryerV2); ok {
		o.Retryer = throughputNotRetried{r}
	}
}

type throughputNotRetried struct{ aws.RetryerV2 }

func (r throughputNotRetried) IsErrorRetryable(err error) bool {
	return !isThroughputError(err) && r.RetryerV2.IsErrorRetryable(err)
}

// isThroughputError says whether DynamoDB refused a call for want of capacity. Other throttling
// errors (of the account's request rate, or of the control plane) are retried as any transient
// failure is.
func isThroughputError(err error) bool {
	var pte *types.ProvisionedThroughputExceededException
	return errors.As(err, &pte)
}
