package lddynamodb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/launchdarkly/go-sdk-common/v3/ldlog"
	"github.com/launchdarkly/go-sdk-common/v3/ldlogtest"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoreimpl"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const staleTestMaxAge = time.Minute

var (
	scFeatures = ldstoreimpl.Features()
	scSegments = ldstoreimpl.Segments()
	scAbsent   = ldstoretypes.SerializedItemDescriptor{}.NotFound()
)

// staleTestCache is a staleCache on a clock that only the test moves.
type staleTestCache struct {
	*staleCache
	clock   time.Time
	log     *ldlogtest.MockLog
	metrics *Metrics
}

func newStaleTestCache(t *testing.T) *staleTestCache {
	t.Helper()
	tc := &staleTestCache{clock: time.Unix(1700000000, 0), log: ldlogtest.NewMockLog(), metrics: &Metrics{}}
	tc.staleCache = newStaleCache(staleTestMaxAge, tc.log.Loggers, newRecorder(tc.metrics, nil))
	tc.now = func() time.Time { return tc.clock }
	t.Cleanup(func() { tc.log.DumpIfTestFailed(t) })
	return tc
}

func (tc *staleTestCache) advance(d time.Duration) { tc.clock = tc.clock.Add(d) }

func scItem(version int, data string) ldstoretypes.SerializedItemDescriptor {
	return ldstoretypes.SerializedItemDescriptor{Version: version, SerializedItem: []byte(data)}
}

func scDeleted(version int) ldstoretypes.SerializedItemDescriptor {
	return ldstoretypes.SerializedItemDescriptor{Version: version, Deleted: true}
}

func ptr[T any](v T) *T { return &v }

func scKeyed(key string, it ldstoretypes.SerializedItemDescriptor) ldstoretypes.KeyedSerializedItemDescriptor {
	return ldstoretypes.KeyedSerializedItemDescriptor{Key: key, Item: it}
}

// scOperationError wraps err as the AWS SDK returns a failed DynamoDB call, and then as the store
// wraps it.
func scOperationError(err error) error {
	return fmt.Errorf("lddynamodb: table %q: get features \"f\": %w", "t",
		&smithy.OperationError{ServiceID: "DynamoDB", OperationName: "GetItem", Err: err})
}

// scResponseError is a DynamoDB answer with an HTTP status and a decoded API error.
func scResponseError(status int, apiErr error) error {
	return scOperationError(&awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
			Err:      apiErr,
		},
		RequestID: "REQ",
	})
}

// maskedErrors are failures that a retry could fix, as the AWS SDK reports them.
var maskedErrors = []struct {
	name string
	err  error
}{
	{"ThrottlingException", scResponseError(400, &smithy.GenericAPIError{Code: "ThrottlingException", Message: "rate exceeded"})},
	{"ProvisionedThroughputExceededException code", scResponseError(400, &smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException"})},
	{"ProvisionedThroughputExceededException type", scResponseError(400, &types.ProvisionedThroughputExceededException{Message: aws.String("exceeded")})},
	{"HTTP 500", scResponseError(500, &smithy.GenericAPIError{Code: "InternalServerError"})},
	{"HTTP 503", scResponseError(503, &smithy.GenericAPIError{Code: "ServiceUnavailable"})},
	{"connection refused", scOperationError(&smithyhttp.RequestSendError{Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}})},
	{"bare dial error", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}},
	{"connection reset", scOperationError(&smithyhttp.RequestSendError{Err: &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}})},
	{"operation timeout", scOperationError(&smithy.CanceledError{Err: context.DeadlineExceeded})},
	{"bare deadline exceeded", context.DeadlineExceeded},
	{"retries exhausted", scOperationError(&retry.MaxAttemptsError{Attempt: 3,
		Err: scResponseError(400, &smithy.GenericAPIError{Code: "ThrottlingException"})})},
	{"retry quota exhausted", scOperationError(errors.Join(
		scResponseError(503, &smithy.GenericAPIError{Code: "ServiceUnavailable"}),
		fmt.Errorf("failed to get rate limit token, %w", ratelimit.QuotaExceededError{Available: 0, Requested: 5})))},
}

