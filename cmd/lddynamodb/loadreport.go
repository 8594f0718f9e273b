package main

// What load reports: how many rows the store's Init wrote and deleted, counted from the calls
// that DynamoDB accepted, and which items the store did not store and why, taken from the error
// lines that the store logs for them.

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
	"github.com/launchdarkly/go-sdk-common/v3/ldlog"

	"github.com/lddynamodb/lddynamodb"
)

// writeCounter counts the item rows that DynamoDB accepted from a client's writes: puts and
// deletes, less the ones a BatchWriteItem handed back unprocessed. The initialized marker is not
// an item and is not counted.
type writeCounter struct {
	marker string

	mu      sync.Mutex
	written int
	deleted int
}

// middleware adds the counter to a client's calls.
func (c *writeCounter) middleware(stack *middleware.Stack) error {
	count := middleware.InitializeMiddlewareFunc("lddynamodbWriteCounter", func(ctx context.Context,
		in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		out, md, err := next.HandleInitialize(ctx, in)
		if err == nil {
			c.add(in.Parameters, out.Result)
		}
		return out, md, err
	})
	return stack.Initialize.Add(count, middleware.After)
}

func (c *writeCounter) add(params, result any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch in := params.(type) {
	case *dynamodb.BatchWriteItemInput:
		puts, deletes := countWrites(in.RequestItems)
		if out, ok := result.(*dynamodb.BatchWriteItemOutput); ok {
			unprocessedPuts, unprocessedDeletes := countWrites(out.UnprocessedItems)
			puts, deletes = puts-unprocessedPuts, deletes-unprocessedDeletes
		}
		c.written += puts
		c.deleted += deletes
	case *dynamodb.PutItemInput:
		if namespace, _ := stringAttr(in.Item, lddynamodb.AttrNamespace); namespace != c.marker {
			c.written++
		}
	case *dynamodb.DeleteItemInput:
		c.deleted++
	}
}

// counts returns the rows written and deleted so far.
func (c *writeCounter) counts() (written, deleted int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.written, c.deleted
}

func countWrites(requests map[string][]types.WriteRequest) (puts, deletes int) {
	for _, reqs := range requests {
		for _, req := range reqs {
			if req.PutRequest != nil {
				puts++
			} else if req.DeleteRequest != nil {
				deletes++
			}
		}
	}
	return puts, deletes
}

// skipMarker is in the line that the store logs at error level for an item it did not store.
const skipMarker = " not stored: "

// storeLog writes the store's log lines to w and keeps those about items not stored.
type storeLog struct {
	w io.Writer

	mu      *sync.Mutex
	skipped *[]string
}

func (l storeLog) Println(values ...any) { l.Printf("%s", fmt.Sprint(values...)) }

func (l storeLog) Printf(format string, values ...any) {
	msg := fmt.Sprintf(format, values...)
	fmt.Fprintln(l.w, msg)
	if strings.Contains(msg, skipMarker) {
		l.mu.Lock()
		defer l.mu.Unlock()
		*l.skipped = append(*l.skipped, msg)
	}
}

// loadLoggers are the store's loggers for load: warnings and errors to w, and the error lines of
// skipped items also kept, so that the summary can list them again.
func loadLoggers(w io.Writer) (ldlog.Loggers, func() []string) {
	var mu sync.Mutex
	var skipped []string
	loggers := ldlog.NewDefaultLoggers()
	loggers.SetMinLevel(ldlog.Warn)
	loggers.SetBaseLogger(storeLog{w: w, mu: &mu, skipped: &skipped})
	return loggers, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), skipped...)
	}
}

// loadSummary is what load did, in counts that a user can check against the file and the table.
type loadSummary struct {
	file, table, prefix string
	live, deleted       int // the file's items
	written, removed    int // rows put and deleted
	skipped             []string
	calls               int64
}

func (s loadSummary) print(w io.Writer) {
	unchanged := s.live + s.deleted - s.written - len(s.skipped)
	fmt.Fprintf(w, "loaded %s into table %q, prefix %q: %d flags and segments and %d deleted items in the file; %d rows written, %d deleted, %d unchanged, %d skipped; %d DynamoDB calls\n",
		s.file, s.table, s.prefix, s.live, s.deleted, s.written, s.removed, unchanged, len(s.skipped), s.calls)
	if len(s.skipped) == 0 {
		return
	}
	fmt.Fprintf(w, "skipped (%d), not in the table now:\n", len(s.skipped))
	for _, line := range s.skipped {
		// The store's line is "ERROR: table "T": init: KIND "KEY" not stored: WHY; ...".
		_, item, _ := strings.Cut(line, "init: ")
		fmt.Fprintf(w, "  %s\n", item)
	}
}
