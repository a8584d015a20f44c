package rooms

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tickroom/tickroom/netcode"
	"github.com/tickroom/tickroom/netcode/wire"
	"github.com/tickroom/tickroom/sim"
)

// RoomOptions describe a room to create.
type RoomOptions struct {
	Mode       string
	MaxPlayers int               // 0: Config.MaxPlayers
	Private    bool              // private rooms are joined by id only, never by join-or-create
	Metadata   map[string]string // free-form, shown to operators
	// FirstTick is the number of the room's first tick; 0 means 1. A room
	// restored from a checkpoint of tick T starts at T+1. Either way the
	// first tick runs at the node's next tick.
	FirstTick uint64
	// Epoch is the room's incarnation (0 means 1): it grows each time the
	// room moves to another node.
	Epoch uint64
}

// Room is one running game. Its exported methods are safe for concurrent use.
type Room struct {
	id         string
	seq        uint64 // creation order within the registry
	mode       string
	maxPlayers int
	private    bool
	metadata   map[string]string
	created    time.Time
	reg        *Registry
	log        *slog.Logger
	period     time.Duration

	ctrl      chan func() // operations the room's turn runs before its tick
	stop      chan struct{}
	stopOnce  sync.Once
	done      chan struct{}
	stopCause atomic.Pointer[string]

	// Scheduling (turn.go). base is the node tick of the room's tick 0, so
	// its tick n runs at node tick base+n. released is the latest node tick
	// the clock released to the room, ranTo the latest it has handled.
	base      atomic.Int64
	firstTick uint64       // RoomOptions.FirstTick, at least 1
	state     atomic.Int32 // roomIdle, roomQueued (on the run queue or in a turn) or roomDone
	released  atomic.Uint64
	ranTo     atomic.Uint64
	expiryDue atomic.Bool // a sleeping room's empty timeout passed
	slot      int         // index in clock.awake; guarded by the clock's mu

	seats    atomic.Int32 // members, for the registry's free-seat search
	reserved atomic.Int32 // seats promised to joins on their way; taken under reg.mu, given back by the join
	isPaused atomic.Bool  // mirrors paused, for readers
	messages messageQueue
	stats    TickStats
	view     *sim.View // nil if the game has no positions

	// Replication (checkpoint.go).
	seed      uint64 // the game's sim.Config.Seed
	epoch     atomic.Uint64
	lease     atomic.Pointer[leaseBox]
	fenced    atomic.Bool // its lease stopped holding: it never ticks again
	isFrozen  atomic.Bool // mirrors frozen, for readers
	frozen    bool        // the room's turn: no ticks for a hand-off
	handedOff bool        // the room's turn: Release handed it away

	// The room's turn only (one worker at a time: see turn.go).
	awake       bool        // ticked by the clock; false while the room sleeps
	woke        bool        // woken since the last tick: the slots it slept through are not overruns
	wokeAt      uint64      // the node tick it woke at; slots up to it were slept through
	expiry      *time.Timer // a sleeping room's empty timeout
	expiryAt    time.Time
	game        sim.Game
	members     []*member // ascending player id
	nextPlayer  sim.PlayerID
	emptySince  time.Time
	nextExpiry  time.Time // earliest seat-grace expiry, zero if none
	tick        sim.Tick
	inputArena  []byte
	entities    []sim.Entity
	history     []historyEntry // ring indexed by tick % len
	current     *historyEntry
	frames      []*netcode.SnapshotFrame // this tick's encodings, by base
	enc         *wire.Encoder
	tickTime    int64 // ms since the epoch at the current tick's start
	badEntities bool  // logged once: the game returned unsorted entities
	paused      bool  // the game does not step; snapshots carry FlagPaused
	pausedAt    time.Time
	stepsLeft   int           // game steps to run while paused
	stepped     chan struct{} // closed when stepsLeft reaches 0
	gameTick    uint64        // the last tick the game stepped
}

type historyEntry struct {
	tick     uint64
	entities []wire.Entity
}

