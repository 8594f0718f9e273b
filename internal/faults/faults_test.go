package faults_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lddynamodb/lddynamodb/internal/faults"
	"github.com/lddynamodb/lddynamodb/internal/testenv"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m))
}

// client is a client of the test server through inj, without the AWS SDK's retries, so that
// every injected fault reaches the caller.
func client(inj *faults.Injector) *dynamodb.Client {
	return dynamodb.NewFromConfig(testenv.AWSConfig(), testenv.WithEndpoint, inj.ClientOption(),
		func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
}

func key(k string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"namespace": &types.AttributeValueMemberS{Value: "ns"},
		"key":       &types.AttributeValueMemberS{Value: k},
	}
}

func row(k string) map[string]types.AttributeValue {
	r := key(k)
	r["version"] = &types.AttributeValueMemberN{Value: "1"}
	return r
}

func exists(t *testing.T, table, k string) bool {
	t.Helper()
	out, err := testenv.Client().GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(table), Key: key(k), ConsistentRead: aws.Bool(true)})
	require.NoError(t, err)
	return out.Item != nil
}

func TestErrorRepliesAreDynamoDBErrors(t *testing.T) {
	table := testenv.NewTable(t)
	for _, tc := range []struct {
		action faults.Action
		code   string
		status int
	}{
		{faults.ProvisionedThroughputExceeded, "ProvisionedThroughputExceededException", 400},
		{faults.Throttling, "ThrottlingException", 400},
		{faults.RequestLimitExceeded, "RequestLimitExceeded", 400},
		{faults.InternalServerError, "InternalServerError", 500},
		{faults.ServiceUnavailable, "ServiceUnavailableException", 503},
		{faults.ExpiredToken, "ExpiredTokenException", 400},
	} {
		t.Run(tc.action.String(), func(t *testing.T) {
			inj := faults.New(1, nil)
			inj.Script("PutItem", tc.action)
			_, err := client(inj).PutItem(context.Background(), &dynamodb.PutItemInput{
				TableName: aws.String(table), Item: row(tc.code)})
			var apiErr smithy.APIError
			require.ErrorAs(t, err, &apiErr)
			assert.Equal(t, tc.code, apiErr.ErrorCode())
			assert.False(t, exists(t, table, tc.code), "the server must not have seen the call")
			assert.Equal(t, []faults.Call{{Op: "PutItem", Action: tc.action, Status: tc.status}}, untimed(inj.Calls()))
		})
	}
	t.Run("modeled type", func(t *testing.T) {
		inj := faults.New(1, nil)
		inj.Script("GetItem", faults.ProvisionedThroughputExceeded)
		_, err := client(inj).GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(table), Key: key("x")})
		var pte *types.ProvisionedThroughputExceededException
		assert.ErrorAs(t, err, &pte)
	})
}

func TestSDKRetriesInjectedThrottles(t *testing.T) {
	table := testenv.NewTable(t)
	inj := faults.New(1, nil)
	inj.Script("PutItem", faults.Throttling, faults.InternalServerError)
	c := dynamodb.NewFromConfig(testenv.AWSConfig(), testenv.WithEndpoint, inj.ClientOption(),
		func(o *dynamodb.Options) { o.RetryMaxAttempts = 3 })
	_, err := c.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: row("a")})
	require.NoError(t, err)
	assert.True(t, exists(t, table, "a"))
	assert.Equal(t, map[string]int{"PutItem": 3}, inj.CountByOp())
}