// unmaskedErrors are failures that no retry fixes: stale data must never hide them.
var unmaskedErrors = []struct {
	name string
	err  error
}{
	{"missing table", scResponseError(400, &types.ResourceNotFoundException{Message: aws.String("table not found")})},
	{"access denied", scResponseError(400, &smithy.GenericAPIError{Code: "AccessDeniedException"})},
	{"validation", scResponseError(400, &smithy.GenericAPIError{Code: "ValidationException"})},
	{"undecodable row", scOperationError(&RowError{Namespace: "features", Key: "f", Reason: "bad version"})},
	{"store closed", scOperationError(&smithy.CanceledError{Err: context.Canceled})},
	{"credential endpoint unreachable", scOperationError(&retry.MaxAttemptsError{Attempt: 3, Err: fmt.Errorf("get identity: %w",
		&CredentialsError{Err: &smithyhttp.RequestSendError{Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}})})},
	{"credential endpoint timed out", scOperationError(&CredentialsError{Err: fmt.Errorf("request canceled: %w", context.DeadlineExceeded)})},
	{"bare canceled", context.Canceled},
}

func TestStaleCacheMasksOnlyTransientErrors(t *testing.T) {
	known := scItem(1, "v1")
	for _, tt := range maskedErrors {
		t.Run("masked "+tt.name, func(t *testing.T) {
			c := newStaleTestCache(t)
			c.read(scFeatures, "f", known)
			got, err := c.item(scFeatures, "f", tt.err)
			require.NoError(t, err)
			assert.Equal(t, known, got)

			all, err := c.all(scFeatures, tt.err)
			require.Error(t, err, "no complete read of the kind yet")
			assert.Nil(t, all)
		})
	}
	for _, tt := range unmaskedErrors {
		t.Run("not masked "+tt.name, func(t *testing.T) {
			c := newStaleTestCache(t)
			c.readAll(scFeatures, []ldstoretypes.KeyedSerializedItemDescriptor{scKeyed("f", known)})
			_, err := c.item(scFeatures, "f", tt.err)
			assert.Equal(t, tt.err, err)
			all, err := c.all(scFeatures, tt.err)
			assert.Equal(t, tt.err, err)
			assert.Nil(t, all)
			assert.Zero(t, c.metrics.Snapshot().StaleReads)
		})
	}
}

func TestStaleCacheOff(t *testing.T) {
	var c *staleCache = newStaleCache(0, ldlog.NewDisabledLoggers(), newRecorder(&Metrics{}, nil))
	require.Nil(t, c)
	c.read(scFeatures, "f", scItem(1, "v1"))
	c.readAll(scFeatures, []ldstoretypes.KeyedSerializedItemDescriptor{scKeyed("f", scItem(1, "v1"))})
	c.replaceAll([]ldstoretypes.SerializedCollection{{Kind: scFeatures}})
	failure := maskedErrors[0].err
	_, err := c.item(scFeatures, "f", failure)
	assert.Equal(t, failure, err)
	_, err = c.all(scFeatures, failure)
	assert.Equal(t, failure, err)
}

func TestStaleCacheAgeLimit(t *testing.T) {
	failure := maskedErrors[0].err
	tests := []struct {
		name   string
		age    time.Duration
		served bool
	}{
		{"just read", 0, true},
		{"half the max age", staleTestMaxAge / 2, true},
		{"exactly the max age", staleTestMaxAge, true},
		{"just over the max age", staleTestMaxAge + time.Millisecond, false},
		{"long after", 24 * time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newStaleTestCache(t)
			c.readAll(scFeatures, []ldstoretypes.KeyedSerializedItemDescriptor{scKeyed("f", scItem(1, "v1"))})
			c.advance(tt.age)

			got, err := c.item(scFeatures, "f", failure)
			all, allErr := c.all(scFeatures, failure)
			if tt.served {
				require.NoError(t, err)
				assert.Equal(t, scItem(1, "v1"), got)
				require.NoError(t, allErr)
				assert.Equal(t, []ldstoretypes.KeyedSerializedItemDescriptor{scKeyed("f", scItem(1, "v1"))}, all)
				assert.Equal(t, int64(2), c.metrics.Snapshot().StaleReads)
			} else {
				assert.Equal(t, failure, err)
				assert.Equal(t, failure, allErr)
				assert.Zero(t, c.metrics.Snapshot().StaleReads)
			}
		})
	}
	t.Run("key never read", func(t *testing.T) {
		c := newStaleTestCache(t)
		c.read(scFeatures, "other", scItem(1, "v1"))
		_, err := c.item(scFeatures, "f", failure)
		assert.Equal(t, failure, err)
		_, err = c.item(scSegments, "other", failure)
		assert.Equal(t, failure, err, "kinds are separate")
	})
}