// member is a seat in a room. The room goroutine owns it, except for inputs,
// which the seated connection's reader pushes.
type member struct {
	id        sim.PlayerID
	token     string
	sess      *session // nil while the player is disconnected
	inputs    *inputQueue
	lastAck   uint32
	droppedAt time.Time
}

func newRoom(reg *Registry, id string, opts RoomOptions, factory sim.Factory, seed uint64) (*Room, error) {
	cfg := &reg.cfg
	maxPlayers := opts.MaxPlayers
	if maxPlayers == 0 {
		maxPlayers = cfg.MaxPlayers
	}
	game, err := factory(sim.Config{TickRate: cfg.TickRate, MaxPlayers: maxPlayers, Seed: seed})
	if err != nil {
		return nil, fmt.Errorf("rooms: create %s game: %w", opts.Mode, err)
	}
	r := &Room{
		id:         id,
		mode:       opts.Mode,
		maxPlayers: maxPlayers,
		private:    opts.Private,
		metadata:   maps.Clone(opts.Metadata),
		created:    time.Now(),
		reg:        reg,
		log:        reg.log.With("room", id, "mode", opts.Mode),
		period:     time.Second / time.Duration(cfg.TickRate),
		ctrl:       make(chan func(), cfg.ControlQueue),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
		messages:   messageQueue{max: cfg.MessageQueue},
		slot:       -1,
		firstTick:  max(opts.FirstTick, 1),
		game:       game,
		nextPlayer: 1,
		emptySince: time.Now(),
		history:    make([]historyEntry, cfg.SnapshotHistory),
		enc:        wire.NewEncoder(),
		seed:       seed,
	}
	r.epoch.Store(max(opts.Epoch, 1))
	if v, ok := game.(sim.Viewer); ok {
		view := v.View()
		if view.X >= 0 && view.X < sim.MaxFields && view.Y >= 0 && view.Y < sim.MaxFields && view.Width > 0 && view.Height > 0 {
			r.view = &view
		} else {
			r.log.Error("game's View names fields or a size out of range; the dashboard shows it as text (a game bug)", "view", view)
		}
	}
	return r, nil
}

// ID returns the room's id.
func (r *Room) ID() string { return r.id }

// Mode returns the room's game mode.
func (r *Room) Mode() string { return r.mode }

// MaxPlayers returns the room's seat count.
func (r *Room) MaxPlayers() int { return r.maxPlayers }

// Private reports whether the room is joined by id only.
func (r *Room) Private() bool { return r.private }

// Players returns the number of seats taken, held seats included.
func (r *Room) Players() int { return int(r.seats.Load()) }

// Created returns when the room was created.
func (r *Room) Created() time.Time { return r.created }

// Start returns the instant of the room's tick 0 on the node clock: its
// tick n is due at Start() plus n periods. A room's schedule is set when it
// first wakes (its first join), so that its first tick, RoomOptions.FirstTick,
// runs at the next node tick.
func (r *Room) Start() time.Time {
	return r.reg.clock.origin.Add(time.Duration(r.base.Load()) * r.period)
}

// Stats returns the room's tick counters.
func (r *Room) Stats() *TickStats { return &r.stats }

// Done is closed when the room has closed and its last turn is over.
func (r *Room) Done() <-chan struct{} { return r.done }

// Close stops the room: members are told with a RoomClosed event and lose
// their seats; the connections stay open. It waits for the room's last turn.
func (r *Room) Close(reason string) {
	r.requestStop(reason)
	<-r.done
}

func (r *Room) requestStop(reason string) {
	r.stopOnce.Do(func() {
		r.stopCause.Store(&reason)
		close(r.stop)
		r.schedule()
	})
}

// do runs op in the room's next turn and waits for it. It fails, with op not
// run and never to run, if the room closes or its control queue stays full
// for timeout. A nil error means op ran.
func (r *Room) do(op func(), timeout time.Duration) error {
	finished := make(chan struct{})
	wrapped := func() {
		op()
		close(finished)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r.ctrl <- wrapped:
		r.schedule()
	case <-r.done:
		return ErrRoomClosed
	case <-t.C:
		return fmt.Errorf("%w: room %s took no request for %v", ErrRoomUnresponsive, r.id, timeout)
	}
	select {
	case <-finished:
		return nil
	case <-r.done:
		// The loop may have run op just before exiting.
		select {
		case <-finished:
			return nil
		default:
			return ErrRoomClosed
		}
	}
}

