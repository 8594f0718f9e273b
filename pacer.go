package lddynamodb

import "time"

const (
	// minPaceRate is the slowest pace, in write units a second, that throttling brings a
	// partition down to: one full batch a second.
	minPaceRate = maxBatchWriteItems
	// paceDecrease is the factor by which a throttle slows a partition's pace, at most once per
	// paceDecreaseInterval; each unit accepted while not throttled raises it by paceIncrease.
	paceDecrease         = 0.9
	paceDecreaseInterval = 200 * time.Millisecond
	paceIncrease         = 0.5
	// paceBurst is how much sending a paced partition may save up while it waits.
	paceBurst = 50 * time.Millisecond
)

// pacer paces the writes to one partition key. It sends freely until DynamoDB first throttles
// the key; from then on it spends write units from a bucket filled at rate units a second, which
// it sets to what DynamoDB accepts, learnt from the answers (additive increase, multiplicative
// decrease):
//   - at the first throttle, to the units accepted over the last second;
//   - at each throttle after, never below the rate of units accepted in calls sent since the
//     first throttle, over the last second at most (DynamoDB sustains that much: capacity it had
//     saved up is spent by then), nor minPaceRate: at the second, to that rate; later, down by
//     paceDecrease. It slows at most once per paceDecreaseInterval, and only for calls sent
//     after it last slowed, whose answers tell of the new pace;
//   - for each unit accepted in a call with nothing throttled, up by paceIncrease.
type pacer struct {
	rate      float64 // 0 until the first throttle
	tokens    float64
	at        time.Time // when tokens was last brought up to date
	slowedAt  time.Time
	throttled time.Time // the first throttle
	// calibrated says that the rate was set once from what DynamoDB accepted after the first
	// throttle.
	calibrated bool
	// accepted holds the units accepted in calls sent over the last second, and acceptedSum
	// their sum.
	accepted    []acceptedUnits
	acceptedSum int
}

type acceptedUnits struct {
	at    time.Time
	units int
}

// wait is how long to wait before the next batch may be sent.
func (p *pacer) wait(now time.Time) time.Duration {
	if p.rate == 0 {
		return 0
	}
	p.refill(now)
	if p.tokens >= 0 {
		return 0
	}
	return time.Duration(-p.tokens / p.rate * float64(time.Second))
}

func (p *pacer) refill(now time.Time) {
	p.tokens = min(p.tokens+now.Sub(p.at).Seconds()*p.rate, p.rate*paceBurst.Seconds())
	p.at = now
}

// spend takes the units of a batch being sent; the bucket may go into debt by one batch.
func (p *pacer) spend(units int, now time.Time) {
	if p.rate == 0 {
		return
	}
	p.refill(now)
	p.tokens -= float64(units)
}

// observe learns from the answer to a call sent at sent: accepted units, and how many writes
// were throttled.
func (p *pacer) observe(sent, now time.Time, accepted, throttled int) {
	p.accepted = append(p.accepted, acceptedUnits{sent, accepted})
	p.acceptedSum += accepted
	for len(p.accepted) > 0 && now.Sub(p.accepted[0].at) > time.Second {
		p.acceptedSum -= p.accepted[0].units
		p.accepted = p.accepted[1:]
	}
	switch {
	case throttled == 0 && p.rate > 0:
		p.rate += paceIncrease * float64(accepted)
	case throttled == 0:
	case p.rate == 0:
		p.rate = max(float64(p.acceptedSum), minPaceRate)
		p.tokens, p.at, p.slowedAt, p.throttled = 0, now, now, now
	case sent.After(p.slowedAt) && now.Sub(p.slowedAt) >= paceDecreaseInterval:
		rate := p.rate * paceDecrease
		if !p.calibrated {
			// The first rate counted capacity that DynamoDB had saved up; what it accepted
			// since is the rate it sustains.
			rate, p.calibrated = 0, true
		}
		p.rate = max(rate, p.acceptedRate(now), minPaceRate)
		p.slowedAt = now
	}

}

// acceptedRate is the rate of units accepted in calls sent since the first throttle, over the
// last second at most.
func (p *pacer) acceptedRate(now time.Time) float64 {
	since := now.Add(-time.Second)
	if p.throttled.After(since) {
		since = p.throttled
	}
	units := 0
	for _, a := range p.accepted {
		if a.at.After(since) {
			units += a.units
		}
	}
	return float64(units) / now.Sub(since).Seconds()
}