func TestUnprocessedForwardsOnlyPartOfABatch(t *testing.T) {
	table := testenv.NewTable(t)
	for seed := int64(1); seed <= 5; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			inj := faults.New(seed, nil)
			inj.Script("BatchWriteItem", faults.Unprocessed)
			var writes []types.WriteRequest
			for n := range 25 {
				writes = append(writes, types.WriteRequest{PutRequest: &types.PutRequest{Item: row(fmt.Sprintf("%d-%d", seed, n))}})
			}
			out, err := client(inj).BatchWriteItem(context.Background(), &dynamodb.BatchWriteItemInput{
				RequestItems: map[string][]types.WriteRequest{table: writes}})
			require.NoError(t, err)
			handedBack := map[string]bool{}
			for _, w := range out.UnprocessedItems[table] {
				handedBack[w.PutRequest.Item["key"].(*types.AttributeValueMemberS).Value] = true
			}
			calls := inj.Calls()
			require.Len(t, calls, 1)
			assert.Equal(t, 25, calls[0].Items)
			assert.Equal(t, len(handedBack), calls[0].Unprocessed)
			assert.NotZero(t, len(handedBack), "a partial batch hands back at least one item")
			require.Len(t, calls[0].Writes, 25)
			for n, w := range calls[0].Writes {
				k := fmt.Sprintf("%d-%d", seed, n)
				assert.Equal(t, faults.Write{Namespace: "ns", Key: k, Units: 1, Held: handedBack[k]}, w)
				assert.NotEqual(t, handedBack[k], exists(t, table, k), "item %s must be written or handed back, not both", k)
			}
		})
	}
}

// TestWriteRateLimitsEachPartition sets a rate of one write unit a second, so that each
// partition key's bucket holds one unit at first and refills too slowly to matter here.
func TestWriteRateLimitsEachPartition(t *testing.T) {
	table := testenv.NewTable(t)
	inj := faults.New(1, nil)
	inj.SetWriteRate(1)
	c := client(inj)
	batch := func(namespace string, n int) ([]types.WriteRequest, error) {
		var writes []types.WriteRequest
		for i := range n {
			item := row(fmt.Sprintf("%s-%d", namespace, i))
			item["namespace"] = &types.AttributeValueMemberS{Value: namespace}
			writes = append(writes, types.WriteRequest{PutRequest: &types.PutRequest{Item: item}})
		}
		out, err := c.BatchWriteItem(context.Background(), &dynamodb.BatchWriteItemInput{
			RequestItems: map[string][]types.WriteRequest{table: writes}})
		if err != nil {
			return nil, err
		}
		return out.UnprocessedItems[table], nil
	}
	unprocessed, err := batch("a", 25)
	require.NoError(t, err)
	assert.Len(t, unprocessed, 24, "the first write takes the one unit in the bucket")
	_, err = batch("a", 3)
	var pte *types.ProvisionedThroughputExceededException
	require.ErrorAs(t, err, &pte, "nothing left: the whole call is refused")
	unprocessed, err = batch("b", 2)
	require.NoError(t, err)
	assert.Len(t, unprocessed, 1, "another partition key has a bucket of its own")
	_, err = c.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: row("single")})
	require.NoError(t, err, "partition ns has its unit")
	_, err = c.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: row("single-2")})
	require.ErrorAs(t, err, &pte)

	calls := inj.Calls()
	require.Len(t, calls, 5)
	assert.Equal(t, faults.Unprocessed, calls[0].Action)
	assert.Equal(t, 24, calls[0].Unprocessed)
	assert.False(t, calls[0].Writes[0].Held)
	assert.True(t, calls[0].Writes[1].Held)
	assert.Equal(t, faults.ProvisionedThroughputExceeded, calls[1].Action)
	assert.True(t, calls[1].Writes[0].Held)
	for _, call := range calls {
		assert.False(t, call.Answered.Before(call.Sent))
	}
}

// TestJitterSpreadsLatency checks that Jitter adds a random delay to Latency, so that calls are
// answered out of order.
func TestJitterSpreadsLatency(t *testing.T) {
	table := testenv.NewTable(t)
	inj := faults.New(1, nil)
	inj.SetAll(faults.Fault{Latency: time.Millisecond, Jitter: 20 * time.Millisecond})
	for range 10 {
		_, err := client(inj).GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(table), Key: key("k")})
		require.NoError(t, err)
	}
	durations := map[time.Duration]bool{}
	for _, call := range inj.Calls() {
		d := call.Answered.Sub(call.Sent)
		assert.GreaterOrEqual(t, d, time.Millisecond)
		durations[d.Round(time.Millisecond)] = true
	}
	assert.Greater(t, len(durations), 1, "latencies differ")
}

