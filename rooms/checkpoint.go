package rooms

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tickroom/tickroom/netcode"
	"github.com/tickroom/tickroom/netcode/wire"
	"github.com/tickroom/tickroom/sim"
)

// This file holds what lets a room outlive its node: checkpoints taken in
// the room's turn and handed to a Replicator, Restore on another node,
// Freeze/Thaw/Release for a live hand-off, and the Lease that fences a
// room whose node may no longer run it. rooms declares Replicator and
// Lease; the cluster implements them; cmd wires them.

// Replicator keeps copies of a node's rooms elsewhere. Its methods are
// called in the room's turn (a worker goroutine), must not block, and own
// the bytes they are given.
type Replicator interface {
	// Checkpoint receives r's checkpoint, taken at the end of tick.
	Checkpoint(r *Room, epoch, tick uint64, data []byte)
	// Fenced says r stopped ticking for good: its Lease no longer holds.
	Fenced(r *Room)
	// Closed says r closed for good (not when Release handed it away).
	Closed(r *Room)
}

// Lease fences a room: the room ticks only while Holds reports true, and
// stops for good the first time it does not. Holds runs in the room's
// turn before every tick: it must be cheap and must not block.
type Lease interface {
	Holds(now time.Time) bool
}

// MovedTo says where a released room's players go.
type MovedTo struct {
	URL, Node string // empty URL: reconnect through the address dialed or a seed
	Epoch     uint64
}

// RestoreOptions modify a Restore.
type RestoreOptions struct {
	Epoch uint64 // nonzero: the restored room's epoch, instead of the checkpoint's
	Lease Lease  // fences the restored room from its first tick; nil: none
}

type replicatorSlot struct{ p atomic.Pointer[Replicator] }

func (s *replicatorSlot) load() Replicator {
	if p := s.p.Load(); p != nil {
		return *p
	}
	return nil
}

// SetReplicator makes the registry's rooms checkpoint to rep every
// Config.CheckpointEvery ticks. Call it before the node serves.
func (g *Registry) SetReplicator(rep Replicator) { g.replicator.p.Store(&rep) }

type leaseBox struct{ l Lease }

// Epoch returns the room's incarnation: 1 when created, higher after each
// move to another node.
func (r *Room) Epoch() uint64 { return r.epoch.Load() }

// SetEpoch sets the room's epoch; the next checkpoints carry it.
func (r *Room) SetEpoch(e uint64) { r.epoch.Store(e) }

// SetLease fences the room by l (nil: no fence). Any goroutine.
func (r *Room) SetLease(l Lease) {
	if l == nil {
		r.lease.Store(nil)
		return
	}
	r.lease.Store(&leaseBox{l})
}

// Fenced reports whether the room stopped because its lease did not hold.
func (r *Room) Fenced() bool { return r.fenced.Load() }

// Frozen reports whether the room is frozen for a hand-off.
func (r *Room) Frozen() bool { return r.isFrozen.Load() }

// stopped reports whether the room neither ticks nor takes players:
// frozen, fenced or released.
func (r *Room) stopped() bool { return r.isFrozen.Load() || r.fenced.Load() }

// movingReply answers a join for a stopped room.
func (r *Room) movingReply() error {
	return netcode.Reply(wire.CodeRoomMoving, "room %s is moving to another node; join again in a moment", r.id)
}

// Checkpoint returns the room's encoded checkpoint now.
func (r *Room) Checkpoint() ([]byte, error) {
	var data []byte
	err := r.doErr(func() error {
		var err error
		data, err = r.encodeCheckpoint()
		return err
	})
	return data, err
}

// Freeze stops the room after the tick it has run, for a hand-off, and
// returns its checkpoint. While frozen it neither ticks nor sends; inputs
// still queue (a later Checkpoint carries them); joins are answered
// room_moving; nothing expires.
func (r *Room) Freeze() ([]byte, error) {
	var data []byte
	err := r.doErr(func() error {
		if r.frozen || r.fenced.Load() {
			return ErrFrozen
		}
		var err error
		if data, err = r.encodeCheckpoint(); err != nil {
			return err
		}
		r.frozen = true
		r.isFrozen.Store(true)
		return nil
	})
	return data, err
}

