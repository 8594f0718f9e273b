package lddynamodb_test

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/launchdarkly/go-sdk-common/v3/ldlog"
	"github.com/launchdarkly/go-sdk-common/v3/ldvalue"
	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldbuilders"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoretypes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lddynamodb/lddynamodb"
	"github.com/lddynamodb/lddynamodb/internal/faults"
	"github.com/lddynamodb/lddynamodb/internal/testenv"
)

// initOrderViolations checks Init's calls (BatchWriteItem and the marker's PutItem, as the
// injector saw them) against the SDK's order: each put sent only after the call that wrote each
// item it uses (that this Init wrote) was answered; each delete after every put was; the marker
// after every write. It returns one line per write sent too early.
func initOrderViolations(calls []faults.Call, uses map[testenv.Ref][]testenv.Ref) []string {
	written := map[testenv.Ref]faults.Call{} // the call that did each put
	var lastPut, lastWrite time.Time
	for _, c := range calls {
		for _, w := range c.Writes {
			if w.Held {
				continue
			}
			if !w.Delete {
				written[testenv.Ref{Kind: w.Namespace, Key: w.Key}] = c
				lastPut = maxTime(lastPut, c.Answered)
			}
			lastWrite = maxTime(lastWrite, c.Answered)
		}
	}
	var bad []string
	for _, c := range calls {
		if c.Op == "PutItem" && c.Sent.Before(lastWrite) {
			bad = append(bad, "marker sent before the last write was answered")
		}
		for _, w := range c.Writes {
			if w.Delete {
				if c.Sent.Before(lastPut) {
					bad = append(bad, "delete of "+w.Key+" sent before the last put was answered")
				}
				continue
			}
			for _, used := range uses[testenv.Ref{Kind: w.Namespace, Key: w.Key}] {
				if by, ok := written[used]; ok && c.Sent.Before(by.Answered) {
					bad = append(bad, w.Key+" sent before "+used.Key+" was written")
				}
			}
		}
	}
	return bad
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// TestInitKeepsTheSDKOrderOnTheWire sends two Inits of data with segment-to-segment references,
// segment rules and prerequisite chains (items in random order) through calls answered with
// jittered latency, so that batches sent together come back in any order, some of them only in
// part: no put may go out before what it uses is written, no delete before every put is, the
// marker last.
func TestInitKeepsTheSDKOrderOnTheWire(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault faults.Fault
	}{
		{"jitter", faults.Fault{Latency: time.Millisecond, Jitter: 8 * time.Millisecond}},
		{"jitter and partial batches", faults.Fault{Jitter: 8 * time.Millisecond, UnprocessedRate: 0.3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			table := testenv.NewTable(t)
			inj := faults.New(1, nil)
			inj.SetAll(tc.fault)
			store, _ := testenv.Build(t, testenv.DataStore(table).ClientOptions(dynamodb.Options{}, inj.ClientOption()))
			first, uses := testenv.DependentData(1, 200, 1000, 1)
			require.NoError(t, store.Init(first))
			// The second Init rewrites every item and drops a tenth of each kind.
			second, _ := testenv.DependentData(1, 200, 1000, 2)
			for k := range second {
				second[k].Items = second[k].Items[:len(second[k].Items)*9/10]
			}
			before := len(inj.Calls())
			require.NoError(t, store.Init(second))

			all := inj.Calls()
			for _, calls := range [][]faults.Call{all[:before], all[before:]} {
				bad := initOrderViolations(calls, uses)
				assert.Zero(t, len(bad), "writes sent out of order, the first: %v", bad[:min(len(bad), 5)])
				t.Logf("%d calls, %d writes sent out of order", len(calls), len(bad))
			}
			assert.Zero(t, testenv.Lost(t, table, second))
		})
	}
}

// TestInitWithCyclesFinishes gives Init items that use each other in a circle, which no order
// can satisfy: it must write them all rather than wait forever.
func TestInitWithCyclesFinishes(t *testing.T) {
	table := testenv.NewTable(t)
	store, _ := testenv.Build(t, testenv.DataStore(table))
	data := testenv.AllData(
		[]ldstoretypes.KeyedSerializedItemDescriptor{
			testenv.FlagWithPrerequisites("a", "b"), testenv.FlagWithPrerequisites("b", "c"),
			testenv.FlagWithPrerequisites("c", "a"), testenv.FlagWithPrerequisites("self", "self"),
		},
		[]ldstoretypes.KeyedSerializedItemDescriptor{testenv.SegmentUsing("s1", "s2"), testenv.SegmentUsing("s2", "s1")})
	require.NoError(t, store.Init(data))
	assert.Zero(t, testenv.Lost(t, table, data))
}

