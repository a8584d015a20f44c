package rooms

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/tickroom/tickroom/netcode/wire"
	"github.com/tickroom/tickroom/sim"
)

// This file holds what operators do to a running room: inspect, pause, step,
// kick, broadcast, read its state. Each runs on the room goroutine between
// ticks, through the control queue, so none touches the tick path.

// Seq returns the room's creation number in its registry: later rooms have
// higher numbers, so it orders and pages room lists.
func (r *Room) Seq() uint64 { return r.seq }

// Metadata returns a copy of the room's operator metadata.
func (r *Room) Metadata() map[string]string { return maps.Clone(r.metadata) }

// Paused reports whether an operator paused the room.
func (r *Room) Paused() bool { return r.isPaused.Load() }

// TickRate returns the room's ticks per second.
func (r *Room) TickRate() int { return r.reg.cfg.TickRate }

// View returns how to draw the room's entities, or false if its game has no
// positions.
func (r *Room) View() (sim.View, bool) {
	if r.view == nil {
		return sim.View{}, false
	}
	v := *r.view
	v.Kinds = maps.Clone(v.Kinds)
	return v, true
}

// PlayerInfo describes one seat.
type PlayerInfo struct {
	ID        sim.PlayerID
	Connected bool      // false while the seat is held for a resume
	HeldSince time.Time // when the connection dropped; zero while connected
	// LastInputSeq is the seq of the last input the game applied.
	LastInputSeq uint32
	// The seat's current connection, if connected.
	Conn              uint64
	Remote            string
	RTT               time.Duration
	BytesIn, BytesOut uint64
}

// Inspection is a room's state as an operator sees it.
type Inspection struct {
	Tick     uint64 // the latest tick
	GameTick uint64 // the latest tick the game stepped (earlier while paused)
	Paused   bool
	Players  []PlayerInfo
}

// Inspect reports the room's seats and ticks.
func (r *Room) Inspect() (Inspection, error) {
	var in Inspection
	err := r.do(func() {
		in = Inspection{Tick: r.currentTick(), GameTick: r.gameTick, Paused: r.paused}
		in.Players = make([]PlayerInfo, 0, len(r.members))
		for _, m := range r.members {
			p := PlayerInfo{ID: m.id, Connected: m.sess != nil, HeldSince: m.droppedAt, LastInputSeq: m.lastAck}
			if m.sess != nil {
				c := m.sess.conn
				p.Conn, p.Remote, p.RTT = c.ID(), c.RemoteAddr().String(), c.RTT()
				p.BytesIn, p.BytesOut = c.Stats().BytesIn.Load(), c.Stats().BytesOut.Load()
			}
			in.Players = append(in.Players, p)
		}
	}, r.reg.cfg.JoinTimeout)
	return in, err
}

func (r *Room) currentTick() uint64 {
	if r.current == nil {
		return 0
	}
	return r.current.tick
}

// CloseContext is Close that stops waiting for the room's goroutine when
// ctx ends; the room closes all the same.
func (r *Room) CloseContext(ctx context.Context, reason string) error {
	r.requestStop(reason)
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("rooms: close %s: %w", r.id, ctx.Err())
	}
}

// Pause stops the game: the room keeps ticking and sending snapshots, with
// wire.FlagPaused set and nothing changing, and its players stay connected.
// Inputs and room messages wait in their bounded queues (the oldest inputs
// are dropped) until Step or Resume. Held seats keep the rest of their
// grace until Resume; join-or-create seats no one in a paused room (a join
// by room id still may); a paused room does not close when empty.
func (r *Room) Pause() error {
	return r.doErr(func() error {
		if r.paused {
			return ErrAlreadyPaused
		}
		r.paused = true
		r.pausedAt = time.Now()
		r.isPaused.Store(true)
		r.log.Info("room paused", "tick", r.currentTick())
		return nil
	})
}

// Resume restarts a paused room's game, cancelling any steps still to run.
func (r *Room) Resume() error {
	return r.doErr(func() error {
		if !r.paused {
			return ErrNotPaused
		}
		r.paused = false
		r.isPaused.Store(false)
		r.stepsLeft = 0
		if r.stepped != nil {
			close(r.stepped)
			r.stepped = nil
		}
		// Seats held when the room paused get their grace's remainder;
		// seats dropped during the pause get all of it from now.
		now := time.Now()
		for _, m := range r.members {
			switch {
			case m.droppedAt.IsZero():
			case m.droppedAt.Before(r.pausedAt):
				m.droppedAt = m.droppedAt.Add(now.Sub(r.pausedAt))
			default:
				m.droppedAt = now
			}
		}
		r.recomputeExpiry()
		r.emptySince = time.Now() // an empty room gets its full timeout again
		r.log.Info("room resumed", "tick", r.currentTick())
		return nil
	})
}

