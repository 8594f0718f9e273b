// Package faults puts DynamoDB's failures between an AWS client and a local DynamoDB server, for
// tests: throttling and server errors with DynamoDB's own error bodies, BatchWriteItem calls
// that process only part of their items, connection resets before or after the server saw a
// request, and latency. The local servers never fail this way on their own.
//
// An Injector is an http.RoundTripper. Give it to a client with ClientOption:
//
//	inj := faults.New(seed, nil)
//	inj.Set("BatchWriteItem", faults.Fault{ThrottleRate: 0.2, UnprocessedRate: 0.3})
//	store := lddynamodb.DataStore(table).
//		ClientConfig(testenv.AWSConfig(), testenv.WithEndpoint, inj.ClientOption())
//
// Each call gets the next action scripted for its operation (Script), if any, and otherwise a
// random one drawn from the operation's Fault with the seeded generator, so a seed replays the
// same faults for the same sequence of calls. Every call is recorded (Calls, CountByOp), with
// when it was sent and answered and which rows it wrote.
//
// SetWriteRate makes writes pass only at a number of write units a second per partition key, as
// one DynamoDB partition does; SetWriteSchedule makes that number change over time, as when other
// writers start or stop sharing the partition. Fault.UnprocessedRate hands back part of a share of
// BatchWriteItem calls whatever the rate they are sent at, as DynamoDB does for reasons of its
// own.
//
// Requests are forwarded as they are, except a partial BatchWriteItem, whose body is rewritten
// after the client signed it: that suits local servers, which do not check signatures, and would
// be refused by AWS.
package faults

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// Action is what the Injector does with one call.
type Action int

// The actions. The error actions answer without forwarding the request, as DynamoDB does when it
// throttles or fails before doing any work.
const (
	// Pass forwards the call unchanged.
	Pass Action = iota
	// ProvisionedThroughputExceeded answers HTTP 400 ProvisionedThroughputExceededException.
	ProvisionedThroughputExceeded
	// Throttling answers HTTP 400 ThrottlingException.
	Throttling
	// RequestLimitExceeded answers HTTP 400 RequestLimitExceeded.
	RequestLimitExceeded
	// InternalServerError answers HTTP 500 InternalServerError.
	InternalServerError
	// ServiceUnavailable answers HTTP 503 ServiceUnavailable.
	ServiceUnavailable
	// Unprocessed forwards a random part of a BatchWriteItem's requests (possibly none, never
	// all) and returns the others in UnprocessedItems. Other operations pass.
	Unprocessed
	// ResetBefore fails the call with a connection reset; the server never sees it.
	ResetBefore
	// ResetAfter forwards the call, lets the server finish it, and then fails it with a
	// connection reset, so the client cannot know that it succeeded.
	ResetAfter
	// ExpiredToken answers HTTP 400 ExpiredTokenException, as DynamoDB does to a request signed
	// with expired temporary credentials: a failure that no retry fixes. Only scripted.
	ExpiredToken
)

var actionNames = [...]string{"Pass", "ProvisionedThroughputExceeded", "Throttling", "RequestLimitExceeded",
	"InternalServerError", "ServiceUnavailable", "Unprocessed", "ResetBefore", "ResetAfter", "ExpiredToken"}

func (a Action) String() string {
	if a < 0 || int(a) >= len(actionNames) {
		return "Action(" + strconv.Itoa(int(a)) + ")"
	}
	return actionNames[a]
}

// errorReply is a DynamoDB error response, as DynamoDB sends it.
type errorReply struct {
	status  int
	typ     string
	message string
}

var errorReplies = map[Action]errorReply{
	ProvisionedThroughputExceeded: {400, "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
		"The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API."},
	Throttling: {400, "com.amazon.coral.availability#ThrottlingException",
		"Rate of requests exceeds the allowed throughput."},
	RequestLimitExceeded: {400, "com.amazonaws.dynamodb.v20120810#RequestLimitExceeded",
		"Throughput exceeds the current throughput limit for your account. Please contact AWS Support at https://aws.amazon.com/support request a limit increase"},
	InternalServerError: {500, "com.amazonaws.dynamodb.v20120810#InternalServerError", "Internal server error"},
	ServiceUnavailable:  {503, "com.amazonaws.dynamodb.v20120810#ServiceUnavailableException", "Service Unavailable"},
	ExpiredToken:        {400, "com.amazon.coral.service#ExpiredTokenException", "The security token included in the request is expired"},
}

