package bots

import (
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/tickroom/tickroom/netcode/client"
	"github.com/tickroom/tickroom/netcode/wire"
	"github.com/tickroom/tickroom/sim"
)

// sentRing is how many recent inputs a bot remembers the send time of, to
// measure input latency when a snapshot acknowledges them.
const sentRing = 256

// bot is one simulated player.
type bot struct {
	id  int
	run *runner
	c   *client.Client

	player   atomic.Uint32
	online   atomic.Bool   // holds its seat over a live connection
	dir      atomic.Uint32 // direction bits the next input holds
	joinedAt time.Time     // set before the bot is published to the drivers

	// Driver goroutine only.
	rng      *rand.Rand
	seq      uint32 // the seq of the last input sent
	nextTurn time.Time

	// Written by the driver, read by the client goroutine.
	sent [sentRing]atomic.Int64 // Unix ns an input was sent, by seq % sentRing

	// Client goroutine only (OnSnapshot, OnEvent, OnPong).
	lastSnap  time.Time
	lastAck   uint32
	lastTick  uint64
	droppedAt time.Time
}

// onSnapshot measures the gap since the previous snapshot and the latency of
// the inputs this one acknowledges first, and steers a chasing bot.
func (b *bot) onSnapshot(s *client.Snapshot) {
	now := time.Now()
	m := &b.run.metrics
	if !b.lastSnap.IsZero() {
		m.gap.record(b.id, now.Sub(b.lastSnap))
	}
	b.lastSnap = now
	if s.Tick <= b.lastTick { // a failover went back to its checkpoint
		lost := b.lastTick - s.Tick + 1
		for {
			old := m.rewindTicks.Load()
			if lost <= old || m.rewindTicks.CompareAndSwap(old, lost) {
				break
			}
		}
	}
	b.lastTick = s.Tick
	if s.Ack > b.lastAck {
		from := b.lastAck + 1
		if s.Ack-b.lastAck > sentRing {
			from = s.Ack - sentRing + 1
		}
		for seq := from; seq <= s.Ack; seq++ {
			if t := b.sent[seq%sentRing].Load(); t > 0 && t <= now.UnixNano() {
				m.latency.record(b.id, time.Duration(now.UnixNano()-t))
			}
		}
		b.lastAck = s.Ack
	}
	if b.run.cfg.Behavior == Chase {
		b.dir.Store(uint32(chaseDirection(b.player.Load(), s.Entities)))
	}
}

func (b *bot) onEvent(e client.Event) {
	switch e.Kind {
	case client.EventDisconnected:
		// The outage is counted as a drop, not as one huge snapshot gap.
		b.lastSnap = time.Time{}
		b.droppedAt = time.Now()
		b.online.Store(false)
	case client.EventResumed:
		if !b.droppedAt.IsZero() {
			b.run.metrics.outage.record(b.id, time.Since(b.droppedAt))
			b.droppedAt = time.Time{}
		}
		b.online.Store(true)
	case client.EventError:
		b.run.metrics.errors.Add(1)
		b.run.metrics.lastError.Store(&e.Err)
	case client.EventClosed:
		b.online.Store(false)
		if !b.run.stopping.Load() {
			b.run.metrics.errors.Add(1) // the bot is gone for good mid-run
			b.run.metrics.lastError.Store(&e.Err)
		}
	}
}

func (b *bot) onPong(rtt time.Duration) { b.run.metrics.rtt.record(b.id, rtt) }

// step sends this bot's input for one driver tick.
func (b *bot) step(now time.Time, payloads *[16][]byte) {
	if b.run.cfg.Behavior == Wander && !now.Before(b.nextTurn) {
		b.dir.Store(uint32(b.rng.IntN(16)))
		b.nextTurn = now.Add(time.Duration(500+b.rng.IntN(1000)) * time.Millisecond)
	}
	next := b.seq + 1
	// The send time, not the driver tick's: a driver writes many bots' inputs
	// one after another.
	b.sent[next%sentRing].Store(time.Now().UnixNano())
	seq, err := b.c.SendInput(payloads[b.dir.Load()&0x0f])
	if seq != 0 {
		b.seq = seq // numbered even if the write failed: keep in step with the client
	}
	if err != nil && seq == 0 {
		// Not connected (reconnecting): nothing was sent, and the drop is
		// counted once, not per input.
		b.sent[next%sentRing].Store(0)
	}
}

// chaseDirection returns the direction bits from player me towards the
// nearest other entity in ents.
func chaseDirection(me uint32, ents []wire.Entity) uint8 {
	var self *wire.Entity
	for i := range ents {
		if ents[i].ID == me {
			self = &ents[i]
			break
		}
	}
	if self == nil {
		return 0
	}
	best, bestD := -1, int64(-1)
	for i := range ents {
		if ents[i].ID == me {
			continue
		}
		dx := int64(ents[i].Fields[0] - self.Fields[0])
		dy := int64(ents[i].Fields[1] - self.Fields[1])
		if d := dx*dx + dy*dy; bestD < 0 || d < bestD {
			best, bestD = i, d
		}
	}
	if best < 0 {
		return 0
	}
	var dir uint8
	dx, dy := ents[best].Fields[0]-self.Fields[0], ents[best].Fields[1]-self.Fields[1]
	switch {
	case dx > 50:
		dir |= sim.ArenaRight
	case dx < -50:
		dir |= sim.ArenaLeft
	}
	switch {
	case dy > 50:
		dir |= sim.ArenaDown
	case dy < -50:
		dir |= sim.ArenaUp
	}
	return dir
}