func TestResets(t *testing.T) {
	table := testenv.NewTable(t)
	for _, tc := range []struct {
		action      faults.Action
		serverSawIt bool
	}{
		{faults.ResetBefore, false},
		{faults.ResetAfter, true},
	} {
		t.Run(tc.action.String(), func(t *testing.T) {
			inj := faults.New(1, nil)
			inj.Script("", tc.action)
			_, err := client(inj).PutItem(context.Background(), &dynamodb.PutItemInput{
				TableName: aws.String(table), Item: row(tc.action.String())})
			require.ErrorContains(t, err, "connection reset")
			assert.Equal(t, tc.serverSawIt, exists(t, table, tc.action.String()))
			assert.Equal(t, []faults.Call{{Op: "PutItem", Action: tc.action, Forwarded: tc.serverSawIt}}, untimed(inj.Calls()))
		})
	}
}

func TestOutageAndClear(t *testing.T) {
	table := testenv.NewTable(t)
	inj := faults.New(1, nil)
	c := client(inj)
	get := func() error {
		_, err := c.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(table), Key: key("x")})
		return err
	}
	inj.SetAll(faults.Fault{Outage: true})
	for range 3 {
		assert.ErrorContains(t, get(), "connection reset")
	}
	inj.Clear()
	assert.NoError(t, get())
	assert.Equal(t, map[string]int{"GetItem": 4}, inj.CountByOp())
}

func TestPerOperationFaultsWinOverTheDefault(t *testing.T) {
	table := testenv.NewTable(t)
	inj := faults.New(1, nil)
	inj.Set("", faults.Fault{Outage: true})
	inj.Set("GetItem", faults.Fault{})
	c := client(inj)
	_, err := c.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(table), Key: key("x")})
	assert.NoError(t, err)
	_, err = c.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: row("x")})
	assert.ErrorContains(t, err, "connection reset")
}

func TestLatencyEndsWithTheContext(t *testing.T) {
	table := testenv.NewTable(t)
	inj := faults.New(1, nil)
	inj.SetAll(faults.Fault{Latency: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := client(inj).GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key("x")})
	assert.True(t, errors.Is(err, context.DeadlineExceeded), "got %v", err)
}

func TestRatesAreSeededAndRoughlyKept(t *testing.T) {
	table := testenv.NewTable(t)
	f := faults.Fault{ThrottleRate: 0.2, ErrorRate: 0.1, ResetBeforeRate: 0.1, ResetAfterRate: 0.1}
	run := func(seed int64) []faults.Action {
		inj := faults.New(seed, nil)
		inj.SetAll(f)
		c := client(inj)
		for range 400 {
			_, _ = c.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(table), Key: key("x")})
		}
		var actions []faults.Action
		for _, call := range inj.Calls() {
			actions = append(actions, call.Action)
		}
		return actions
	}
	first := run(7)
	assert.Equal(t, first, run(7), "a seed replays the same faults")
	counts := map[faults.Action]int{}
	for _, a := range first {
		counts[a]++
	}
	throttles := counts[faults.ProvisionedThroughputExceeded] + counts[faults.Throttling] + counts[faults.RequestLimitExceeded]
	// 400 draws: each share lies well within these bounds unless the rates are ignored.
	assert.InDelta(t, 80, throttles, 40)
	assert.InDelta(t, 40, counts[faults.InternalServerError]+counts[faults.ServiceUnavailable], 25)
	assert.InDelta(t, 40, counts[faults.ResetBefore], 25)
	assert.InDelta(t, 40, counts[faults.ResetAfter], 25)
	assert.InDelta(t, 200, counts[faults.Pass], 50)
	assert.Zero(t, counts[faults.Unprocessed], "only BatchWriteItem calls are made partial")
}