// Step runs n game steps in a paused room, one per tick, and waits until
// they ran (or ctx ends, or the room resumes or closes). It returns the tick
// of the last step. A step already under way gives ErrStepping. When ctx
// ends first, the steps not yet run are cancelled (as an operator who gave
// up on a long step expects) and Step returns ctx's error.
func (r *Room) Step(ctx context.Context, n int) (uint64, error) {
	if n <= 0 {
		return 0, fmt.Errorf("%w: steps %d must be positive", ErrInvalidOptions, n)
	}
	var done chan struct{}
	err := r.doErr(func() error {
		switch {
		case !r.paused:
			return ErrNotPaused
		case r.stepsLeft > 0:
			return fmt.Errorf("%w: %d steps left", ErrStepping, r.stepsLeft)
		}
		r.stepsLeft = n
		r.stepped = make(chan struct{})
		done = r.stepped
		r.log.Info("room stepping", "steps", n, "tick", r.currentTick())
		return nil
	})
	if err != nil {
		return 0, err
	}
	select {
	case <-done:
	case <-ctx.Done():
		_ = r.doErr(func() error {
			if r.stepped == done { // still this Step's steps
				r.stepsLeft = 0
				close(r.stepped)
				r.stepped = nil
			}
			return nil
		})
		return 0, fmt.Errorf("rooms: step: %w", ctx.Err())
	}
	var tick uint64
	err = r.doErr(func() error {
		tick = r.gameTick
		return nil
	})
	return tick, err
}

// Kick removes a player from the room (the others get PlayerLeft with reason
// "kicked") and closes its connection with wire.CloseKicked and reason.
func (r *Room) Kick(p sim.PlayerID, reason string) error {
	return r.doErr(func() error {
		i, ok := r.findMember(p)
		if !ok {
			return fmt.Errorf("%w: no player %d in room %s", ErrPlayerNotFound, p, r.id)
		}
		m := r.members[i]
		s := m.sess
		var label string
		if s != nil {
			label = s.conn.Label()
		}
		r.leave(m, "kicked") // logs "player left" with reason kicked
		if s != nil {
			// leave cleared the label; the connection ends for this seat,
			// so its disconnect keeps the room and player.
			s.conn.SetLabel(label)
			s.conn.Close(wire.CloseKicked, reason)
		}
		return nil
	})
}

// Broadcast sends payload, one MessagePack value, to every connected member
// as a RoomEvent from wire.FromOperator. It returns how many got it.
func (r *Room) Broadcast(payload []byte) (int, error) {
	sent := 0
	err := r.doErr(func() error {
		msg := slices.Clone(r.enc.RoomEvent(wire.RoomEvent{From: wire.FromOperator, Payload: payload}))
		for _, m := range r.members {
			if m.sess != nil {
				m.sess.conn.Send(msg)
				sent++
			}
		}
		r.log.Info("operator broadcast", "bytes", len(payload), "recipients", sent)
		return nil
	})
	return sent, err
}

// State returns the game's whole state (sim.Game.MarshalState) and the tick
// the game last stepped.
func (r *Room) State() (tick uint64, state []byte, err error) {
	err = r.doErr(func() error {
		tick = r.gameTick
		var merr error
		if state, merr = r.game.MarshalState(); merr != nil {
			return fmt.Errorf("rooms: marshal %s state: %w", r.mode, merr)
		}
		return nil
	})
	return tick, state, err
}

// Frame is what a room shows at one tick, for watching it play.
type Frame struct {
	Tick     uint64
	Paused   bool
	Entities []sim.Entity
}

// Frame returns the latest tick's entities.
func (r *Room) Frame() (Frame, error) {
	var f Frame
	err := r.do(func() {
		f = Frame{Tick: r.currentTick(), Paused: r.paused}
		if r.current != nil {
			f.Entities = make([]sim.Entity, len(r.current.entities))
			for i, e := range r.current.entities {
				f.Entities[i] = sim.Entity(e)
			}
		}
	}, r.reg.cfg.JoinTimeout)
	return f, err
}

// doErr runs op on the room goroutine and returns its error, or the error of
// reaching the room.
func (r *Room) doErr(op func() error) error {
	var opErr error
	if err := r.do(func() { opErr = op() }, r.reg.cfg.JoinTimeout); err != nil {
		return err
	}
	return opErr
}
