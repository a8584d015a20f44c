package rooms

import (
	"time"
)

// A room has no goroutine of its own. It runs in turns, on the node clock's
// workers (clock.go): a turn runs the control operations queued for the room
// (joins, leaves, operator requests), then the room's tick if the clock has
// released one, then settles whether the room stays awake. Room.state makes
// turns exclusive: whoever moves it from roomIdle to roomQueued puts the
// room on the run queue, and only the worker that runs the turn moves it
// back, so a room runs on one worker at a time and everything its turn owns
// (members, game, history) needs no lock. Its atomic transitions order one
// turn's writes before the next turn's reads.
const (
	roomIdle   int32 = iota // waiting for work
	roomQueued              // on the run queue, or in a turn
	roomDone                // closed: never runs again
)

// schedule puts the room on the run queue unless it is there, in a turn
// (which looks for more work when it ends) or closed. Any goroutine.
func (r *Room) schedule() {
	if r.state.CompareAndSwap(roomIdle, roomQueued) {
		r.reg.clock.enqueue(r)
	}
}

// turnDone ends a turn. Work that arrived during it found the room queued
// and did not schedule it, so the room looks again once it is idle; work
// that arrives after the look schedules it itself.
func (r *Room) turnDone() {
	if !r.state.CompareAndSwap(roomQueued, roomIdle) {
		return // the room closed in its turn
	}
	if len(r.ctrl) > 0 || r.stopRequested() || r.expiryDue.Load() || r.released.Load() > r.ranTo.Load() {
		r.schedule()
	}
}

func (r *Room) stopRequested() bool {
	select {
	case <-r.stop:
		return true
	default:
		return false
	}
}

// turn is one turn of the room, on a worker.
func (r *Room) turn() {
	if r.stopRequested() {
		r.finish()
		return
	}
	// Operations first, as many as were queued: one that keeps arriving
	// waits for the next turn rather than holding up the tick.
	for range cap(r.ctrl) {
		select {
		case op := <-r.ctrl:
			op()
			continue
		default:
		}
		break
	}
	if r.stopRequested() {
		r.finish()
		return
	}
	now := time.Now()
	ticked := false
	if k := r.released.Load(); k > r.ranTo.Load() {
		r.tickAt(k, now)
		ticked = true
	}
	// A sleeping room checks its timeout in every turn: settle below moves
	// a passed deadline on (for a seat reservation), which must not happen
	// without a look at expired.
	due := r.expiryDue.Swap(false)
	if (ticked || due || !r.awake) && r.expired(now) {
		r.finish()
		return
	}
	r.settle(now)
}

// tickAt runs the room's tick for node tick k, which the clock released. A
// room that falls a period or more behind (a slow game step) runs the tick
// that is due, not the ones that passed, back to back: they count as
// overruns. The slots a room slept through do not.
func (r *Room) tickAt(k uint64, now time.Time) {
	skipped := k - r.ranTo.Load() - 1
	if r.woke {
		// Slept through up to the node tick it woke at; late after that.
		slept := min(skipped, r.wokeAt-min(r.wokeAt, r.ranTo.Load()))
		r.stats.Slept.Add(slept)
		skipped -= slept
		r.woke = false
	}
	r.stats.Overruns.Add(skipped)
	r.ranTo.Store(k)
	if r.frozen || !r.leaseHolds(now) {
		r.stats.Frozen.Add(1)
		return
	}
	r.stats.Lateness.Record(now.Sub(r.reg.clock.due(k)))
	n := uint64(int64(k) - r.base.Load())
	r.step(n, now)
	r.checkpointTick(n)
	took := time.Since(now)
	r.stats.Duration.Record(took)
	r.stats.LastDuration.Store(int64(took))
	r.stats.Ticks.Add(1)
}

// settle decides whether the room keeps ticking. A room nobody is seated in
// sleeps: the clock leaves it out, so it costs next to nothing while it
// waits for its empty timeout, on a timer of its own (or for good, while an
// operator has it paused). A join, or an operator's step, wakes it, and it
// ticks again from the next node tick. Its tick numbers keep to the node
// clock: the slots it slept through are skipped.
func (r *Room) settle(now time.Time) {
	wantAwake := len(r.members) > 0 || r.stepsLeft > 0
	switch {
	case wantAwake && !r.awake:
		r.awake, r.woke = true, true
		r.wokeAt = r.reg.clock.tickAt(now)
		if r.stats.Ticks.Load() == 0 {
			r.align(now) // a room that never ticked starts at its first tick
		}
		r.reg.clock.wakeRoom(r)
	case !wantAwake && r.awake:
		r.awake = false
		r.reg.clock.sleepRoom(r)
	}
	if wantAwake || r.paused {
		if r.expiry != nil {
			r.expiry.Stop()
			r.expiryAt = time.Time{}
		}
		return
	}
	at := r.emptySince.Add(r.reg.cfg.EmptyTimeout)
	if !at.After(now) {
		// Still open at its timeout: a join holds a seat reservation
		// (expired waits for it), and a join takes at most JoinTimeout.
		at = now.Add(r.reg.cfg.JoinTimeout)
	}
	switch {
	case r.expiry == nil:
		r.expiry = time.AfterFunc(at.Sub(now), r.expiryFired)
	case !at.Equal(r.expiryAt):
		r.expiry.Reset(at.Sub(now))
	default:
		return
	}
	r.expiryAt = at
}

// align sets the room's schedule so that its first tick runs at the node's
// next tick after now.
func (r *Room) align(now time.Time) {
	base, before := r.reg.clock.baseFor(now, r.firstTick)
	r.base.Store(base)
	r.ranTo.Store(before)
}

// expiryFired is a sleeping room's empty-timeout timer: its next turn checks
// whether the room expired.
func (r *Room) expiryFired() {
	r.expiryDue.Store(true)
	r.schedule()
}

// finish closes the room in its last turn.
func (r *Room) finish() {
	if r.awake {
		r.awake = false
		r.reg.clock.sleepRoom(r)
	}
	if r.expiry != nil {
		r.expiry.Stop()
	}
	r.shutdown()
	r.state.Store(roomDone)
	close(r.done)
	r.reg.wg.Done()
}
