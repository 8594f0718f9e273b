package lddynamodb

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// paceSim is one partition key of a simulated DynamoDB and senders senders that each send a batch
// of 25 units whenever their previous one is answered (latency later) and the pacer lets them, on
// a clock of its own: the pacer's rules, followed through seconds of answers in no time.
type paceSim struct {
	p       pacer
	now     time.Time
	latency time.Duration
	senders int
	// limit is the write limit at a time (0: none), with one second of it saved up at most, as
	// faults.SetWriteSchedule has it; every noiseEvery-th call has half its units handed back
	// whatever the rate.
	limit      func(elapsed time.Duration) float64
	noiseEvery int
	start      time.Time
	bucket     float64
	filled     time.Time
	calls      int
	flight     []simCall // in the order sent, so answered
	// sent and accepted count units since the last reset.
	sent, accepted int
}

// simCall is a call in flight: DynamoDB took accepted of its units when it was sent.
type simCall struct {
	sent     time.Time
	accepted int
}

func newPaceSim(limit func(time.Duration) float64, noiseEvery int) *paceSim {
	t0 := time.Unix(1000, 0)
	return &paceSim{now: t0, start: t0, filled: t0, latency: 6 * time.Millisecond, senders: 1,
		limit: limit, noiseEvery: noiseEvery, bucket: limit(0)}
}

// run sends for d of simulated time.
func (s *paceSim) run(d time.Duration) {
	for end := s.now.Add(d); s.now.Before(end); {
		next := time.Time{} // when the pacer lets the next call go, if a sender is free
		if len(s.flight) < s.senders {
			w := s.p.wait(s.now)
			if w == 0 {
				s.send()
				continue
			}
			next = s.now.Add(w)
		}
		if len(s.flight) > 0 {
			if due := s.flight[0].sent.Add(s.latency); next.IsZero() || !due.After(next) {
				c := s.flight[0]
				s.flight = s.flight[1:]
				s.now = due
				s.p.observe(c.sent, s.now, maxBatchWriteItems, c.accepted)
				s.accepted += c.accepted
				continue
			}
		}
		s.now = next
	}
}

func (s *paceSim) send() {
	sent := s.now
	s.p.spend(maxBatchWriteItems, sent)
	s.calls++
	accepted := maxBatchWriteItems
	if s.noiseEvery > 0 && s.calls%s.noiseEvery == 0 {
		accepted /= 2
	}
	if limit := s.limit(sent.Sub(s.start)); limit > 0 {
		s.bucket = min(limit, s.bucket+sent.Sub(s.filled).Seconds()*limit)
		s.filled = sent
		accepted = min(accepted, int(s.bucket))
		s.bucket -= float64(accepted)
	}
	s.flight = append(s.flight, simCall{sent, accepted})
	s.sent += maxBatchWriteItems
}

// measure runs for d and returns the units accepted a second and the share handed back.
func (s *paceSim) measure(d time.Duration) (rate, handedBack float64) {
	s.sent, s.accepted = 0, 0
	s.run(d)
	return float64(s.accepted) / d.Seconds(), 1 - float64(s.accepted)/float64(s.sent)
}

func steadyLimit(rate float64) func(time.Duration) float64 {
	return func(time.Duration) float64 { return rate }
}

func limitAfter(before, after float64, at time.Duration) func(time.Duration) float64 {
	return func(d time.Duration) float64 {
		if d < at {
			return before
		}
		return after
	}
}