// TestInitPacesToThePartitionLimit runs a cold Init against a write limit per partition key
// (250 units a second, so that it takes 3 s at least):
// nothing is lost, the throttled and re-sent items are counted, items written are exact, and
// progress is logged while it runs.
func TestInitPacesToThePartitionLimit(t *testing.T) {
	defer lddynamodb.SetInitProgressInterval(50 * time.Millisecond)()
	table := testenv.NewTable(t)
	inj := faults.New(1, nil)
	inj.SetWriteRate(250)
	metrics := &lddynamodb.Metrics{}
	// Without the AWS SDK's retries, which Metrics does not see, every send is the store's.
	noRetries := func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 }
	store, mockLog := testenv.Build(t, testenv.DataStore(table).ClientOptions(dynamodb.Options{}, inj.ClientOption(), noRetries).Metrics(metrics))
	data, _ := testenv.DependentData(1, 0, 1000, 1)
	require.NoError(t, store.Init(data))
	assert.Zero(t, testenv.Lost(t, table, data))

	m := metrics.Snapshot()
	var held, sent int64
	for _, c := range inj.Calls() {
		for _, w := range c.Writes {
			sent++
			if w.Held {
				held++
			}
		}
	}
	t.Logf("%d writes sent for 1000 items, %d throttled, %d calls", sent, held, len(inj.Calls()))
	assert.NotZero(t, held, "the limit throttled some writes")
	assert.Equal(t, held, m.ThrottledItems, "every throttled write is counted")
	assert.Equal(t, sent-1000, m.ResentItems, "every send after the first is counted")
	assert.Less(t, m.ResentItems, int64(1000), "paced, fewer re-sends than items (unpaced: over ten times as many)")
	assert.Equal(t, int64(1000+1), m.ItemsWritten, "items written are those DynamoDB took, and the marker")
	progress := strings.Join(mockLog.GetOutput(ldlog.Info), "\n")
	assert.Regexp(t, `init: \d+ of 1000 writes done`, progress)
}

// TestInitIgnoresUnrelatedRefusals hands back part of 10 % of the BatchWriteItem calls whatever
// the rate they are sent at, with no write limit: sending slower cures nothing, so the pace must
// never fall far below what the local server takes (thousands of units a second). Progress,
// logged every 20 ms, names every pace; a pacer that reads each handed-back write as its own
// excess falls to tens of units a second here, and takes ten times as long as the same Init
// with no faults (the bound is four times, plus a second, for a busy machine).
func TestInitIgnoresUnrelatedRefusals(t *testing.T) {
	defer lddynamodb.SetInitProgressInterval(20 * time.Millisecond)()
	data := flatFlags(3000)
	clean, _ := testenv.Build(t, testenv.DataStore(testenv.NewTable(t)))
	start := time.Now()
	require.NoError(t, clean.Init(data))
	cleanTime := time.Since(start)

	table := testenv.NewTable(t)
	inj := faults.New(1, nil)
	inj.Set("BatchWriteItem", faults.Fault{UnprocessedRate: 0.1})
	metrics := &lddynamodb.Metrics{}
	store, mockLog := testenv.Build(t, testenv.DataStore(table).ClientOptions(dynamodb.Options{}, inj.ClientOption()).Metrics(metrics))
	start = time.Now()
	require.NoError(t, store.Init(data))
	faultTime := time.Since(start)
	t.Logf("%v with no faults, %v with 10 %% of calls handed back in part", cleanTime, faultTime)
	assert.Zero(t, testenv.Lost(t, table, data))
	assert.NotZero(t, metrics.Snapshot().ThrottledItems, "some writes were handed back")
	assert.Less(t, faultTime, 4*cleanTime+time.Second, "slowed down by refusals that the rate did not cause")
	paces := regexp.MustCompile(`paced to (\d+) write units`)
	for _, line := range mockLog.GetOutput(ldlog.Info) {
		for _, m := range paces.FindAllStringSubmatch(line, -1) {
			pace, err := strconv.Atoi(m[1])
			require.NoError(t, err)
			assert.GreaterOrEqual(t, pace, 500, "slowed down by refusals that the rate did not cause: %s", line)
		}
	}
}