// untimed is calls without their times, to compare with expected calls.
func untimed(calls []faults.Call) []faults.Call {
	for n := range calls {
		calls[n].Sent, calls[n].Answered = time.Time{}, time.Time{}
	}
	return calls
}

// TestScheduleFloor checks the least time a perfect sender takes under a schedule.
func TestScheduleFloor(t *testing.T) {
	tests := []struct {
		name     string
		schedule faults.Schedule
		units    float64
		floor    time.Duration
	}{
		{"within the first second's units", faults.Schedule{{0, 1000}}, 800, 0},
		{"steady", faults.Schedule{{0, 1000}}, 6000, 5 * time.Second},
		{"falling", faults.Schedule{{0, 2000}, {time.Second, 500}}, 5000, 3 * time.Second},
		{"rising", faults.Schedule{{0, 400}, {2 * time.Second, 2000}}, 5000, 3900 * time.Millisecond},
		{"done before the step", faults.Schedule{{0, 400}, {2 * time.Second, 2000}}, 1000, 1500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.InDelta(t, tt.floor, tt.schedule.Floor(tt.units), float64(time.Microsecond))
		})
	}
}

// TestWriteScheduleFollowsItsSteps writes under a limit that rises, then under one that falls:
// the bucket follows the rate of the moment, and holds at most one second of it.
func TestWriteScheduleFollowsItsSteps(t *testing.T) {
	table := testenv.NewTable(t)
	inj := faults.New(1, nil)
	c := client(inj)
	batch := func(prefix string, n int) []types.WriteRequest {
		var writes []types.WriteRequest
		for i := range n {
			writes = append(writes, types.WriteRequest{PutRequest: &types.PutRequest{Item: row(fmt.Sprintf("%s-%d", prefix, i))}})
		}
		out, err := c.BatchWriteItem(context.Background(), &dynamodb.BatchWriteItemInput{
			RequestItems: map[string][]types.WriteRequest{table: writes}})
		require.NoError(t, err)
		return out.UnprocessedItems[table]
	}

	inj.SetWriteSchedule(faults.Step{At: 0, Rate: 1}, faults.Step{At: 100 * time.Millisecond, Rate: 1000})
	assert.Len(t, batch("rising", 25), 24, "one unit at first")
	time.Sleep(150 * time.Millisecond)
	assert.Empty(t, batch("risen", 25), "the risen rate refilled the bucket")

	inj.SetWriteSchedule(faults.Step{At: 0, Rate: 1000}, faults.Step{At: 50 * time.Millisecond, Rate: 1})
	assert.Empty(t, batch("falling", 25), "a second of the first rate at first")
	time.Sleep(100 * time.Millisecond)
	assert.Len(t, batch("fallen", 3), 2, "the fallen rate holds one unit at most, whatever was saved up")
}

// TestScheduleFloorAtASenderSpeed checks the floor of a sender that cannot send faster than a
// given rate: no faster than sending everything at that rate, and no faster than the schedule.
func TestScheduleFloorAtASenderSpeed(t *testing.T) {
	steady := faults.Schedule{{0, 1000}}
	assert.InDelta(t, 5*time.Second, steady.FloorAt(6000, 0), float64(time.Microsecond), "no bound: Floor")
	assert.InDelta(t, 6*time.Second, steady.FloorAt(6000, 1000), float64(2*time.Millisecond), "at the limit's own rate, the saved second is no help")
	assert.InDelta(t, 3*time.Second, steady.FloorAt(600, 200), float64(2*time.Millisecond), "slower than the limit: the sender's rate")
	falling := faults.Schedule{{0, 2000}, {time.Second, 500}}
	assert.InDelta(t, 3*time.Second, falling.FloorAt(5000, 1e9), float64(5*time.Millisecond), "fast enough: Floor")
	// At 2,000 a second the sender writes 2,000 units in the first second (it cannot spend the
	// saved ones that fast), then the 500 the bucket keeps at once, and 2,500 at 500 a second.
	assert.InDelta(t, 6*time.Second, falling.FloorAt(5000, 2000), float64(5*time.Millisecond))
}
