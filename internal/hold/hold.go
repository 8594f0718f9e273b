// Package hold wraps a real DynamoDB client so that a test can stop a call after DynamoDB has
// answered it and before the store sees the answer, and so force two operations to interleave in
// a chosen order: a read that answered before a write, returning after it.
//
//	hc := hold.New(dynamodb.NewFromConfig(cfg, testenv.WithEndpoint))
//	store := lddynamodb.DataStore(table).DynamoClient(hc)
//	get := hc.Next("GetItem")
//	go store.Get(...)   // DynamoDB answers, the answer waits
//	<-get.Answered()
//	store.Upsert(...)   // runs to the end
//	get.Release()       // now Get returns what it read before the Upsert
package hold

import (
	"context"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// client is the part of the DynamoDB API that the stores call (lddynamodb.Client).
type client interface {
	GetItem(ctx context.Context, params *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, params *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	Query(ctx context.Context, params *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchWriteItem(ctx context.Context, params *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
}

// Client passes every call to the client it wraps, and holds the calls that Next asked for.
type Client struct {
	inner client

	mu    sync.Mutex
	holds map[string][]*Call // by operation, the next calls to hold, in order
}

// Call is one call to hold.
type Call struct {
	answered chan struct{}
	release  chan struct{}
	once     sync.Once
}

// New wraps inner.
func New(inner client) *Client {
	return &Client{inner: inner, holds: map[string][]*Call{}}
}

// Next holds the next call of op ("GetItem", "PutItem", "Query" or "BatchWriteItem") that has
// not been claimed by an earlier Next, once DynamoDB has answered it, until Release (or until
// the call's context ends). A Query of several pages is held page by page.
func (c *Client) Next(op string) *Call {
	call := &Call{answered: make(chan struct{}), release: make(chan struct{})}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.holds[op] = append(c.holds[op], call)
	return call
}

// Answered is closed once DynamoDB has answered the held call.
func (h *Call) Answered() <-chan struct{} { return h.answered }

// Release lets the held call return DynamoDB's answer. It may be called more than once.
func (h *Call) Release() { h.once.Do(func() { close(h.release) }) }

// claim takes the hold for a call of op that is starting, if there is one.
func (c *Client) claim(op string) *Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	queue := c.holds[op]
	if len(queue) == 0 {
		return nil
	}
	c.holds[op] = queue[1:]
	return queue[0]
}

// wait holds a call that DynamoDB has answered, if it was claimed.
func (h *Call) wait(ctx context.Context) {
	if h == nil {
		return
	}
	close(h.answered)
	select {
	case <-h.release:
	case <-ctx.Done():
	}
}

// GetItem calls the wrapped client's GetItem.
func (c *Client) GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	h := c.claim("GetItem")
	out, err := c.inner.GetItem(ctx, in, optFns...)
	h.wait(ctx)
	return out, err
}

// PutItem calls the wrapped client's PutItem.
func (c *Client) PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	h := c.claim("PutItem")
	out, err := c.inner.PutItem(ctx, in, optFns...)
	h.wait(ctx)
	return out, err
}

// Query calls the wrapped client's Query.
func (c *Client) Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	h := c.claim("Query")
	out, err := c.inner.Query(ctx, in, optFns...)
	h.wait(ctx)
	return out, err
}

// BatchWriteItem calls the wrapped client's BatchWriteItem.
func (c *Client) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	h := c.claim("BatchWriteItem")
	out, err := c.inner.BatchWriteItem(ctx, in, optFns...)
	h.wait(ctx)
	return out, err
}