// Fault describes the random faults of an operation. The rates are probabilities per call,
// drawn in the order ResetBefore, Throttle, Error, Unprocessed, ResetAfter; if they add up to
// more than 1, the later ones get what is left.
type Fault struct {
	// ThrottleRate answers ProvisionedThroughputExceeded, Throttling or RequestLimitExceeded,
	// chosen at random.
	ThrottleRate float64
	// ErrorRate answers InternalServerError (500) or ServiceUnavailable (503), chosen at random.
	ErrorRate float64
	// UnprocessedRate is the fraction of BatchWriteItem calls that process only part of their
	// items (Unprocessed). It is drawn for each call, so it does not depend on the rate at which
	// calls are sent: refusals that sending slower does not cure.
	UnprocessedRate float64
	// ResetBeforeRate resets the connection before the server sees the call.
	ResetBeforeRate float64
	// ResetAfterRate resets the connection after the server has done the call.
	ResetAfterRate float64
	// Latency delays every call before anything else happens (or until its context ends).
	Latency time.Duration
	// Jitter adds a random delay between zero and Jitter to Latency, drawn for each call, so
	// that calls sent together are answered in any order.
	Jitter time.Duration
	// Outage fails every call with a connection reset before it reaches the server, as when
	// DynamoDB cannot be reached at all; the rates are then ignored.
	Outage bool
}

// Call is the record of one call that the Injector received.
type Call struct {
	// Op is the DynamoDB operation, such as "GetItem", from the X-Amz-Target header.
	Op string
	// Action is what the Injector did.
	Action Action
	// Forwarded says whether the server received the call (or the forwarded part of it).
	Forwarded bool
	// Items is the number of write requests in a BatchWriteItem call, and Unprocessed how many
	// of them the Injector handed back without forwarding them.
	Items, Unprocessed int
	// Status is the HTTP status the client got, or 0 if it got an error instead.
	Status int
	// Sent is when the Injector received the call, and Answered when it returned the answer.
	Sent, Answered time.Time
	// Writes are the rows a BatchWriteItem call asked to put or delete, in its order.
	Writes []Write
}

// Write is one put or delete of a BatchWriteItem call.
type Write struct {
	Namespace, Key string
	Delete         bool
	// Units is what the write costs in write units: one per KB of the row put, rounded up; one
	// for a delete.
	Units int
	// Held says that the write was handed back in UnprocessedItems or refused with the whole
	// call (the server did not do it); the other writes of a call answered 200 were done.
	Held bool
}

// Injector is an http.RoundTripper that injects faults into DynamoDB calls. It is safe for
// concurrent use.
type Injector struct {
	next http.RoundTripper

	mu       sync.Mutex
	rng      *rand.Rand
	faults   map[string]Fault // by operation, "" for every operation without its own
	scripts  map[string][]Action
	calls    []Call
	requests int // numbers the fake request IDs

	schedule Schedule  // write units a second per partition key; none for no limit
	started  time.Time // the first write the schedule limited
	buckets  map[string]*bucket
}

// Step is one step of a Schedule: from At (since the first write limited) on, Rate write units a
// second per partition key.
type Step struct {
	At   time.Duration
	Rate float64
}

// Schedule is a write limit that changes over time: its steps in order of At, the first at 0.
type Schedule []Step

// rate is the limit at d after the first write.
func (s Schedule) rate(d time.Duration) float64 {
	rate := 0.0
	for _, step := range s {
		if step.At <= d {
			rate = step.Rate
		}
	}
	return rate
}

// units is how many units the limit adds to a bucket from from to to.
func (s Schedule) units(from, to time.Duration) float64 {
	total := 0.0
	for n, step := range s {
		end := to
		if n+1 < len(s) && s[n+1].At < end {
			end = s[n+1].At
		}
		if begin := max(from, step.At); end > begin {
			total += (end - begin).Seconds() * step.Rate
		}
	}
	return total
}

