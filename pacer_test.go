package lddynamodb

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// paceSim is one partition key of a simulated DynamoDB and one sender that sends a batch of 25
// units whenever the previous one is answered (latency later) and the pacer lets it, on a clock
// of its own: the pacer's rules, followed through seconds of answers in no time.
type paceSim struct {
	p       pacer
	now     time.Time
	latency time.Duration
	// limit is the write limit at a time (0: none), with one second of it saved up at most, as
	// faults.SetWriteSchedule has it; every noiseEvery-th call has half its units handed back
	// whatever the rate.
	limit      func(elapsed time.Duration) float64
	noiseEvery int
	start      time.Time
	bucket     float64
	filled     time.Time
	calls      int
	// sent and accepted count units since the last reset.
	sent, accepted int
}

func newPaceSim(limit func(time.Duration) float64, noiseEvery int) *paceSim {
	t0 := time.Unix(1000, 0)
	return &paceSim{now: t0, start: t0, filled: t0, latency: 6 * time.Millisecond, limit: limit,
		noiseEvery: noiseEvery, bucket: limit(0)}
}

// run sends for d of simulated time.
func (s *paceSim) run(d time.Duration) {
	for end := s.now.Add(d); s.now.Before(end); {
		if w := s.p.wait(s.now); w > 0 {
			s.now = s.now.Add(w)
			continue
		}
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
		s.now = sent.Add(s.latency)
		s.p.observe(sent, s.now, maxBatchWriteItems, accepted)
		s.sent += maxBatchWriteItems
		s.accepted += accepted
	}
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
