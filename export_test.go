package lddynamodb

import (
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
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

// SetOrphanPartsGrace makes Init remove parts that no row names once they are d old, and
// returns a function that restores the default.
func SetOrphanPartsGrace(d time.Duration) (restore func()) {
	old := orphanPartsGrace
	orphanPartsGrace = d
	return func() { orphanPartsGrace = old }
}

// CompressedItemAt is an item (key "f", version 1) whose main row, with its gzip data inline,
// is exactly size bytes; GzipItemAt one whose gzip data is exactly size bytes.
func CompressedItemAt(t testing.TB, size int) ldstoretypes.SerializedItemDescriptor {
	return compressedAt(t, size)
}

// GzipItemAt is an item (key "f", version 1) whose gzip data is exactly size bytes.
func GzipItemAt(t testing.TB, size int) ldstoretypes.SerializedItemDescriptor { return gzipAt(t, size) }

// PartCapacity is how many bytes of data a part of an item with this key and version holds, in
// a store with no prefix.
func PartCapacity(key string, version int) int {
	return partCapacity("features:parts", partKeyPrefix(key, version, newPartsID(time.Now())))
}
