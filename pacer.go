package lddynamodb

import "time"

// The pacer: how fast Init sends to one partition key.
//
// DynamoDB hands writes back (UnprocessedItems, or ProvisionedThroughputExceededException) for
// two kinds of reasons: the key gets more than its partition takes (1,000 write units a second,
// or less while other writers share it), which sending slower cures; and everything else (other
// writers' bursts, a storage node's hiccup, capacity moving), which sending slower does not cure
// but only slows the Init. The two differ in how they answer the send rate: when the key is at
// its limit, sending more gets no more accepted and a larger share handed back; refusals of the
// other kind take the same share at any rate, and the accepted rate grows with the send rate.
// So the pacer compares rounds sent at different paces, and follows these rules:
//
//  1. It sends freely until an answer hands writes back. Then, while calls are in flight (and
//     for paceHold at most), it sends no more: if a call sent after the refused one is taken
//     whole, the refusal was scattered and it sends freely again (calls sent before it may
//     have been taken before the key ran dry); if paceRoundCalls answers hand writes back
//     first, a share above the noise by paceExcessShare, it spends write units from a token
//     bucket filled at its pace. The first pace is
//     the least limit that lets the key take what the answers of the last second accepted,
//     with the one second of it that a key saves up full at the start, and the units still in
//     flight are spent from the bucket first.
//  2. A round is at least paceRound and paceRoundCalls answered calls, all sent at one pace. It
//     measures the share r of its units handed back and the accepted rate A: (1-r) times the
//     rate its calls were sent at.
//  3. A round is an excess round, whose refusals the send rate caused, if r is above the noise
//     (rule 6) by paceExcessShare, a clear excess, which ends the round early; or if it is a
//     probe round (its pace was raised) whose r is above the noise by paceNoiseMargin while A
//     did not grow by half the step: sending more was not rewarded.
//  4. After an excess round the pace is A (after a clear excess, what DynamoDB took since the
//     round's first answer that handed writes back, by the answers' time: the key has run dry,
//     so it takes what its limit adds, whoever sent the calls), never above the pace the round
//     was sent at (what it took above it was saved up), nor below paceMaxCut times it, and it
//     holds for paceCruiseRounds rounds.
//  5. After any other round the pace is the best A since the last excess round times 1+step.
//     The step starts at paceProbeStep and doubles, up to a gain of paceMaxGain, with each probe
//     round whose A grew or that handed back no more than the noise: the pace keeps rising
//     while calls are taken, faster the longer they are, so a limit that rises is found in a
//     few rounds. Near the last limit found, it probes by paceProbeStep.
//  6. The noise is the average share handed back by rounds at an unraised pace that were no
//     excess round: refusals that come whatever the rate raise it, and probes are compared
//     with it, so such refusals never slow the pace. A share too large for that (other writers
//     taking much of the key) shows as excess rounds one after another, each at a lower pace,
//     handing back no smaller share while DynamoDB takes less and less (at a limit it would take
//     as much as before): after paceNoiseCuts such rounds, that share is the noise, and the pace
//     goes back to what it was before them. A share over paceMaxNoise is never noise: the key
//     takes next to nothing, and only a slower pace can help.
//  7. The pace never falls below minPaceRate, nor below the floor that the engine sets from the
//     Init's deadline (paceDeadlineFactor times the rate that writes all of the Init's units to
//     the key by then), so that while DynamoDB takes writes at all, the pace never keeps an Init
//     from finishing.
const (
	// minPaceRate is the slowest pace, in write units a second: one full batch a second.
	minPaceRate = maxBatchWriteItems
	// paceRound and paceRoundCalls are the least time and the least answered calls of a round.
	paceRound      = 200 * time.Millisecond
	paceRoundCalls = 4
	// paceLongRound ends a round of fewer calls, at a slow pace.
	paceLongRound = 4 * paceRound
	// paceExcessShare is how far above the noise a share handed back is a clear excess.
	paceExcessShare = 0.15
	// paceNoiseMargin is how much more a probe round must hand back to tell of excess.
	paceNoiseMargin = 0.03
	// paceNoiseWeight is the weight of the last round in the noise average.
	paceNoiseWeight = 0.25
	// paceMaxCut is the least share of its pace that one excess round keeps.
	paceMaxCut = 0.1
	// paceNoiseCuts is how many excess rounds in a row, with no smaller share handed back (by
	// half of paceExcessShare), show that the share is noise, not the pace's doing.
	paceNoiseCuts = 3
	// paceMaxNoise is the largest share handed back that can be taken for noise.
	paceMaxNoise = 0.75
	// paceCruiseRounds is how many rounds the pace holds after an excess round.
	paceCruiseRounds = 2
	// paceProbeStep is the first step of a probe, and paceMaxGain the largest gain.
	paceProbeStep = 0.05
	paceMaxGain   = 1.5
	// paceHold is the longest that an answer handing writes back holds an unpaced sender.
	paceHold = paceRound / 4
	// paceBurst is how much sending a paced partition may save up while it waits.
	paceBurst = 50 * time.Millisecond
)