// Floor is the least time in which units write units can pass to one partition key under the
// schedule, sent from its start: one second of the first rate at once (the bucket starts full),
// then as fast as the schedule adds them. It is what a perfect sender takes.
func (s Schedule) Floor(units float64) time.Duration {
	return s.FloorAt(units, 0)
}

// FloorAt is Floor for a sender that can send at most sendRate units a second (0 for no bound):
// the least time a perfect sender on a machine that fast takes.
func (s Schedule) FloorAt(units, sendRate float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	if sendRate <= 0 {
		left := units - s[0].Rate
		for n, step := range s {
			if left <= 0 {
				return step.At
			}
			if n+1 == len(s) || step.Rate*(s[n+1].At-step.At).Seconds() >= left {
				return step.At + time.Duration(left/step.Rate*float64(time.Second))
			}
			left -= step.Rate * (s[n+1].At - step.At).Seconds()
		}
		return s[len(s)-1].At
	}
	// A millisecond at a time: the bucket fills as the schedule says, and the sender takes what
	// it holds, at most sendRate.
	const tick = time.Millisecond
	bucket, passed := s[0].Rate, 0.0
	for t := time.Duration(0); ; t += tick {
		bucket = min(s.rate(t), bucket+s.units(t, t+tick))
		sent := min(bucket, sendRate*tick.Seconds(), units-passed)
		bucket -= sent
		passed += sent
		if passed >= units {
			return t + tick
		}
	}
}

// bucket is the write capacity of one partition key: up to one second of the current rate,
// refilled continuously.
type bucket struct {
	units float64
	at    time.Time
}

// New returns an Injector that draws its random faults from seed and sends what it forwards to
// next; a nil next is a transport of its own, which CloseIdleConnections releases.
func New(seed int64, next http.RoundTripper) *Injector {
	if next == nil {
		next = http.DefaultTransport.(*http.Transport).Clone()
	}
	return &Injector{
		next:    next,
		rng:     rand.New(rand.NewSource(seed)),
		faults:  map[string]Fault{},
		scripts: map[string][]Action{},
	}
}

// ClientOption makes a DynamoDB client send its calls through the Injector; pass it to
// dynamodb.NewFromConfig or a store's ClientOptions.
func (i *Injector) ClientOption() func(*dynamodb.Options) {
	return func(o *dynamodb.Options) { o.HTTPClient = &http.Client{Transport: i} }
}

// SetWriteRate limits the writes of every partition key (namespace) to unitsPerSecond write
// units a second, as DynamoDB limits one partition to 1,000: each key has a bucket of one
// second's units, full at first and refilled continuously. A BatchWriteItem forwards its writes
// in order while the bucket of each one's key holds its units, hands the others back in
// UnprocessedItems, and fails with ProvisionedThroughputExceededException if it could forward
// none; a PutItem, UpdateItem or DeleteItem whose key's bucket is empty fails so too. Zero turns
// the limit off. Random and scripted faults come first: the limit applies to calls they pass.
func (i *Injector) SetWriteRate(unitsPerSecond float64) {
	if unitsPerSecond == 0 {
		i.SetWriteSchedule()
		return
	}
	i.SetWriteSchedule(Step{0, unitsPerSecond})
}

// SetWriteSchedule limits the writes of every partition key as SetWriteRate does, to a rate that
// follows the steps, timed from the first write it limits; each key's bucket holds at most one
// second of the current rate, so a falling limit also drops the capacity saved up. No steps turn
// the limit off.
func (i *Injector) SetWriteSchedule(steps ...Step) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.schedule = steps
	i.started = time.Time{}
	i.buckets = map[string]*bucket{}
}

// takeUnits takes units from a partition key's bucket if it holds them.
func (i *Injector) takeUnits(namespace string, units int, now time.Time) bool {
	if i.started.IsZero() {
		i.started = now
	}
	d := now.Sub(i.started)
	rate := i.schedule.rate(d)
	b := i.buckets[namespace]
	if b == nil {
		b = &bucket{units: rate, at: now}
		i.buckets[namespace] = b
	}
	b.units = min(rate, b.units+i.schedule.units(b.at.Sub(i.started), d))
	b.at = now
	if b.units < float64(units) {
		return false
	}
	b.units -= float64(units)
	return true
}

