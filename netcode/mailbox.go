package netcode

import (
	"sync"
	"sync/atomic"
)

// This file holds a connection's snapshot mailbox: the one-slot "latest
// snapshot wins" slot that rooms offer snapshots to, and the frames and
// sources they offer.

// SnapshotFrame is one snapshot body encoded for every client whose last
// snapshot is tick Base (0: a full snapshot, for clients with none). It is
// immutable once made and shared by all the connections it is offered to.
type SnapshotFrame struct {
	Tick uint64
	Base uint64
	Body []byte // from wire.Encoder.SnapshotBody
}

// SnapshotSource gives the snapshot of one tick encoded against a base.
type SnapshotSource interface {
	// SnapshotFrame returns the tick's snapshot as a delta against base, or
	// as a full snapshot if base is 0 or no longer known. OfferSnapshot calls
	// it on the caller's goroutine while holding the connection's mailbox
	// lock: it must not call back into the connection.
	SnapshotFrame(base uint64) *SnapshotFrame
}

// snapshotSlot is a connection's one-slot snapshot mailbox.
type snapshotSlot struct {
	mu      sync.Mutex
	pending *SnapshotFrame // not yet taken by the writer
	ack     uint32         // the pending snapshot's ack
	// posted is the tick of the newest snapshot offered. Once the writer
	// has taken it, it is the tick the client will have last received
	// before anything offered later (the writer writes in order, and TCP
	// delivers in order), so it is the base for the next delta.
	posted uint64
	// held keeps the writer from taking snapshots while a join is answered,
	// so that the client gets the Joined reply before the seat's first
	// snapshot.
	held bool
}

// OfferSnapshot offers the snapshot of tick to the client, with ack as the
// player's last applied input seq. It replaces a snapshot still waiting
// unsent, and asks src for the encoding against the base the client will
// have when this one is written. It never blocks on the network.
func (c *Conn) OfferSnapshot(src SnapshotSource, tick uint64, ack uint32) {
	if c.writeDirect(src, tick, ack) {
		return
	}
	if c.slot.offer(src, tick, ack) {
		c.stats.SnapshotsReplaced.Add(1)
	}
	c.wakeWriter()
}

// offer puts the snapshot of tick in the slot and reports whether it replaced
// one the writer had not taken. The base is the tick the client will have
// last received when this snapshot is written: that of the replaced snapshot
// if there was one, else the tick last offered (already taken, so written or
// being written before this one).
func (s *snapshotSlot) offer(src SnapshotSource, tick uint64, ack uint32) (replaced bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	base := s.posted
	if s.pending != nil {
		base, replaced = s.pending.Base, true
	}
	s.pending = src.SnapshotFrame(base)
	s.ack = ack
	s.posted = tick
	return replaced
}

// take empties the slot, returning what it held (nil if nothing, or while
// the slot is held).
func (s *snapshotSlot) take() (*SnapshotFrame, uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held {
		return nil, 0
	}
	f := s.pending
	s.pending = nil
	return f, s.ack
}

// takeUnless is take, unless control frames are queued (queued > 0): then
// it leaves the snapshot for the writer's next round, which writes them
// first. It checks under the slot's lock, so a join that queues its Joined
// and then releases the slot cannot slip between the check and the take and
// have the seat's first snapshot written ahead of its Joined. (Found by
// TestJoinedPrecedesTheSeatsSnapshotsUnderRacingOffers, about once in ten
// thousand joins.) The writer loops while its queue is not empty, and
// release wakes it for the snapshot, so the snapshot is not forgotten.
func (s *snapshotSlot) takeUnless(queued *atomic.Int32) (*SnapshotFrame, uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held || queued.Load() > 0 {
		return nil, 0
	}
	f := s.pending
	s.pending = nil
	return f, s.ack
}

// hold starts the slot afresh for a new seat, whose snapshots must not be
// deltas against another room's ticks, and holds them back until release.
func (s *snapshotSlot) hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending, s.posted, s.held = nil, 0, true
}

// release lets the writer take snapshots again and reports whether one waits.
func (s *snapshotSlot) release() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held = false
	return s.pending != nil
}