// TestInitPaceKeepsToTheDeadline starts an Init against a limit of 25 write units a second
// that lifts after a second. The pacer learns the low limit, from which its slow rounds would
// climb back far too late, but its floor (twice the rate that writes all the Init's units by
// InitTimeout) lets the Init finish in time, and the progress log says when the floor sets the
// pace. An Init that cannot finish names the pace in its error.
func TestInitPaceKeepsToTheDeadline(t *testing.T) {
	defer lddynamodb.SetInitProgressInterval(100 * time.Millisecond)()
	data := flatFlags(1000)
	t.Run("finishes", func(t *testing.T) {
		table := testenv.NewTable(t)
		inj := faults.New(1, nil)
		inj.SetWriteSchedule(faults.Step{At: 0, Rate: 25}, faults.Step{At: time.Second, Rate: 1e6})
		store, mockLog := testenv.Build(t, testenv.DataStore(table).ClientOptions(dynamodb.Options{}, inj.ClientOption()).
			InitTimeout(10*time.Second))
		require.NoError(t, store.Init(data))
		assert.Zero(t, testenv.Lost(t, table, data))
		assert.Regexp(t, `"features" paced to \d+ write units a second, its floor, twice the rate that writes all its units by the init timeout`,
			strings.Join(mockLog.GetOutput(ldlog.Info), "\n"))
	})
	t.Run("times out", func(t *testing.T) {
		table := testenv.NewTable(t)
		inj := faults.New(1, nil)
		inj.SetWriteRate(25)
		store, _ := testenv.Build(t, testenv.DataStore(table).ClientOptions(dynamodb.Options{}, inj.ClientOption()).
			InitTimeout(2*time.Second))
		err := store.Init(data)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Regexp(t, `writes not done; "features" paced to \d+ write units a second`, err.Error())
	})
}

// TestInitMetricsExactUnderPartialBatches checks that ItemsWritten and BytesWritten count what
// DynamoDB wrote when batches come back in part.
func TestInitMetricsExactUnderPartialBatches(t *testing.T) {
	table := testenv.NewTable(t)
	inj := faults.New(3, nil)
	inj.Set("BatchWriteItem", faults.Fault{UnprocessedRate: 0.5})
	metrics := &lddynamodb.Metrics{}
	store, _ := testenv.Build(t, testenv.DataStore(table).ClientOptions(dynamodb.Options{}, inj.ClientOption()).Metrics(metrics))
	data := testenv.PerfData(500, 50, 1)
	require.NoError(t, store.Init(data))
	items, bytes := perfWriteCost(data, nil)
	m := metrics.Snapshot()
	assert.Equal(t, items+1, m.ItemsWritten)
	assert.Equal(t, bytes+perfMarkerBytes, m.BytesWritten)
	assert.NotZero(t, m.ThrottledItems)
	assert.Equal(t, m.ThrottledItems, m.ResentItems, "each handed-back item is sent once more")
}

// flagOfRowSize is a flag whose row (with no prefix) is exactly size bytes by DynamoDB's count.
func flagOfRowSize(t *testing.T, key string, version, size int) ldstoretypes.KeyedSerializedItemDescriptor {
	t.Helper()
	base := testenv.Flag(key, version, 1000)
	row := testenv.ItemRow("features", key, base.Item)
	flag := testenv.Flag(key, version, 1000+size-lddynamodb.RowSize(row))
	require.Equal(t, size, lddynamodb.RowSize(testenv.ItemRow("features", key, flag.Item)))
	return flag
}