// Set sets the random faults of one operation ("GetItem", "BatchWriteItem", ...), or with op ""
// of every operation that has none of its own.
func (i *Injector) Set(op string, f Fault) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.faults[op] = f
}

// SetAll sets the random faults of every operation, replacing those of single operations.
func (i *Injector) SetAll(f Fault) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.faults = map[string]Fault{"": f}
}

// Script queues actions for the next calls of an operation (op "" for the next calls of any
// operation that has no script of its own), one per call, before any random fault applies.
func (i *Injector) Script(op string, actions ...Action) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.scripts[op] = append(i.scripts[op], actions...)
}

// Clear removes every fault and script, so that calls pass; the record of calls is kept.
func (i *Injector) Clear() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.faults = map[string]Fault{}
	i.scripts = map[string][]Action{}
}

// Calls returns the record of every call so far, in the order they arrived.
func (i *Injector) Calls() []Call {
	i.mu.Lock()
	defer i.mu.Unlock()
	return append([]Call(nil), i.calls...)
}

// CountByOp returns how many calls of each operation arrived.
func (i *Injector) CountByOp() map[string]int {
	i.mu.Lock()
	defer i.mu.Unlock()
	counts := map[string]int{}
	for _, c := range i.calls {
		counts[c.Op]++
	}
	return counts
}

// CloseIdleConnections closes the idle connections of the transport the Injector forwards to.
func (i *Injector) CloseIdleConnections() {
	if c, ok := i.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// opOf reads the operation from a request's X-Amz-Target header ("DynamoDB_20120810.GetItem").
func opOf(req *http.Request) string {
	target := req.Header.Get("X-Amz-Target")
	return target[strings.LastIndex(target, ".")+1:]
}

// choose picks the action for a call of op, and its latency.
func (i *Injector) choose(op string) (Action, time.Duration) {
	i.mu.Lock()
	defer i.mu.Unlock()
	f, ok := i.faults[op]
	if !ok {
		f = i.faults[""]
	}
	latency := f.Latency
	if f.Jitter > 0 {
		latency += time.Duration(i.rng.Int63n(int64(f.Jitter)))
	}
	for _, name := range []string{op, ""} {
		if script := i.scripts[name]; len(script) > 0 {
			i.scripts[name] = script[1:]
			return script[0], latency
		}
	}
	if f.Outage {
		return ResetBefore, latency
	}
	r := i.rng.Float64()
	for _, c := range []struct {
		rate    float64
		actions []Action
	}{
		{f.ResetBeforeRate, []Action{ResetBefore}},
		{f.ThrottleRate, []Action{ProvisionedThroughputExceeded, Throttling, RequestLimitExceeded}},
		{f.ErrorRate, []Action{InternalServerError, ServiceUnavailable}},
		{f.UnprocessedRate, []Action{Unprocessed}},
		{f.ResetAfterRate, []Action{ResetAfter}},
	} {
		if r < c.rate {
			action := c.actions[i.rng.Intn(len(c.actions))]
			if action == Unprocessed && op != "BatchWriteItem" {
				action = Pass
			}
			return action, latency
		}
		r -= c.rate
	}
	return Pass, latency
}

func (i *Injector) record(c Call) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.calls = append(i.calls, c)
}

// RoundTrip applies the next action to one call.
func (i *Injector) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := readBody(req)
	if err != nil {
		return nil, err
	}
	call := Call{Op: opOf(req), Sent: time.Now()}
	if call.Op == "BatchWriteItem" {
		call.Writes = batchWrites(body)
	}
	var latency time.Duration
	call.Action, latency = i.choose(call.Op)
	if latency > 0 {
		timer := time.NewTimer(latency)
		select {
		case <-req.Context().Done():
			timer.Stop()
			i.record(call)
			return nil, req.Context().Err()
		case <-timer.C:
		}
	}
	if call.Action == Pass {
		call.Action = i.limitRate(call.Op, body, &call)
	}
	resp, err := i.apply(req, body, call.Action, &call)
	if resp != nil {
		call.Status = resp.StatusCode
	}
	if !call.Forwarded || (resp != nil && resp.StatusCode != http.StatusOK) {
		for n := range call.Writes {
			call.Writes[n].Held = true
		}
	}
	call.Answered = time.Now()
	i.record(call)
	return resp, err
}