// step runs one tick: drain inputs and messages, step the game, deliver its
// events, and offer every connected member the new snapshot.
func (r *Room) step(n uint64, now time.Time) {
	if !r.paused || r.stepsLeft > 0 {
		r.stepGame(n)
	}
	r.entities = r.game.AppendEntities(r.entities[:0])
	r.checkEntities()
	h := &r.history[n%uint64(len(r.history))]
	h.tick = n
	h.entities = h.entities[:0]
	for i := range r.entities {
		h.entities = append(h.entities, wire.Entity(r.entities[i]))
	}
	r.current = h
	r.frames = r.frames[:0]
	r.tickTime = now.UnixMilli()
	for _, m := range r.members {
		if m.sess != nil {
			m.sess.conn.OfferSnapshot(r, n, m.lastAck)
		}
	}
}

// stepGame applies the queued inputs and messages and steps the game; a
// paused room skips it unless an operator asked for steps.
func (r *Room) stepGame(n uint64) {
	t := &r.tick
	t.Reset(n, r.period)
	r.inputArena = r.inputArena[:0]
	var depth, deepest int
	for _, m := range r.members {
		last, queued := m.inputs.drain(m.id, t, &r.inputArena)
		if last != 0 {
			m.lastAck = last
		}
		depth += queued
		deepest = max(deepest, queued)
	}
	r.stats.InputDepth.Store(int64(depth))
	r.stats.InputDepthMax.Store(int64(deepest))
	r.messages.drain(t)
	r.game.Step(t)
	r.gameTick = n
	for _, e := range t.Events() {
		r.deliver(e)
	}
	clear(t.Messages) // release payloads
	if r.paused {
		if r.stepsLeft--; r.stepsLeft == 0 {
			close(r.stepped)
			r.stepped = nil
		}
	}
}

// checkEntities enforces strictly increasing ids, which the delta codec
// needs, even from a game that breaks the contract.
func (r *Room) checkEntities() {
	for i := 1; i < len(r.entities); i++ {
		if r.entities[i].ID <= r.entities[i-1].ID {
			if !r.badEntities {
				r.badEntities = true
				r.log.Error("game returned entities out of id order; sorting them (a game bug)")
			}
			slices.SortFunc(r.entities, func(a, b sim.Entity) int { return int(int64(a.ID) - int64(b.ID)) })
			r.entities = slices.CompactFunc(r.entities, func(a, b sim.Entity) bool { return a.ID == b.ID })
			return
		}
	}
}

// SnapshotFrame implements netcode.SnapshotSource for the current tick. It
// runs in the room's turn (OfferSnapshot calls it from step) and encodes
// each distinct base once per tick; the bytes are shared by every member
// with that base.
func (r *Room) SnapshotFrame(base uint64) *netcode.SnapshotFrame {
	var prev []wire.Entity
	if base != 0 {
		h := &r.history[base%uint64(len(r.history))]
		if h.tick != base || base >= r.current.tick {
			base = 0 // too old to delta against: send everything
		} else {
			prev = h.entities
		}
	}
	for _, f := range r.frames {
		if f.Base == base {
			return f
		}
	}
	var flags uint8
	if r.paused {
		flags |= wire.FlagPaused
	}
	body := r.enc.SnapshotBody(r.current.tick, r.tickTime, base, flags, prev, r.current.entities)
	r.stats.SnapshotBytes.Record(len(body))
	f := &netcode.SnapshotFrame{Tick: r.current.tick, Base: base, Body: slices.Clone(body)}
	r.frames = append(r.frames, f)
	return f
}