// TestRowSizeAgreesWithTheServerAtTheLimit writes rows of exactly MaxItemBytes and one byte more,
// with versions whose numbers pack differently, straight to the server: it must take the first
// and refuse the second, or RowSize and the server disagree.
func TestRowSizeAgreesWithTheServerAtTheLimit(t *testing.T) {
	table := testenv.NewTable(t)
	for _, version := range []int{0, 1, 10, 123, 10010, 1000000, 123456789} {
		at := flagOfRowSize(t, "at", version, lddynamodb.MaxItemBytes)
		require.NoError(t, testenv.WriteRow(table, testenv.ItemRow("features", "at", at.Item)), "version %d", version)
		over := flagOfRowSize(t, "over", version, lddynamodb.MaxItemBytes+1)
		err := testenv.WriteRow(table, testenv.ItemRow("features", "over", over.Item))
		require.ErrorContains(t, err, "Item size has exceeded", "version %d", version)
	}
}

// TestInitSkipsItemsDynamoDBCannotHold checks the boundaries: a row of exactly MaxItemBytes and a
// key of exactly MaxSortKeyBytes are written; one byte more, or an empty key, is skipped with an
// error log, counted, and its older row removed, so that readers see the item missing rather
// than outdated; the rest of the data is written and the store initialized. Large items are off,
// so that rows over the limit are skipped as they were before them (TestLargeItemBoundaries
// checks the same sizes with large items on).
func TestInitSkipsItemsDynamoDBCannotHold(t *testing.T) {
	table := testenv.NewTable(t)
	metrics := &lddynamodb.Metrics{}
	store, mockLog := testenv.Build(t, testenv.DataStore(table).Metrics(metrics).LargeItems(false))
	longKey := strings.Repeat("k", lddynamodb.MaxSortKeyBytes)
	tooLongKey := longKey + "k"
	first := []ldstoretypes.KeyedSerializedItemDescriptor{
		testenv.Flag("small", 1, 0), testenv.Flag("grows", 1, 0), testenv.Flag(longKey, 1, 0),
	}
	require.NoError(t, store.Init(testenv.AllData(first, nil)))

	second := []ldstoretypes.KeyedSerializedItemDescriptor{
		testenv.Flag("small", 2, 0),
		flagOfRowSize(t, "at-limit", 1, lddynamodb.MaxItemBytes),
		flagOfRowSize(t, "over-limit", 1, lddynamodb.MaxItemBytes+1),
		flagOfRowSize(t, "grows", 2, lddynamodb.MaxItemBytes+1),
		testenv.Flag(longKey, 2, 0),
		testenv.Flag(tooLongKey, 1, 0),
		testenv.Flag("", 1, 0),
	}
	metrics.Reset()
	require.NoError(t, store.Init(testenv.AllData(second, nil)))
	assert.True(t, store.IsInitialized())
	versions := map[string]int{}
	for _, row := range testenv.Rows(t, table, "features") {
		key, item, err := lddynamodb.DecodeRow(row)
		require.NoError(t, err)
		versions[key] = item.Version
	}
	assert.Equal(t, map[string]int{"small": 2, "at-limit": 1, longKey: 2}, versions,
		"written: the items DynamoDB can hold; gone: the older row of the one it cannot")
	assert.Equal(t, int64(4), metrics.Snapshot().SkippedItems)

	errs := mockLog.GetOutput(ldlog.Error)
	require.Len(t, errs, 4)
	joined := strings.Join(errs, "\n")
	assert.Contains(t, joined, `features "over-limit" not stored: the row is 409601 bytes, over DynamoDB's item limit of 409600`)
	assert.Contains(t, joined, `features "grows" not stored: the row is 409601 bytes`)
	assert.Contains(t, joined, `the key is 1025 bytes, over DynamoDB's sort key limit of 1024`)
	assert.Contains(t, joined, `features "" not stored: the key is empty`)
	assert.Contains(t, joined, table)

	// The StaleIfError layer does not remember what the table does not hold: with DynamoDB
	// unreachable, the skipped item reads as missing, not as the version that was never stored.
	inj := faults.New(1, nil)
	stale, _ := testenv.Build(t, testenv.DataStore(table).ClientOptions(dynamodb.Options{}, inj.ClientOption()).StaleIfError(time.Hour).LargeItems(false))
	require.NoError(t, stale.Init(testenv.AllData(first, nil)))
	require.NoError(t, stale.Init(testenv.AllData(second, nil)))
	inj.SetAll(faults.Fault{Outage: true})
	item, err := stale.Get(features, "grows")
	require.NoError(t, err)
	assert.Equal(t, -1, item.Version, "served as missing")
	item, err = stale.Get(features, "small")
	require.NoError(t, err)
	assert.Equal(t, 2, item.Version)
}