// limitRate applies SetWriteRate to a call that would pass: it returns Pass, Unprocessed (with
// the writes to hand back marked Held) or ProvisionedThroughputExceeded.
func (i *Injector) limitRate(op string, body []byte, call *Call) Action {
	i.mu.Lock()
	defer i.mu.Unlock()
	if len(i.schedule) == 0 {
		return Pass
	}
	now := time.Now()
	switch op {
	case "BatchWriteItem":
		passed := 0
		for n, w := range call.Writes {
			if i.takeUnits(w.Namespace, w.Units, now) {
				passed++
			} else {
				call.Writes[n].Held = true
			}
		}
		switch passed {
		case len(call.Writes):
			return Pass
		case 0:
			return ProvisionedThroughputExceeded
		}
		return Unprocessed
	case "PutItem", "UpdateItem", "DeleteItem":
		var in struct {
			Item, Key map[string]map[string]json.RawMessage
		}
		_ = json.Unmarshal(body, &in)
		item, units := in.Item, rowUnits(in.Item)
		if item == nil {
			item, units = in.Key, 1
		}
		if !i.takeUnits(stringValue(item["namespace"]), units, now) {
			return ProvisionedThroughputExceeded
		}
	}
	return Pass
}

func (i *Injector) apply(req *http.Request, body []byte, action Action, call *Call) (*http.Response, error) {
	switch action {
	case ResetBefore:
		return nil, connectionReset()
	case ProvisionedThroughputExceeded, Throttling, RequestLimitExceeded, InternalServerError, ServiceUnavailable, ExpiredToken:
		e := errorReplies[action]
		reply, _ := json.Marshal(map[string]string{"__type": e.typ, "message": e.message})
		return i.response(req, e.status, reply), nil
	case Unprocessed:
		if call.Op == "BatchWriteItem" {
			return i.partialBatch(req, body, call)
		}
	}
	call.Forwarded = true
	call.Items = countWrites(call.Op, body)
	resp, err := i.forward(req, body)
	if err != nil || action != ResetAfter {
		return resp, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return nil, connectionReset()
}

// batchRequest is a BatchWriteItem request or response with its write requests unparsed.
type batchRequest = map[string][]json.RawMessage

func countWrites(op string, body []byte) int {
	if op != "BatchWriteItem" {
		return 0
	}
	var in struct{ RequestItems batchRequest }
	if json.Unmarshal(body, &in) != nil {
		return 0
	}
	n := 0
	for _, reqs := range in.RequestItems {
		n += len(reqs)
	}
	return n
}

// partialBatch forwards a random part of a BatchWriteItem's requests and adds the others to the
// UnprocessedItems of the response.
func (i *Injector) partialBatch(req *http.Request, body []byte, call *Call) (*http.Response, error) {
	var in map[string]json.RawMessage
	var items batchRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, fmt.Errorf("faults: BatchWriteItem body: %w", err)
	}
	if err := json.Unmarshal(in["RequestItems"], &items); err != nil {
		return nil, fmt.Errorf("faults: BatchWriteItem RequestItems: %w", err)
	}
	type write struct {
		table string
		req   json.RawMessage
	}
	var all []write
	for table, reqs := range items {
		for _, r := range reqs {
			all = append(all, write{table, r})
		}
	}
	call.Items = len(all)
	// The writes to hand back: those the rate limit marked, or a random part (none to all but
	// one).
	hold := make([]bool, len(all))
	limited := false
	for n, w := range call.Writes {
		if w.Held && n < len(hold) {
			hold[n], limited = true, true
		}
	}
	if !limited && len(all) > 0 {
		i.mu.Lock()
		keep := i.rng.Intn(len(all))
		for n, idx := range i.rng.Perm(len(all)) {
			hold[idx] = n >= keep
		}
		i.mu.Unlock()
	}
	forwarded, held := batchRequest{}, batchRequest{}
	keep := 0
	for idx, w := range all {
		if hold[idx] {
			held[w.table] = append(held[w.table], w.req)
			call.Unprocessed++
			if idx < len(call.Writes) {
				call.Writes[idx].Held = true
			}
		} else {
			forwarded[w.table] = append(forwarded[w.table], w.req)
			keep++
		}
	}
	out := map[string]json.RawMessage{}
	if keep > 0 {
		call.Forwarded = true
		in["RequestItems"], _ = json.Marshal(forwarded)
		newBody, _ := json.Marshal(in)
		resp, err := i.forward(req, newBody)
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return i.response(req, resp.StatusCode, data), nil
		}
		if err := json.Unmarshal(data, &out); err != nil {
			return nil, fmt.Errorf("faults: BatchWriteItem response: %w", err)
		}
		var unprocessed batchRequest
		if raw, ok := out["UnprocessedItems"]; ok {
			if err := json.Unmarshal(raw, &unprocessed); err != nil {
				return nil, fmt.Errorf("faults: BatchWriteItem UnprocessedItems: %w", err)
			}
		}
		for table, reqs := range unprocessed {
			held[table] = append(held[table], reqs...)
		}
	}
	out["UnprocessedItems"], _ = json.Marshal(held)
	data, _ := json.Marshal(out)
	return i.response(req, http.StatusOK, data), nil
}