// TestPacer follows the pacer's rules (pacer.go) through simulated answers.
func TestPacer(t *testing.T) {
	const unpaced = 25 / 0.006 // units a second of one sender without a pace

	t.Run("refusals whatever the rate never slow it", func(t *testing.T) {
		s := newPaceSim(steadyLimit(0), 10)
		rate, _ := s.measure(10 * time.Second)
		assert.Greater(t, rate, 0.9*0.95*unpaced, "as fast as unpaced, less the 5 %% handed back")
		assert.True(t, s.p.rate == 0 || s.p.pace() >= 0.9*unpaced, "pace %.0f", s.p.pace())
	})
	t.Run("a large share handed back whatever the rate never slows it for long", func(t *testing.T) {
		// Every call has half its units handed back: the share of a limit far exceeded, but the
		// same at any pace, as when other writers share the key.
		s := newPaceSim(steadyLimit(0), 1)
		s.run(5 * time.Second)
		rate, _ := s.measure(5 * time.Second)
		assert.Greater(t, rate, 0.5*0.5*unpaced, "pace %.0f", s.p.pace())
	})
	t.Run("at a steady limit it sends at the limit", func(t *testing.T) {
		s := newPaceSim(steadyLimit(1000), 0)
		s.run(2 * time.Second)
		assert.NotZero(t, s.p.rate, "paced once every call was handed back in part")
		rate, handedBack := s.measure(8 * time.Second)
		assert.InDelta(t, 1000, rate, 130, "one second saved up counts for 125 a second here")
		assert.Less(t, handedBack, 0.05)
	})
	t.Run("with calls in flight, it paces at the limit from the first refusals", func(t *testing.T) {
		s := newPaceSim(steadyLimit(1000), 0)
		s.senders, s.latency = 8, 16*time.Millisecond // 12,500 units a second unpaced
		for !s.p.paced() {
			s.run(time.Millisecond)
		}
		assert.InDelta(t, 1000, s.p.rate, 50, "the least limit that lets the key take what it took, with one second saved up")
		s.run(3 * time.Second)
		handedBack := s.sent - s.accepted - len(s.flight)*maxBatchWriteItems
		assert.Less(t, handedBack, (s.senders+4)*maxBatchWriteItems,
			"the calls in flight when the key ran dry, and a few more in 3 s")
	})
	t.Run("a scattered refusal holds calls in flight until one sent after it is taken", func(t *testing.T) {
		s := newPaceSim(steadyLimit(0), 10)
		s.senders = 8
		rate, _ := s.measure(10 * time.Second)
		assert.False(t, s.p.paced())
		assert.Greater(t, rate, 0.9*0.95*8*unpaced, "as fast as unpaced, less the 5 %% handed back")
	})
	t.Run("with refusals at a limit too, it sends at the limit", func(t *testing.T) {
		s := newPaceSim(steadyLimit(1000), 10)
		s.run(2 * time.Second)
		rate, handedBack := s.measure(8 * time.Second)
		assert.InDelta(t, 1000, rate, 130, "one second saved up counts for 125 a second here")
		assert.Less(t, handedBack, 0.05+0.06)
	})
	t.Run("a falling limit is followed within a few rounds", func(t *testing.T) {
		s := newPaceSim(limitAfter(2000, 500, 3*time.Second), 0)
		s.run(time.Second)
		rate, _ := s.measure(2 * time.Second)
		assert.InDelta(t, 2000, rate, 250, "paced to the first limit")
		_, handedBack := s.measure(5 * paceRound)
		assert.Less(t, handedBack, 0.5, "down to the new limit within a few rounds")
		rate, handedBack = s.measure(5 * time.Second)
		assert.InDelta(t, 500, rate, 60)
		assert.Less(t, handedBack, 0.08)
	})
	t.Run("a rising limit is found within a few rounds", func(t *testing.T) {
		s := newPaceSim(limitAfter(400, 2000, 3*time.Second), 0)
		s.run(time.Second)
		rate, _ := s.measure(2 * time.Second)
		assert.InDelta(t, 400, rate, 60, "paced to the first limit")
		rate, _ = s.measure(10 * paceRound)
		assert.Greater(t, rate, 700.0, "climbing within a few rounds, probing faster while calls are taken whole")
		s.run(2 * time.Second) // what the key saved up below its new limit is spent
		rate, _ = s.measure(5 * time.Second)
		assert.InDelta(t, 2000, rate, 250)
	})
	t.Run("the deadline's floor", func(t *testing.T) {
		s := newPaceSim(steadyLimit(100), 0)
		s.run(3 * time.Second)
		assert.False(t, s.p.held())
		s.p.floor = 600
		assert.Equal(t, 600.0, s.p.pace(), "the floor sets the pace above what DynamoDB accepts")
		assert.True(t, s.p.held())
		rate, handedBack := s.measure(2 * time.Second)
		assert.InDelta(t, 100, rate, 60, "DynamoDB still takes its limit (and what it saved up)")
		assert.Greater(t, handedBack, 0.5, "sent at the floor")
	})
}