// pacer paces the writes to one partition key (see the rules above).
type pacer struct {
	rate   float64 // 0 until the first excess round
	tokens float64
	at     time.Time // when tokens was last brought up to date
	// floor is the least pace the engine allows, from the Init's deadline.
	floor float64

	round time.Time // when the current round started (its pace was set)
	start time.Time // the first send
	// calls, units and accepted count the calls sent in the round and answered; taken counts
	// the units accepted in every answer received during the round, whenever its call was sent.
	calls, units, accepted, taken int
	lastTaken                     int // taken in the last round, which lasted lastElapsed
	lastElapsed                   time.Duration
	// drained is the first answer of the round that handed units back, and takenSince the units
	// accepted by the answers after it.
	drained    time.Time
	takenSince int
	// firstSent and lastSent are the first and the latest send of the round's answered calls,
	// and lastUnits the units of the latest.
	firstSent, lastSent time.Time
	lastUnits           int
	// Unpaced: suspect is when the call of the first answer that handed writes back was sent
	// (zero if none since the last answer in whole), suspectAt when that answer came,
	// refused the answers since that handed writes back, and inflight the units sent and not
	// answered (or failed otherwise: paceHold bounds the hold).
	suspect, suspectAt time.Time
	refused, inflight  int
	// runUnits and runAccepted are the units and accepted of the answers counted in refused.
	runUnits, runAccepted int
	// window is what the answers of the last second accepted, while unpaced.
	window []paceTaken

	best   float64 // the best accepted rate since the last excess round
	limit  float64 // the pace set by the last excess round
	noise  float64
	cruise int // rounds left before the next probe
	// took is what DynamoDB took lately, by the answers' time, when the last round ended. cuts
	// counts the excess rounds in a row; cutFrom is the rate before the first of them (0:
	// unpaced), and cutShare and cutTook its share handed back and took.
	took                       float64
	cuts                       int
	cutFrom, cutShare, cutTook float64
	step                       float64 // the step of the current probe; 0 if the round is no probe
}

// paceTaken is how many units an answer at a time accepted.
type paceTaken struct {
	at       time.Time
	accepted int
}

// firstPace is the least limit that lets a key take what the answers of the last second
// accepted, if its bucket (one second of its limit) was full when the Init began: in the first t
// seconds such a key takes at most limit·(1+t). Later, what the Init left in the bucket is most
// likely nothing, and the pace is what the last second accepted.
func (p *pacer) firstPace(now time.Time) float64 {
	units := float64(p.lastSecond(now))
	if t := now.Sub(p.start); t < time.Second {
		return units / (1 + t.Seconds())
	}
	return units
}

// lastSecond is how many units the answers of the last second before now accepted: at most the
// limit and one second of it saved up, the most that DynamoDB lets a key take in a second.
func (p *pacer) lastSecond(now time.Time) int {
	units := 0
	for _, t := range p.window {
		if now.Sub(t.at) <= time.Second {
			units += t.accepted
		}
	}
	return units
}

// pace is the rate at which the bucket fills.
func (p *pacer) pace() float64 {
	return max(p.rate, p.floor, minPaceRate)
}

// paced says whether the pacer holds sends back at all.
func (p *pacer) paced() bool { return p.rate > 0 }

// held says whether the deadline's floor, not what DynamoDB accepted, sets the pace.
func (p *pacer) held() bool { return p.rate > 0 && p.floor > max(p.rate, minPaceRate) }

