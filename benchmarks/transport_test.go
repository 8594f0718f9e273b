package benchmarks

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
)

// counter is an http.RoundTripper that counts the DynamoDB calls sent through it, by operation,
// and the rows they wrote. Both stores send their calls through one, so that they are measured
// the same way: a call is one HTTP request (the AWS SDK's retries count again), and a row is
// written by a PutItem that succeeded or by a request of a BatchWriteItem that DynamoDB did not
// hand back in UnprocessedItems. It reads the bodies as they stream past, without copying them.
type counter struct {
	next http.RoundTripper

	mu      sync.Mutex
	calls   map[string]int64
	written atomic.Int64
}

func newCounter(next http.RoundTripper) *counter {
	return &counter{next: next, calls: map[string]int64{}}
}

// RoundTrip counts one call and passes it on.
func (c *counter) RoundTrip(req *http.Request) (*http.Response, error) {
	target := req.Header.Get("X-Amz-Target")
	op := target[strings.LastIndex(target, ".")+1:]
	c.mu.Lock()
	c.calls[op]++
	c.mu.Unlock()
	var sent *writeCounter
	if op == "BatchWriteItem" && req.Body != nil {
		sent = &writeCounter{ReadCloser: req.Body}
		counted := *req
		counted.Body = sent
		req = &counted
	}
	resp, err := c.next.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	switch {
	case op == "PutItem":
		c.written.Add(1)
	case sent != nil:
		// The response lists the requests left unprocessed; the client reads it all and closes it.
		resp.Body = &writeCounter{ReadCloser: resp.Body, onClose: func(unprocessed int64) {
			c.written.Add(sent.n.Load() - unprocessed)
		}}
	}
	return resp, nil
}

// snapshot returns the calls of every operation and the rows written so far.
func (c *counter) snapshot() (calls map[string]int64, written int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	calls = make(map[string]int64, len(c.calls))
	for op, n := range c.calls {
		calls[op] = n
	}
	return calls, c.written.Load()
}

// writeTokens mark one write request in a BatchWriteItem body, in its RequestItems or in its
// response's UnprocessedItems. Inside an item's JSON (a string value) the quotes are escaped, so
// the tokens match only the requests themselves.
var writeTokens = [][]byte{[]byte(`"PutRequest"`), []byte(`"DeleteRequest"`)}

// overlap is how many bytes of one read a token can share with the reads before it.
const overlap = len(`"DeleteRequest"`) - 1

// writeCounter counts the write requests in a body as it is read, in chunks of any size.
type writeCounter struct {
	io.ReadCloser
	n       atomic.Int64
	tail    [overlap]byte // the last bytes read so far
	tailLen int
	onClose func(n int64)
}

func (w *writeCounter) Read(p []byte) (int, error) {
	n, err := w.ReadCloser.Read(p)
	w.count(p[:n])
	return n, err
}

// count adds the tokens in p, and those that begin in the bytes before p and end in it.
func (w *writeCounter) count(p []byte) {
	tail := w.tail[:w.tailLen]
	head := p[:min(len(p), overlap)]
	var joinBuf [2 * overlap]byte
	joint := append(append(joinBuf[:0], tail...), head...)
	var n int
	for _, token := range writeTokens {
		n += bytes.Count(p, token) + bytes.Count(joint, token) - bytes.Count(tail, token) - bytes.Count(head, token)
	}
	w.n.Add(int64(n))
	if len(p) >= overlap {
		w.tailLen = copy(w.tail[:], p[len(p)-overlap:])
	} else {
		w.tailLen = copy(w.tail[:], joint[max(0, len(joint)-overlap):])
	}
}

func (w *writeCounter) Close() error {
	if w.onClose != nil {
		w.onClose(w.n.Load())
		w.onClose = nil
	}
	return w.ReadCloser.Close()
}