// deliver sends a game event to its recipients, encoded once.
func (r *Room) deliver(e sim.Event) {
	msg := slices.Clone(r.enc.RoomEvent(wire.RoomEvent{From: uint32(e.From), Payload: e.Data}))
	for _, m := range r.members {
		if m.sess != nil && (e.To == 0 || e.To == m.id) {
			m.sess.conn.Send(msg)
		}
	}
}

// broadcast sends an encoded message to every connected member but skip.
func (r *Room) broadcast(msg []byte, skip *member) {
	for _, m := range r.members {
		if m != skip && m.sess != nil {
			m.sess.conn.Send(msg)
		}
	}
}

func (r *Room) findMember(p sim.PlayerID) (int, bool) {
	return slices.BinarySearchFunc(r.members, p, func(m *member, id sim.PlayerID) int {
		return int(int64(m.id) - int64(id))
	})
}

// join seats s. The room's turn.
func (r *Room) join(s *session) (wire.Joined, error) {
	if r.stopped() {
		return wire.Joined{}, r.movingReply()
	}
	if len(r.members) >= r.maxPlayers {
		return wire.Joined{}, netcode.Reply(wire.CodeRoomFull, "room %s is full (%d players)", r.id, r.maxPlayers)
	}
	p := r.nextPlayer
	if err := r.game.Join(p); err != nil {
		return wire.Joined{}, netcode.Reply(wire.CodeRejected, "the game refused the player: %v", err)
	}
	r.nextPlayer++
	m := &member{
		id:     p,
		token:  r.id + "." + randomToken(),
		inputs: newInputQueue(r.reg.cfg.InputQueue, r.reg.cfg.MaxInputSize),
	}
	i, _ := r.findMember(p)
	r.members = slices.Insert(r.members, i, m)
	r.seats.Store(int32(len(r.members)))
	r.attach(m, s)
	s.conn.SetLabel(fmt.Sprintf("room=%s player=%d", r.id, p))
	r.broadcast(slices.Clone(r.enc.PlayerJoined(wire.PlayerJoined{Player: uint32(p)})), m)
	r.log.Info("player joined", "player", p, "conn", s.conn.ID())
	return r.joined(m, false), nil
}

// resume reattaches a held seat to s. The room's turn.
func (r *Room) resume(s *session, token string) (wire.Joined, error) {
	if r.stopped() {
		return wire.Joined{}, r.movingReply()
	}
	var m *member
	for _, c := range r.members {
		if subtle.ConstantTimeCompare([]byte(c.token), []byte(token)) == 1 {
			m = c
			break
		}
	}
	if m == nil {
		return wire.Joined{}, netcode.Reply(wire.CodeBadToken, "no seat for this reconnect token; it may have expired")
	}
	if old := m.sess; old != nil {
		// The player came back before the old connection was noticed dead.
		old.detach(m)
		old.conn.Close(wire.CloseSessionReplaced, "seat resumed on another connection")
	}
	m.droppedAt = time.Time{}
	r.recomputeExpiry()
	r.attach(m, s)
	s.conn.SetLabel(fmt.Sprintf("room=%s player=%d", r.id, m.id))
	r.log.Info("player resumed", "player", m.id, "conn", s.conn.ID())
	return r.joined(m, true), nil
}

func (r *Room) attach(m *member, s *session) {
	m.sess = s
	s.member.Store(m)
	s.room.Store(r)
}

func (r *Room) joined(m *member, resumed bool) wire.Joined {
	players := make([]uint32, len(r.members))
	for i, o := range r.members {
		players[i] = uint32(o.id)
	}
	return wire.Joined{
		RoomID:     r.id,
		Mode:       r.mode,
		Player:     uint32(m.id),
		Token:      m.token,
		Resumed:    resumed,
		MaxPlayers: uint32(r.maxPlayers),
		Players:    players,
	}
}