// wait is how long to wait before the next batch may be sent.
func (p *pacer) wait(now time.Time) time.Duration {
	if p.rate == 0 {
		if !p.suspect.IsZero() && p.inflight > 0 && now.Sub(p.suspectAt) < paceHold {
			// Until the calls in flight tell whether the refusal was scattered.
			return paceHold - now.Sub(p.suspectAt)
		}
		return 0
	}
	p.refill(now)
	if p.tokens >= 0 {
		return 0
	}
	return time.Duration(-p.tokens / p.pace() * float64(time.Second))
}

func (p *pacer) refill(now time.Time) {
	rate := p.pace()
	p.tokens = min(p.tokens+now.Sub(p.at).Seconds()*rate, rate*paceBurst.Seconds())
	p.at = now
}

// spend takes the units of a batch being sent; the bucket may go into debt by one batch.
func (p *pacer) spend(units int, now time.Time) {
	if p.round.IsZero() {
		p.round, p.start = now, now
	}
	if p.rate == 0 {
		p.inflight += units
		return
	}
	p.refill(now)
	p.tokens -= float64(units)
}

// forget stops counting in flight the units of a call that came back without an answer to learn
// from (a transient failure, which the engine sends again later).
func (p *pacer) forget(units int) { p.inflight = max(p.inflight-units, 0) }

// observe learns from the answer, at now, to a call sent at sent with units write units, of
// which DynamoDB accepted accepted.
func (p *pacer) observe(sent, now time.Time, units, accepted int) {
	p.taken += accepted
	switch {
	case accepted < units && p.drained.IsZero():
		p.drained = now
	case !p.drained.IsZero():
		p.takenSince += accepted
	}
	if p.rate == 0 && accepted > 0 {
		p.window = append(p.window, paceTaken{now, accepted})
		for now.Sub(p.window[0].at) > time.Second {
			p.window = p.window[1:]
		}
	}
	p.forget(units)
	if !sent.Before(p.round) {
		p.calls++
		p.units += units
		p.accepted += accepted
		if !sent.Before(p.lastSent) {
			p.lastSent, p.lastUnits = sent, units
		}
		if p.calls == 1 || sent.Before(p.firstSent) {
			p.firstSent = sent
		}
	}
	elapsed := now.Sub(p.round)
	// What DynamoDB took during this round and the last, by the answers' time, which no
	// bunching of sends and no retry inside the AWS SDK distorts.
	taken := float64(p.taken+p.lastTaken) / max(elapsed+p.lastElapsed, time.Millisecond).Seconds()
	p.took = taken
	if p.rate == 0 {
		switch {
		case accepted < units:
			if p.suspect.IsZero() {
				p.suspect, p.suspectAt, p.refused, p.runUnits, p.runAccepted = sent, now, 0, 0, 0
			}
			p.refused++
			p.runUnits += units
			p.runAccepted += accepted
		case !sent.Before(p.suspect):
			// A call sent after the one handed back was taken whole: that refusal was
			// scattered. (Calls sent before it may have been taken before the key ran dry.)
			p.suspect = time.Time{}
		}
		runShare := 1 - float64(p.runAccepted)/float64(max(p.runUnits, 1))
		if p.refused >= paceRoundCalls && !p.suspect.IsZero() && runShare >= p.noise+paceExcessShare {
			// Unpaced, an excess shows as every call handed back at least in part, where
			// unrelated refusals are scattered. The next round measures what DynamoDB takes.
			p.endRound(now, elapsed, runShare, p.firstPace(now), true)
			// The calls still in flight take what DynamoDB adds meanwhile, as if sent at the
			// pace (within one round of it).
			p.tokens, p.at = -min(float64(p.inflight), p.rate*paceRound.Seconds()), now
			p.suspect = time.Time{}
		} else if elapsed >= paceRound && p.calls > 0 {
			share := 1 - float64(p.accepted)/float64(p.units)
			p.endRound(now, elapsed, share, taken, false)
		}
		return
	}
	if p.calls < paceRoundCalls && (p.calls == 0 || elapsed < paceLongRound) {
		return
	}
	share := 1 - float64(p.accepted)/float64(p.units)
	clear := share >= p.noise+paceExcessShare
	if elapsed < paceRound && (!clear || elapsed < paceRound/4 || p.calls < 2*paceRoundCalls) {
		return // a clear excess ends the round early
	}
	// The accepted rate is what the round's calls had accepted, at their pace or, if they were
	// sent slower, at the rate they were sent.
	sendRate := p.rate
	if span := p.lastSent.Sub(p.firstSent); span > 0 {
		sendRate = min(sendRate, float64(p.units-p.lastUnits)/span.Seconds())
	}
	acceptedRate := (1 - share) * sendRate
	if clear {
		// Far over the limit, what DynamoDB took since the key ran dry, by the answers' time, is
		// the limit, whoever sent it: the round's own share would read too low a rate while
		// the calls in flight at the last pace take what DynamoDB adds, and what it took
		// before, too high a rate while it spent what it had saved up. Over too short a span,
		// one call more or less would swing it: then what it took during the round.
		acceptedRate = float64(p.taken) / elapsed.Seconds()
		if span := now.Sub(p.drained); span >= paceRound/8 {
			acceptedRate = float64(p.takenSince) / span.Seconds()
		}
	}
	// A probe round sent more: if more was handed back than before and no more accepted, the
	// rate is the cause. Rounds at an unchanged pace only show a clear excess.
	rose := share > p.noise+paceNoiseMargin
	excess := clear || (p.step > 0 && rose && acceptedRate <= p.best*(1+p.step/2))
	p.endRound(now, elapsed, share, acceptedRate, excess)
}