func TestStaleCacheRefresh(t *testing.T) {
	failure := maskedErrors[0].err
	tests := []struct {
		name    string
		refresh func(c *staleTestCache)
		want    *ldstoretypes.SerializedItemDescriptor       // nil: Get is not answered
		allWant []ldstoretypes.KeyedSerializedItemDescriptor // nil: GetAll is not answered
	}{
		{
			name:    "nothing",
			refresh: func(*staleTestCache) {},
		},
		{
			name:    "Get",
			refresh: func(c *staleTestCache) { c.read(scFeatures, "f", scItem(2, "v2")) },
			want:    ptr(scItem(2, "v2")),
		},
		{
			name:    "Get finding the key absent",
			refresh: func(c *staleTestCache) { c.read(scFeatures, "f", scAbsent) },
			want:    ptr(scAbsent),
		},
		{
			name: "GetAll",
			refresh: func(c *staleTestCache) {
				c.readAll(scFeatures, []ldstoretypes.KeyedSerializedItemDescriptor{scKeyed("f", scItem(2, "v2")), scKeyed("g", scItem(1, "g1"))})
			},
			want:    ptr(scItem(2, "v2")),
			allWant: []ldstoretypes.KeyedSerializedItemDescriptor{scKeyed("f", scItem(2, "v2")), scKeyed("g", scItem(1, "g1"))},
		},
		{
			name:    "Upsert",
			refresh: func(c *staleTestCache) { c.storeWrite(scFeatures, "f", scItem(3, "v3")) },
			want:    ptr(scItem(3, "v3")),
		},
		{
			name:    "Upsert of a deletion",
			refresh: func(c *staleTestCache) { c.storeWrite(scFeatures, "f", scDeleted(3)) },
			want:    ptr(scDeleted(3)),
		},
		{
			name: "Init",
			refresh: func(c *staleTestCache) {
				c.replaceAll([]ldstoretypes.SerializedCollection{{Kind: scFeatures, Items: []ldstoretypes.KeyedSerializedItemDescriptor{scKeyed("f", scItem(1, "v1"))}}})
			},
			want:    ptr(scItem(1, "v1")),
			allWant: []ldstoretypes.KeyedSerializedItemDescriptor{scKeyed("f", scItem(1, "v1"))},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newStaleTestCache(t)
			c.readAll(scFeatures, []ldstoretypes.KeyedSerializedItemDescriptor{scKeyed("f", scItem(1, "v1"))})
			c.advance(staleTestMaxAge / 2)
			tt.refresh(c)
			c.advance(staleTestMaxAge/2 + time.Second) // older than the max age, if not refreshed

			got, err := c.item(scFeatures, "f", failure)
			if tt.want == nil {
				assert.Equal(t, failure, err)
			} else {
				require.NoError(t, err)
				assert.Equal(t, *tt.want, got)
			}
			all, err := c.all(scFeatures, failure)
			if tt.allWant == nil {
				assert.Equal(t, failure, err, "only a complete read refreshes GetAll")
			} else {
				require.NoError(t, err)
				assert.ElementsMatch(t, tt.allWant, all)
			}
		})
	}
}