// TestUpsertRefusesWhatDynamoDBCannotHold checks that Upsert names the kind, key, size or key
// length and the limit, instead of passing on DynamoDB's refusal, at each limit's boundary.
func TestUpsertRefusesWhatDynamoDBCannotHold(t *testing.T) {
	table := testenv.NewTable(t)
	metrics := &lddynamodb.Metrics{}
	store, _ := testenv.Build(t, testenv.DataStore(table).Metrics(metrics).LargeItems(false))
	longKey := strings.Repeat("k", lddynamodb.MaxSortKeyBytes)
	for _, ok := range []ldstoretypes.KeyedSerializedItemDescriptor{
		flagOfRowSize(t, "at-limit", 1, lddynamodb.MaxItemBytes), testenv.Flag(longKey, 1, 0),
	} {
		updated, err := store.Upsert(features, ok.Key, ok.Item)
		require.NoError(t, err)
		assert.True(t, updated)
	}
	for _, tc := range []struct {
		item    ldstoretypes.KeyedSerializedItemDescriptor
		wantErr string
	}{
		{flagOfRowSize(t, "huge", 1, lddynamodb.MaxItemBytes+1), `upsert features "huge" version 1: not stored: the row is 409601 bytes, over DynamoDB's item limit of 409600`},
		{testenv.Flag(longKey+"k", 1, 0), `the key is 1025 bytes, over DynamoDB's sort key limit of 1024`},
		{testenv.Flag("", 1, 0), `upsert features "" version 1: not stored: the key is empty`},
	} {
		updated, err := store.Upsert(features, tc.item.Key, tc.item.Item)
		assert.False(t, updated)
		require.ErrorContains(t, err, tc.wantErr)
		assert.ErrorContains(t, err, table)
	}
	assert.Equal(t, int64(3), metrics.Snapshot().SkippedItems)

	// The partition key limit cannot be reached through a prefix: Build refuses a prefix long
	// enough for it, since the marker's sort key would be over 1,024 bytes first.
}

// quotedFlag is a flag whose row is about size bytes and whose JSON is almost all `\"` (a
// variation of double quotes): on the wire, where the JSON is escaped again, it takes twice its
// row size.
func quotedFlag(key string, size int) ldstoretypes.KeyedSerializedItemDescriptor {
	flag := ldbuilders.NewFlagBuilder(key).Version(1).On(true).
		Variations(ldvalue.Bool(true), ldvalue.String(strings.Repeat(`"`, size/2-200))).FallthroughVariation(0).Build()
	return ldstoretypes.KeyedSerializedItemDescriptor{Key: key, Item: ldstoretypes.SerializedItemDescriptor{
		Version: 1, SerializedItem: features.Serialize(ldstoretypes.ItemDescriptor{Version: 1, Item: &flag})}}
}

// TestInitCutsBatchesByRequestSize writes 25 legal rows of about 390 KB whose JSON is mostly
// escaped quotes: one batch of them is over 16 MB as sent (the local server answers 413), so Init
// must cut batches by encoded size as well as by count.
func TestInitCutsBatchesByRequestSize(t *testing.T) {
	table := testenv.NewTable(t)
	metrics := &lddynamodb.Metrics{}
	store, _ := testenv.Build(t, testenv.DataStore(table).Metrics(metrics).BatchConcurrency(1))
	var flags []ldstoretypes.KeyedSerializedItemDescriptor
	for i := range 25 {
		f := quotedFlag(fmt.Sprintf("quoted-%02d", i), 390_000)
		require.LessOrEqual(t, lddynamodb.RowSize(testenv.ItemRow("features", f.Key, f.Item)), lddynamodb.MaxItemBytes)
		flags = append(flags, f)
	}
	data := testenv.AllData(flags, nil)
	require.NoError(t, store.Init(data))
	assert.Zero(t, testenv.Lost(t, table, data))
	assert.Equal(t, int64(2), metrics.Snapshot().Calls["BatchWriteItem"], "25 rows of 780 KB as sent go in two requests")
	assert.Zero(t, partCount(t, table, features), "every row fits: none is stored large")
}