// Thaw undoes Freeze: the room ticks again from the next node tick, on its
// schedule (the frozen slots are skipped).
func (r *Room) Thaw() error {
	return r.doErr(func() error {
		if !r.frozen {
			return fmt.Errorf("%w: thaw of a room that is not frozen", ErrFrozen)
		}
		r.frozen = false
		r.isFrozen.Store(false)
		return nil
	})
}

// Release closes a frozen or fenced room that runs elsewhere now: each
// connected player is sent wire.RoomMoved with its own token, and
// detached without PlayerLeft or RoomClosed (its connection stays open);
// the game is not told. It waits until the room is done.
func (r *Room) Release(to MovedTo) error {
	err := r.doErr(func() error {
		if !r.frozen && !r.fenced.Load() {
			return fmt.Errorf("%w: release of a room that still runs", ErrFrozen)
		}
		for _, m := range r.members {
			if m.sess == nil {
				continue
			}
			msg := slices.Clone(r.enc.RoomMoved(wire.RoomMoved{RoomID: r.id, URL: to.URL, Node: to.Node, Token: m.token, Epoch: to.Epoch}))
			m.sess.conn.Send(msg)
			m.sess.conn.SetLabel("")
			m.sess.detach(m)
			m.sess = nil
		}
		r.handedOff = true
		r.requestStop("moved")
		return nil
	})
	if err != nil {
		return err
	}
	<-r.done
	return nil
}

// encodeCheckpoint encodes the room as it stands. The room's turn.
func (r *Room) encodeCheckpoint() ([]byte, error) {
	state, err := r.game.MarshalState()
	if err != nil {
		return nil, fmt.Errorf("rooms: checkpoint %s: marshal state: %w", r.id, err)
	}
	c := Checkpoint{
		RoomID: r.id, Mode: r.mode, MaxPlayers: r.maxPlayers, Private: r.private, Metadata: r.metadata,
		Seed: r.seed, Epoch: r.epoch.Load(), Tick: r.currentTick(), GameTick: r.gameTick, Paused: r.paused,
		NextPlayer: uint32(r.nextPlayer), Created: r.created, State: state,
		Seats: make([]SeatCheckpoint, 0, len(r.members)),
	}
	for _, m := range r.members {
		c.Seats = append(c.Seats, SeatCheckpoint{Player: uint32(m.id), Token: m.token, LastAck: m.lastAck,
			Connected: m.sess != nil, Inputs: m.inputs.queued()})
	}
	return c.Encode(), nil
}

// checkpointTick offers the replicator a checkpoint after tick n, every
// CheckpointEvery ticks, staggered by the room's creation number so that
// rooms do not all checkpoint in one node tick. The room's turn.
func (r *Room) checkpointTick(n uint64) {
	every := uint64(r.reg.cfg.CheckpointEvery)
	if every == 0 || (n+r.seq)%every != 0 {
		return
	}
	rep := r.reg.replicator.load()
	if rep == nil {
		return
	}
	start := time.Now()
	data, err := r.encodeCheckpoint()
	if err != nil {
		r.log.Error("checkpoint failed", "err", err)
		return
	}
	r.stats.Checkpoints.Add(1)
	r.stats.CheckpointBytes.Add(uint64(len(data)))
	r.stats.CheckpointNanos.Add(uint64(time.Since(start)))
	rep.Checkpoint(r, r.epoch.Load(), n, data)
}

// leaseHolds reports whether the room may tick now, fencing it for good
// the first time its lease does not hold. The room's turn.
func (r *Room) leaseHolds(now time.Time) bool {
	if r.fenced.Load() {
		return false
	}
	b := r.lease.Load()
	if b == nil || b.l.Holds(now) {
		return true
	}
	r.fenced.Store(true)
	r.reg.fencedRooms.Add(1)
	r.log.Warn("room fenced: its lease does not hold; it stops here", "tick", r.currentTick(), "epoch", r.epoch.Load())
	if rep := r.reg.replicator.load(); rep != nil {
		rep.Fenced(r)
	}
	return false
}