func TestStaleCacheNeverResurrectsDeletedItems(t *testing.T) {
	tests := []struct {
		name    string
		steps   func(c *staleTestCache)
		want    ldstoretypes.SerializedItemDescriptor
		allWant []ldstoretypes.KeyedSerializedItemDescriptor
	}{
		{
			name: "deleted by Upsert",
			steps: func(c *staleTestCache) {
				c.storeWrite(scFeatures, "f", scDeleted(2))
			},
			want:    scDeleted(2),
			allWant: []ldstoretypes.KeyedSerializedItemDescriptor{scKeyed("f", scDeleted(2)), scKeyed("g", scItem(1, "g1"))},
		},
		{
			name: "a slow read of the old version after the deletion",
			steps: func(c *staleTestCache) {
				c.storeWrite(scFeatures, "f", scDeleted(2))
				c.read(scFeatures, "f", scItem(1, "v1"))
				c.readAll(scFeatures, []ldstoretypes.KeyedSerializedItemDescriptor{scKeyed("f", scItem(1, "v1")), scKeyed("g", scItem(1, "g1"))})
			},
			want:    scDeleted(2),
			allWant: []ldstoretypes.KeyedSerializedItemDescriptor{scKeyed("f", scDeleted(2)), scKeyed("g", scItem(1, "g1"))},
		},
		{
			name: "tombstone read from the table",
			steps: func(c *staleTestCache) {
				c.readAll(scFeatures, []ldstoretypes.KeyedSerializedItemDescriptor{scKeyed("f", scDeleted(5)), scKeyed("g", scItem(1, "g1"))})
			},
			want:    scDeleted(5),
			allWant: []ldstoretypes.KeyedSerializedItemDescriptor{scKeyed("f", scDeleted(5)), scKeyed("g", scItem(1, "g1"))},
		},
		{
			name: "row removed, found absent by Get",
			steps: func(c *staleTestCache) {
				c.read(scFeatures, "f", scAbsent)
			},
			want:    scAbsent,
			allWant: []ldstoretypes.KeyedSerializedItemDescriptor{scKeyed("g", scItem(1, "g1"))},
		},
		{
			name: "row removed, missing from GetAll",
			steps: func(c *staleTestCache) {
				c.readAll(scFeatures, []ldstoretypes.KeyedSerializedItemDescriptor{scKeyed("g", scItem(1, "g1"))})
			},
			want:    scAbsent,
			allWant: []ldstoretypes.KeyedSerializedItemDescriptor{scKeyed("g", scItem(1, "g1"))},
		},
		{
			name: "left out of an Init",
			steps: func(c *staleTestCache) {
				c.replaceAll([]ldstoretypes.SerializedCollection{
					{Kind: scFeatures, Items: []ldstoretypes.KeyedSerializedItemDescriptor{scKeyed("g", scItem(1, "g1"))}},
					{Kind: scSegments},
				})
			},
			want:    scAbsent,
			allWant: []ldstoretypes.KeyedSerializedItemDescriptor{scKeyed("g", scItem(1, "g1"))},
		},
		{
			name: "deleted in an Init",
			steps: func(c *staleTestCache) {
				c.replaceAll([]ldstoretypes.SerializedCollection{
					{Kind: scFeatures, Items: []ldstoretypes.KeyedSerializedItemDescriptor{scKeyed("f", scDeleted(9)), scKeyed("g", scItem(1, "g1"))}},
				})
			},
			want:    scDeleted(9),
			allWant: []ldstoretypes.KeyedSerializedItemDescriptor{scKeyed("f", scDeleted(9)), scKeyed("g", scItem(1, "g1"))},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newStaleTestCache(t)
			c.readAll(scFeatures, []ldstoretypes.KeyedSerializedItemDescriptor{scKeyed("f", scItem(1, "v1")), scKeyed("g", scItem(1, "g1"))})
			tt.steps(c)
			c.assertServes(t, tt.want, tt.allWant)
		})
	}
}

func TestStaleCacheKeepsNewestVersion(t *testing.T) {
	failure := maskedErrors[0].err
	tests := []struct {
		name  string
		first ldstoretypes.SerializedItemDescriptor // written by an Upsert
		read  ldstoretypes.SerializedItemDescriptor // then returned by a read
		want  ldstoretypes.SerializedItemDescriptor
	}{
		{"older read after Upsert", scItem(3, "v3"), scItem(2, "v2"), scItem(3, "v3")},
		{"same version", scItem(3, "v3"), scItem(3, "v3"), scItem(3, "v3")},
		{"newer read", scItem(3, "v3"), scItem(4, "v4"), scItem(4, "v4")},
		{"newer tombstone", scItem(3, "v3"), scDeleted(4), scDeleted(4)},
		{"older item after a deletion", scDeleted(4), scItem(3, "v3"), scDeleted(4)},
	}
	for _, tt := range tests {
		for _, via := range []string{"Get", "GetAll"} {
			t.Run(tt.name+" via "+via, func(t *testing.T) {
				c := newStaleTestCache(t)
				c.storeWrite(scFeatures, "f", tt.first)
				if via == "Get" {
					c.read(scFeatures, "f", tt.read)
				} else {
					c.readAll(scFeatures, []ldstoretypes.KeyedSerializedItemDescriptor{scKeyed("f", tt.read)})
				}
				got, err := c.item(scFeatures, "f", failure)
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
			})
		}
	}
	t.Run("Init replaces a newer version", func(t *testing.T) {
		c := newStaleTestCache(t)
		c.storeWrite(scFeatures, "f", scItem(7, "v7"))
		c.replaceAll([]ldstoretypes.SerializedCollection{{Kind: scFeatures, Items: []ldstoretypes.KeyedSerializedItemDescriptor{scKeyed("f", scItem(2, "v2"))}}})
		got, err := c.item(scFeatures, "f", failure)
		require.NoError(t, err)
		assert.Equal(t, scItem(2, "v2"), got)
	})
}