// endRound applies the rules to a round of elapsed that handed back share of its units and
// accepted acceptedRate units a second, and starts the next round.
func (p *pacer) endRound(now time.Time, elapsed time.Duration, share, acceptedRate float64, excess bool) {
	// The accepted rate grew with the send rate, or nothing beyond the noise was handed back:
	// either way the send rate was not what DynamoDB refused.
	grew := acceptedRate > p.best*(1+p.step/2) || share <= p.noise
	switch {
	case excess && p.cuts+1 >= paceNoiseCuts && share >= p.cutShare-paceExcessShare/2 &&
		p.took <= (1-paceExcessShare)*p.cutTook && share < paceMaxNoise:
		// Slower and slower, yet no less handed back: the pace is not the cause.
		p.noise = share
		p.rate, p.cuts, p.cruise, p.step = p.cutFrom, 0, 0, 0
		p.best = max(p.best, acceptedRate)
	case excess:
		if p.cuts == 0 {
			p.cutFrom, p.cutShare, p.cutTook = p.rate, share, p.took
		}
		p.cuts++
		// Answers to calls sent before the round, at another pace, blur what it measured: one
		// cut keeps paceMaxCut of the pace at least, and the next round measures again.
		if p.rate > 0 {
			acceptedRate = min(acceptedRate, p.rate)
		}
		p.rate = max(acceptedRate, p.rate*paceMaxCut, minPaceRate)
		p.best, p.limit = p.rate, p.rate
		p.cruise, p.step = paceCruiseRounds, 0
	default:
		p.cuts = 0
		if p.step == 0 && p.cruise < paceCruiseRounds {
			// What a round at an unraised pace handed back is the noise that probes are
			// compared with (but the round after a cut pays for the calls in flight at the old
			// pace).
			p.noise += paceNoiseWeight * (min(share, max(p.noise, paceExcessShare)) - p.noise)
		}
		p.best = max(p.best, acceptedRate)
		switch {
		case p.cruise > 0:
			p.cruise--
			p.step = 0
		case p.step > 0 && grew:
			p.step = min(2*p.step, paceMaxGain-1)
		default:
			p.step = paceProbeStep
		}
		if p.rate == 0 {
			break
		}
		rate := p.best * (1 + p.step)
		if p.rate <= p.limit && rate > p.limit*(1+paceProbeStep) {
			// Near the last limit found, probe in small steps.
			rate, p.step = p.limit*(1+paceProbeStep), paceProbeStep
		}
		p.rate = rate
	}
	p.lastTaken, p.lastElapsed = p.taken, elapsed
	p.round, p.calls, p.units, p.accepted, p.taken = now, 0, 0, 0, 0
	p.drained, p.takenSince = time.Time{}, 0
	p.lastSent, p.lastUnits = time.Time{}, 0
}