// Restore starts a room from an encoded checkpoint, under the
// checkpoint's id: its first tick is the checkpoint's tick + 1, at this
// node's next tick, and its seats are held for their players' resumes
// (each for a full SeatGrace).
func (g *Registry) Restore(data []byte, opts RestoreOptions) (*Room, error) {
	c, err := DecodeCheckpoint(data)
	if err != nil {
		return nil, err
	}
	if opts.Epoch != 0 {
		c.Epoch = opts.Epoch
	}
	if err := g.checkRestorable(c); err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	factory := g.cfg.Modes[c.Mode]
	switch {
	case g.closed:
		return nil, ErrClosed
	case g.rooms[c.RoomID] != nil:
		return nil, fmt.Errorf("%w: %s", ErrRoomExists, c.RoomID)
	case len(g.rooms) >= g.cfg.MaxRooms:
		return nil, fmt.Errorf("%w: at most %d", ErrTooManyRooms, g.cfg.MaxRooms)
	}
	r, err := newRoom(g, c.RoomID, RoomOptions{Mode: c.Mode, MaxPlayers: c.MaxPlayers, Private: c.Private,
		Metadata: c.Metadata, FirstTick: c.Tick + 1, Epoch: c.Epoch}, factory, c.Seed)
	if err != nil {
		return nil, err
	}
	if err := r.game.UnmarshalState(c.State); err != nil {
		return nil, fmt.Errorf("%w: room %s: game state: %w", ErrBadCheckpoint, c.RoomID, err)
	}
	now := time.Now()
	r.created = c.Created
	r.nextPlayer = sim.PlayerID(c.NextPlayer)
	r.gameTick = c.GameTick
	if c.Paused {
		r.paused, r.pausedAt = true, now
		r.isPaused.Store(true)
	}
	for _, s := range c.Seats {
		m := &member{id: sim.PlayerID(s.Player), token: s.Token, lastAck: s.LastAck, droppedAt: now,
			inputs: newInputQueue(g.cfg.InputQueue, g.cfg.MaxInputSize)}
		m.inputs.lastSeq = s.LastAck
		for _, in := range s.Inputs {
			if len(in.Payload) <= g.cfg.MaxInputSize {
				m.inputs.push(in.Seq, in.Payload)
			}
		}
		r.members = append(r.members, m)
	}
	r.seats.Store(int32(len(r.members)))
	r.recomputeExpiry()
	r.SetLease(opts.Lease)
	if err := g.registerLocked(r); err != nil {
		return nil, err
	}
	g.restores.Add(1)
	r.log.Info("room restored", "tick", c.Tick, "epoch", c.Epoch, "seats", len(c.Seats))
	return r, nil
}

// checkRestorable validates a decoded checkpoint against this registry.
func (g *Registry) checkRestorable(c *Checkpoint) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: room %q: %s", ErrBadCheckpoint, c.RoomID, fmt.Sprintf(format, args...))
	}
	if _, ok := g.cfg.Modes[c.Mode]; !ok {
		return fmt.Errorf("%w: %q (this server runs %s)", ErrUnknownMode, c.Mode, strings.Join(g.Modes(), ", "))
	}
	switch {
	case c.RoomID == "":
		return bad("no room id")
	case c.Epoch == 0:
		return bad("epoch 0")
	case c.MaxPlayers < 1 || c.MaxPlayers > g.cfg.MaxRoomSize:
		return bad("%d seats, this server allows 1..%d", c.MaxPlayers, g.cfg.MaxRoomSize)
	case len(c.Seats) > c.MaxPlayers:
		return bad("%d seats taken of %d", len(c.Seats), c.MaxPlayers)
	case c.Tick > maxFirstTick-1:
		return bad("tick %d out of range", c.Tick)
	}
	prev := uint32(0)
	for _, s := range c.Seats {
		if s.Player == 0 || s.Player <= prev || s.Player >= c.NextPlayer {
			return bad("seat of player %d out of order or beyond the next player %d", s.Player, c.NextPlayer)
		}
		if !strings.HasPrefix(s.Token, c.RoomID+".") {
			return bad("a seat's token is not the room's")
		}
		prev = s.Player
	}
	return nil
}