func TestStaleCacheWarnsOncePerOutage(t *testing.T) {
	c := newStaleTestCache(t)
	failure := maskedErrors[0].err
	c.readAll(scFeatures, []ldstoretypes.KeyedSerializedItemDescriptor{scKeyed("f", scItem(1, "v1"))})

	serve := func(n int) {
		for i := 0; i < n; i++ {
			_, err := c.item(scFeatures, "f", failure)
			require.NoError(t, err)
			_, err = c.all(scFeatures, failure)
			require.NoError(t, err)
		}
	}
	serve(5)
	assert.Len(t, c.log.GetOutput(ldlog.Warn), 1, "one warning for the first outage")
	assert.True(t, c.log.HasMessageMatch(ldlog.Warn, "ThrottlingException"), "the warning names the error")
	assert.Empty(t, c.log.GetOutput(ldlog.Info))

	c.read(scFeatures, "f", scItem(1, "v1")) // a read succeeds: the outage is over
	assert.Len(t, c.log.GetOutput(ldlog.Info), 1)
	c.read(scFeatures, "f", scItem(1, "v1"))
	assert.Len(t, c.log.GetOutput(ldlog.Info), 1, "the end of an outage is logged once")

	serve(3)
	assert.Len(t, c.log.GetOutput(ldlog.Warn), 2, "one more warning for the second outage")
	assert.Equal(t, int64(16), c.metrics.Snapshot().StaleReads, "every stale answer is counted")

	_, err := c.item(scFeatures, "f", unmaskedErrors[0].err)
	require.Error(t, err)
	assert.Len(t, c.log.GetOutput(ldlog.Warn), 2, "an error that is returned is not warned about here")

	c.replaceAll([]ldstoretypes.SerializedCollection{{Kind: scFeatures, Items: []ldstoretypes.KeyedSerializedItemDescriptor{scKeyed("f", scItem(2, "v2"))}}})
	assert.Len(t, c.log.GetOutput(ldlog.Info), 2, "a successful Init ends the outage too")
	serve(1)
	assert.Len(t, c.log.GetOutput(ldlog.Warn), 3, "one more warning for the third outage")
}