// leave removes m from the room. The room's turn.
func (r *Room) leave(m *member, reason string) {
	i, ok := r.findMember(m.id)
	if !ok || r.members[i] != m {
		return
	}
	if m.sess != nil {
		m.sess.conn.SetLabel("") // no seat now: later drops are not this player's
		m.sess.detach(m)
		m.sess = nil
	}
	r.members = slices.Delete(r.members, i, i+1)
	r.seats.Store(int32(len(r.members)))
	r.game.Leave(m.id)
	r.broadcast(slices.Clone(r.enc.PlayerLeft(wire.PlayerLeft{Player: uint32(m.id), Reason: reason})), nil)
	r.log.Info("player left", "player", m.id, "reason", reason)
	if len(r.members) == 0 {
		r.emptySince = time.Now()
	}
	r.recomputeExpiry()
}

// disconnected handles the end of m's connection s. The room's turn.
func (r *Room) disconnected(m *member, s *session, graceful bool, cause error) {
	if m.sess != s {
		return // already replaced by a resume, or gone
	}
	if graceful || r.reg.cfg.SeatGrace == 0 {
		r.leave(m, "left")
		return
	}
	m.sess = nil
	m.droppedAt = time.Now()
	r.recomputeExpiry()
	r.log.Info("player dropped; holding seat", "player", m.id, "grace", r.reg.cfg.SeatGrace, "cause", cause)
}

func (r *Room) recomputeExpiry() {
	r.nextExpiry = time.Time{}
	for _, m := range r.members {
		if !m.droppedAt.IsZero() {
			exp := m.droppedAt.Add(r.reg.cfg.SeatGrace)
			if r.nextExpiry.IsZero() || exp.Before(r.nextExpiry) {
				r.nextExpiry = exp
			}
		}
	}
}

// expired releases seats whose grace ran out and reports whether the room
// has been empty for EmptyTimeout and should close. The room's turn, O(1)
// unless something is due.
func (r *Room) expired(now time.Time) bool {
	if r.stopped() {
		return false // frozen for a hand-off, or fenced until released: it lives on elsewhere
	}
	// Seat grace stands still while paused: the game must not change under
	// an operator's eyes (Resume moves the deadlines on).
	if !r.paused && !r.nextExpiry.IsZero() && !now.Before(r.nextExpiry) {
		for _, m := range slices.Clone(r.members) {
			if !m.droppedAt.IsZero() && !now.Before(m.droppedAt.Add(r.reg.cfg.SeatGrace)) {
				r.leave(m, "disconnected")
			}
		}
	}
	// A paused room stays open when empty: an operator is looking at it.
	if len(r.members) == 0 && r.reserved.Load() == 0 && !r.paused && now.Sub(r.emptySince) >= r.reg.cfg.EmptyTimeout {
		reason := "empty"
		r.stopCause.Store(&reason)
		return true
	}
	return false
}

// shutdown tells members the room closed and unregisters it. The room's
// last turn.
func (r *Room) shutdown() {
	reason := "closed"
	if p := r.stopCause.Load(); p != nil {
		reason = *p
	}
	if !r.handedOff {
		if rep := r.reg.replicator.load(); rep != nil {
			rep.Closed(r)
		}
	}
	msg := slices.Clone(r.enc.RoomClosed(wire.RoomClosed{RoomID: r.id, Reason: reason}))
	for _, m := range r.members {
		if r.handedOff {
			break // its players and game live on elsewhere
		}
		if m.sess != nil {
			m.sess.conn.Send(msg)
			m.sess.conn.SetLabel("")
			m.sess.detach(m)
		}
		r.game.Leave(m.id)
	}
	r.members = nil
	r.seats.Store(0)
	if r.stepped != nil {
		close(r.stepped) // Step sees r.done and reports the room closed
	}
	r.reg.unregister(r)
	r.log.Info("room closed", "reason", reason, "ticks", r.stats.Ticks.Load(), "overruns", r.stats.Overruns.Load())
	// Operations still queued never run: their callers see r.done and fail
	// with ErrRoomClosed.
}

// queueMessage queues a room message from p for the next tick.
func (r *Room) queueMessage(p sim.PlayerID, payload []byte) error {
	if !r.messages.push(p, payload) {
		return netcode.Reply(wire.CodeRoomBusy, "room %s has %d messages waiting; try again", r.id, r.reg.cfg.MessageQueue)
	}
	return nil
}

func randomToken() string {
	var b [18]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func newRoomID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