// batchWrites lists the writes of a BatchWriteItem request, in the order of its body (one
// table, as the stores send them).
func batchWrites(body []byte) []Write {
	var in struct {
		RequestItems map[string][]struct {
			PutRequest *struct {
				Item map[string]map[string]json.RawMessage
			}
			DeleteRequest *struct {
				Key map[string]map[string]json.RawMessage
			}
		}
	}
	if json.Unmarshal(body, &in) != nil {
		return nil
	}
	var writes []Write
	for _, reqs := range in.RequestItems {
		for _, r := range reqs {
			switch {
			case r.PutRequest != nil:
				item := r.PutRequest.Item
				writes = append(writes, Write{Namespace: stringValue(item["namespace"]), Key: stringValue(item["key"]),
					Units: rowUnits(item)})
			case r.DeleteRequest != nil:
				key := r.DeleteRequest.Key
				writes = append(writes, Write{Namespace: stringValue(key["namespace"]), Key: stringValue(key["key"]),
					Delete: true, Units: 1})
			}
		}
	}
	return writes
}

// stringValue is the value of a DynamoDB JSON string attribute ({"S": "..."}), or "".
func stringValue(attr map[string]json.RawMessage) string {
	var s string
	_ = json.Unmarshal(attr["S"], &s)
	return s
}

// rowUnits is the write units of a row in DynamoDB JSON: one per KB, rounded up, of its
// attribute names and values (strings by their bytes, numbers by their digits, a little more
// than DynamoDB counts them).
func rowUnits(row map[string]map[string]json.RawMessage) int {
	size := 0
	for name, typed := range row {
		size += len(name)
		for typ, raw := range typed {
			var s string
			var ss []string
			switch typ {
			case "S":
				_ = json.Unmarshal(raw, &s)
				size += len(s)
			case "N":
				_ = json.Unmarshal(raw, &s)
				size += len(s)/2 + 2
			case "SS":
				_ = json.Unmarshal(raw, &ss)
				for _, s := range ss {
					size += len(s)
				}
			default:
				size += len(raw)
			}
		}
	}
	return max(1, (size+1023)/1024)
}

// forward sends a request with the given body to the server.
func (i *Injector) forward(req *http.Request, body []byte) (*http.Response, error) {
	out := req.Clone(req.Context())
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	out.ContentLength = int64(len(body))
	out.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return i.next.RoundTrip(out)
}

// response is a reply as DynamoDB makes it, with the CRC32 header that the AWS SDK checks.
func (i *Injector) response(req *http.Request, status int, body []byte) *http.Response {
	i.mu.Lock()
	i.requests++
	id := fmt.Sprintf("FAULTS%026d", i.requests)
	i.mu.Unlock()
	header := http.Header{}
	header.Set("Content-Type", "application/x-amz-json-1.0")
	header.Set("Content-Length", strconv.Itoa(len(body)))
	header.Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10))
	header.Set("X-Amzn-Requestid", id)
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", status, http.StatusText(status)),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        header,
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}

func readBody(req *http.Request) ([]byte, error) {
	if req.Body == nil {
		return nil, nil
	}
	defer req.Body.Close()
	return io.ReadAll(req.Body)
}

// connectionReset is the error a client sees when the server resets the connection.
func connectionReset() error {
	return &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
}
