package lddynamodb

import (
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems"
)

// SetBeforeUpsertWrite makes a store built by this package call hook in every Upsert, after the
// new row is prepared and before it is written: the SDK suite's concurrent modification hook.
func SetBeforeUpsertWrite(s subsystems.PersistentDataStore, hook func()) {
	s.(*store).beforeUpsertWrite = hook
}

// SetInitProgressInterval makes every Init log its progress at interval d, and returns a
// function that restores the default.
func SetInitProgressInterval(d time.Duration) (restore func()) {
	old := initProgressInterval
	initProgressInterval = d
	return func() { initProgressInterval = old }
}

// SetStaleClock makes the StaleIfError layer of a store built by this package (with that option)
// read the time from now, so that a test can age its entries without waiting.
func SetStaleClock(s subsystems.PersistentDataStore, now func() time.Time) {
	s.(*store).stale.now = now
}

// MergeOptions is the merge of ClientOptions: the non-zero fields of source over target.
var MergeOptions = mergeOptions

// ClientOptionsOf returns the options of the *dynamodb.Client that a store built by this package
// (without Metrics) calls.
func ClientOptionsOf(s any) dynamodb.Options {
	switch s := s.(type) {
	case *store:
		return s.client.(*dynamodb.Client).Options()
	case *bigSegmentStore:
		return s.client.(*dynamodb.Client).Options()
	}
	panic(fmt.Sprintf("not a store of this package: %T", s))
}