// TestStaleCacheConcurrentUse has goroutines write and read the same keys at once and checks
// every answer each of them gets: an item is one that was written for that key (never another
// key's, never torn), a key that the goroutine itself stored earlier is always answered (entries
// are replaced, never dropped), and GetAll is always answered once the goroutine has stored a
// complete set. Run with -race.
func TestStaleCacheConcurrentUse(t *testing.T) {
	c := newStaleCache(staleTestMaxAge, ldlog.NewDisabledLoggers(), newRecorder(&Metrics{}, nil))
	failure := maskedErrors[0].err
	keys := []string{"a", "b", "c", "d"}
	const workers, rounds = 8, 200
	// Every item written names its key and version, so that each answer can be checked alone.
	itemOf := func(key string, version int) ldstoretypes.SerializedItemDescriptor {
		return scItem(version, fmt.Sprintf("%s@%d", key, version))
	}
	checkItem := func(key string, got ldstoretypes.SerializedItemDescriptor) error {
		if assert.ObjectsAreEqual(scAbsent, got) {
			return nil
		}
		if want := itemOf(key, got.Version); got.Version < 0 || got.Version >= workers*rounds || !assert.ObjectsAreEqual(want, got) {
			return fmt.Errorf("%s answered with %+v (%q), which no one wrote", key, got, got.SerializedItem)
		}
		return nil
	}
	var answered, answeredAll atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stored := map[string]bool{} // keys this goroutine has stored
			complete := false           // this goroutine has stored a complete set
			for i := 0; i < rounds; i++ {
				// Four rounds in a row on one key: each worker writes and reads every key both ways.
				key := keys[(w+i/4)%len(keys)]
				version := w*rounds + i // unique to this write
				switch (w + i) % 4 {
				case 0:
					c.storeWrite(scFeatures, key, itemOf(key, version))
					stored[key] = true
				case 1:
					c.readAll(scFeatures, []ldstoretypes.KeyedSerializedItemDescriptor{scKeyed(key, itemOf(key, version))})
					stored[key], complete = true, true
				case 2:
					got, err := c.item(scFeatures, key, failure)
					switch {
					case err != nil && err != failure:
						t.Errorf("worker %d: Get %s: unexpected error %v", w, key, err)
					case err != nil && stored[key]:
						t.Errorf("worker %d: Get %s: not answered although this worker stored it", w, key)
					case err == nil:
						answered.Add(1)
						if err := checkItem(key, got); err != nil {
							t.Errorf("worker %d: Get: %v", w, err)
						}
					}
				case 3:
					all, err := c.all(scFeatures, failure)
					switch {
					case err != nil && err != failure:
						t.Errorf("worker %d: GetAll: unexpected error %v", w, err)
					case err != nil && complete:
						t.Errorf("worker %d: GetAll not answered although this worker stored a complete set", w)
					case err == nil:
						answeredAll.Add(1)
						seen := map[string]bool{}
						for _, it := range all {
							if seen[it.Key] || it.Item.Version < 0 {
								t.Errorf("worker %d: GetAll answered %s twice or as absent: %+v", w, it.Key, all)
							}
							seen[it.Key] = true
							if err := checkItem(it.Key, it.Item); err != nil {
								t.Errorf("worker %d: GetAll: %v", w, err)
							}
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	assert.Positive(t, answered.Load(), "Gets answered from the cache")
	assert.Positive(t, answeredAll.Load(), "GetAlls answered from the cache")
	last := itemOf("a", workers*rounds) // newer than every write above
	c.storeWrite(scFeatures, "a", last)
	got, err := c.item(scFeatures, "a", failure)
	require.NoError(t, err)
	assert.Equal(t, last, got)
}

// read records a Get that started now and returned at once.
func (c *staleCache) read(kind ldstoretypes.DataKind, key string, item ldstoretypes.SerializedItemDescriptor) {
	c.storeRead(kind, key, item, c.begin())
}

// readAll records a GetAll that started now and returned at once.
func (c *staleCache) readAll(kind ldstoretypes.DataKind, items []ldstoretypes.KeyedSerializedItemDescriptor) {
	c.storeAll(kind, items, c.begin())
}

// assertServes checks what the cache serves, during an outage, for Get of "f" and GetAll of flags.
func (tc *staleTestCache) assertServes(t *testing.T, want ldstoretypes.SerializedItemDescriptor, allWant []ldstoretypes.KeyedSerializedItemDescriptor) {
	t.Helper()
	failure := maskedErrors[0].err
	got, err := tc.item(scFeatures, "f", failure)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	all, err := tc.all(scFeatures, failure)
	require.NoError(t, err)
	assert.ElementsMatch(t, allWant, all)
}

// TestStaleCacheOrdersByStart numbers reads by begin before the writes and Inits they overlap,
// and records them after, as a slow read returns: what a read learned never replaces what an
// operation that finished after the read started stored, and a higher version always wins.
func TestStaleCacheOrdersByStart(t *testing.T) {
	f1, g1 := scKeyed("f", scItem(1, "v1")), scKeyed("g", scItem(1, "g1"))
	initWith := func(c *staleTestCache, items ...ldstoretypes.KeyedSerializedItemDescriptor) {
		c.replaceAll([]ldstoretypes.SerializedCollection{{Kind: scFeatures, Items: items}})
	}
	tests := []struct {
		name    string
		steps   func(c *staleTestCache)
		want    ldstoretypes.SerializedItemDescriptor        // what Get of "f" serves
		allWant []ldstoretypes.KeyedSerializedItemDescriptor // what GetAll serves
	}{
		{"Get read absent before an Upsert", func(c *staleTestCache) {
			initWith(c, g1)
			get := c.begin()
			c.storeWrite(scFeatures, "f", scItem(1, "v1"))
			c.storeRead(scFeatures, "f", scAbsent, get)
		}, (scItem(1, "v1")), []ldstoretypes.KeyedSerializedItemDescriptor{f1, g1}},
		{"Get read absent after an Upsert", func(c *staleTestCache) {
			initWith(c, g1)
			c.storeWrite(scFeatures, "f", scItem(1, "v1"))
			c.storeRead(scFeatures, "f", scAbsent, c.begin()) // another writer removed the row
		}, (scAbsent), []ldstoretypes.KeyedSerializedItemDescriptor{g1}},
		{"Get read a higher version before an Upsert", func(c *staleTestCache) {
			initWith(c, g1)
			get := c.begin()
			c.storeWrite(scFeatures, "f", scItem(1, "v1"))
			c.storeRead(scFeatures, "f", scItem(2, "v2"), get) // another writer's newer row
		}, (scItem(2, "v2")), []ldstoretypes.KeyedSerializedItemDescriptor{scKeyed("f", scItem(2, "v2")), g1}},
		{"Get read an item before an Init removed it", func(c *staleTestCache) {
			initWith(c, f1, g1)
			get := c.begin()
			initWith(c, g1)
			c.storeRead(scFeatures, "f", scItem(1, "v1"), get)
		}, (scAbsent), []ldstoretypes.KeyedSerializedItemDescriptor{g1}},
		{"Get read a newer version before an Init set an older one", func(c *staleTestCache) {
			initWith(c, scKeyed("f", scItem(5, "v5")))
			get := c.begin()
			initWith(c, f1)
			c.storeRead(scFeatures, "f", scItem(5, "v5"), get)
		}, (scItem(1, "v1")), []ldstoretypes.KeyedSerializedItemDescriptor{f1}},
		{"GetAll read before an Upsert created a flag", func(c *staleTestCache) {
			initWith(c, g1)
			getAll := c.begin()
			c.storeWrite(scFeatures, "f", scItem(1, "v1"))
			c.storeAll(scFeatures, []ldstoretypes.KeyedSerializedItemDescriptor{g1}, getAll)
		}, (scItem(1, "v1")), []ldstoretypes.KeyedSerializedItemDescriptor{f1, g1}},
		{"GetAll read before an Init", func(c *staleTestCache) {
			initWith(c, f1)
			getAll := c.begin()
			initWith(c, g1)
			c.storeAll(scFeatures, []ldstoretypes.KeyedSerializedItemDescriptor{f1}, getAll)
		}, (scAbsent), []ldstoretypes.KeyedSerializedItemDescriptor{g1}},
		{"GetAll returning after a later GetAll", func(c *staleTestCache) {
			first := c.begin()
			c.readAll(scFeatures, []ldstoretypes.KeyedSerializedItemDescriptor{g1})
			c.storeAll(scFeatures, []ldstoretypes.KeyedSerializedItemDescriptor{f1, g1}, first)
		}, (scAbsent), []ldstoretypes.KeyedSerializedItemDescriptor{g1}},
		{"Get returning after a later GetAll that did not list the key", func(c *staleTestCache) {
			get := c.begin()
			c.readAll(scFeatures, []ldstoretypes.KeyedSerializedItemDescriptor{g1})
			c.storeRead(scFeatures, "f", scItem(1, "v1"), get)
		}, (scAbsent), []ldstoretypes.KeyedSerializedItemDescriptor{g1}},
		{"GetAll that did not list a key found by a later Get", func(c *staleTestCache) {
			getAll := c.begin()
			c.read(scFeatures, "f", scItem(1, "v1"))
			c.storeAll(scFeatures, []ldstoretypes.KeyedSerializedItemDescriptor{g1}, getAll)
		}, (scItem(1, "v1")), []ldstoretypes.KeyedSerializedItemDescriptor{f1, g1}},
		{"GetAll after a Get found a key absent", func(c *staleTestCache) {
			c.read(scFeatures, "f", scAbsent)
			c.readAll(scFeatures, []ldstoretypes.KeyedSerializedItemDescriptor{f1, g1})
		}, (scItem(1, "v1")), []ldstoretypes.KeyedSerializedItemDescriptor{f1, g1}},
		{"Upsert of a deletion after a slow read of the item", func(c *staleTestCache) {
			initWith(c, f1)
			get := c.begin()
			c.storeWrite(scFeatures, "f", scDeleted(2))
			c.storeRead(scFeatures, "f", scItem(1, "v1"), get)
		}, (scDeleted(2)), []ldstoretypes.KeyedSerializedItemDescriptor{scKeyed("f", scDeleted(2))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newStaleTestCache(t)
			tt.steps(c)
			c.assertServes(t, tt.want, tt.allWant)
		})
	}
}

// TestStaleCacheSweepStopsOlderReads sweeps, while a Get and a GetAll are in flight, an entry
// learned after they started: when they return, they must not put back what the entry had
// superseded.
func TestStaleCacheSweepStopsOlderReads(t *testing.T) {
	failure := maskedErrors[0].err
	c := newStaleTestCache(t)
	getAll, get := c.begin(), c.begin()
	c.read(scFeatures, "f", scAbsent) // another writer removed f after those reads began
	c.advance(staleTestMaxAge + time.Second)
	for i := 0; i < staleSweepMin; i++ { // new keys, until a sweep drops f's entry
		c.read(scFeatures, fmt.Sprintf("k%d", i), scAbsent)
	}
	_, known := c.kinds[scFeatures.GetName()].items["f"]
	require.False(t, known, "swept")

	c.storeRead(scFeatures, "f", scItem(1, "v1"), get)
	c.storeAll(scFeatures, []ldstoretypes.KeyedSerializedItemDescriptor{scKeyed("f", scItem(1, "v1"))}, getAll)
	_, err := c.item(scFeatures, "f", failure)
	assert.Equal(t, failure, err, "nothing fresh is known of f")
	_, err = c.all(scFeatures, failure)
	assert.Equal(t, failure, err, "no fresh complete set is known")
}

// TestStaleCacheMemoryIsBounded reads a stream of distinct keys that do not exist, as a service
// evaluating caller-supplied flag keys does, 10 ms apart: the layer must keep no more than twice
// the keys read within maxAge (and at most staleSweepMin when each is older than that).
func TestStaleCacheMemoryIsBounded(t *testing.T) {
	const (
		keys = 100_000
		step = 10 * time.Millisecond
	)
	failure := maskedErrors[0].err
	within := int(staleTestMaxAge / step) // keys read within maxAge of each other
	tests := []struct {
		name       string
		step       time.Duration
		getAllEach int // a GetAll every that many keys, as the SDK's AllFlags does; 0: none
		min, max   int // the bounds of the peak entry count
	}{
		{"Gets only", step, 0, within, 2 * (within + 1)},
		{"Gets and GetAlls", step, within / 2, 1, 2 * (within + 1)},
		{"each key older than maxAge", staleTestMaxAge, 0, 1, staleSweepMin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newStaleTestCache(t)
			peak := 0
			for i := 0; i < keys; i++ {
				if tt.getAllEach > 0 && i%tt.getAllEach == 0 {
					c.readAll(scFeatures, []ldstoretypes.KeyedSerializedItemDescriptor{scKeyed("f", scItem(1, "v1"))})
				}
				c.read(scFeatures, fmt.Sprintf("missing-%d", i), scAbsent)
				c.advance(tt.step)
				peak = max(peak, len(c.kinds[scFeatures.GetName()].items))
			}
			t.Logf("%d distinct absent keys, %v apart: at most %d entries", keys, tt.step, peak)
			assert.LessOrEqual(t, peak, tt.max)
			assert.GreaterOrEqual(t, peak, tt.min)

			c.advance(-tt.step) // the last key was read just now
			got, err := c.item(scFeatures, fmt.Sprintf("missing-%d", keys-1), failure)
			require.NoError(t, err)
			assert.Equal(t, scAbsent, got)
			if tt.getAllEach > 0 {
				got, err := c.item(scFeatures, "f", failure)
				require.NoError(t, err, "a flag that exists is kept")
				assert.Equal(t, scItem(1, "v1"), got)
			}
		})
	}
}
