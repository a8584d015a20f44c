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

// spinMargin is how long before a tick the room stops waiting on a Go timer
// and sleeps precisely instead. Go timers fire up to about a millisecond late
// (the poller sleeps in whole milliseconds), so the margin must exceed that;
// a longer precise sleep costs a blocked thread for longer. 2 ms measured
// best of 1, 1.5, 2 and 3 ms with rooms/internal/ticktiming (BENCHMARKS.md).
const spinMargin = 2 * time.Millisecond

// RoomOptions describe a room to create.
type RoomOptions struct {
	Mode       string
	MaxPlayers int               // 0: Config.MaxPlayers
	Private    bool              // private rooms are joined by id only, never by join-or-create
	Metadata   map[string]string // free-form, shown to operators
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

	ctrl      chan func() // operations run by the room goroutine between ticks
	stop      chan struct{}
	stopOnce  sync.Once
	done      chan struct{}
	stopCause atomic.Pointer[string]

	seats    atomic.Int32 // members, for the registry's free-seat search
	reserved atomic.Int32 // seats promised to joins on their way, guarded by reg.mu
	isPaused atomic.Bool  // mirrors paused, for readers
	messages messageQueue
	stats    TickStats
	view     *sim.View // nil if the game has no positions

	// Room goroutine only.
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

func newRoom(reg *Registry, id string, opts RoomOptions, factory sim.Factory) (*Room, error) {
	cfg := &reg.cfg
	maxPlayers := opts.MaxPlayers
	if maxPlayers == 0 {
		maxPlayers = cfg.MaxPlayers
	}
	seed := uint64(time.Now().UnixNano())
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
		game:       game,
		nextPlayer: 1,
		emptySince: time.Now(),
		history:    make([]historyEntry, cfg.SnapshotHistory),
		enc:        wire.NewEncoder(),
	}
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

// Created returns when the room was created; its tick schedule starts then.
func (r *Room) Created() time.Time { return r.created }

// Stats returns the room's tick counters.
func (r *Room) Stats() *TickStats { return &r.stats }

// Done is closed when the room's goroutine has exited.
func (r *Room) Done() <-chan struct{} { return r.done }

// Close stops the room: members are told with a RoomClosed event and lose
// their seats; the connections stay open. It waits for the room's goroutine.
func (r *Room) Close(reason string) {
	r.requestStop(reason)
	<-r.done
}

func (r *Room) requestStop(reason string) {
	r.stopOnce.Do(func() {
		r.stopCause.Store(&reason)
		close(r.stop)
	})
}

// do runs op on the room goroutine and waits for it. It fails, with op not
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

// run is the room's goroutine: ticks on an absolute schedule (tick n is due
// n periods after the start, so the rate never drifts), running control
// operations while it waits.
func (r *Room) run() {
	defer close(r.done)
	defer r.shutdown()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	start := r.created // the schedule's origin, so Created()+n*period is tick n's due time
	n := uint64(1)
	for {
		if !r.waitUntil(start.Add(time.Duration(n)*r.period), timer) {
			return
		}
		now := time.Now()
		slot := schedule(start, r.period, n, now)
		r.stats.Overruns.Add(slot.skipped)
		r.stats.Lateness.Record(slot.late)
		r.step(slot.tick, now)
		took := time.Since(now)
		r.stats.Duration.Record(took)
		r.stats.LastDuration.Store(int64(took))
		r.stats.Ticks.Add(1)
		n = slot.tick + 1
		if r.expired(now) {
			return
		}
	}
}

// slot is the tick a loop that woke at some time runs.
type slot struct {
	tick    uint64        // the tick to run now
	skipped uint64        // ticks whose slots passed without running (overruns)
	late    time.Duration // how late the tick starts against its schedule
}

// schedule returns the tick to run at now, for a loop that started at start
// with the given period and whose next tick is n. Tick n is due at start +
// n*period, so the rate never drifts. A loop that woke a period or more late
// (a GC pause, a starved CPU) skips the slots that passed instead of running
// them back to back, and counts them as overruns.
func schedule(start time.Time, period time.Duration, n uint64, now time.Time) slot {
	due := start.Add(time.Duration(n) * period)
	late := now.Sub(due)
	if late < period {
		return slot{tick: n, late: late}
	}
	skipped := uint64(late / period)
	return slot{tick: n + skipped, skipped: skipped, late: late - time.Duration(skipped)*period}
}

// waitUntil waits for due, running control operations meanwhile. It returns
// false if the room was asked to stop.
func (r *Room) waitUntil(due time.Time, timer *time.Timer) bool {
	for {
		d := time.Until(due) - spinMargin
		if d <= 0 {
			break
		}
		timer.Reset(d)
		select {
		case op := <-r.ctrl:
			// Go 1.23+ timers: Stop leaves no stale value in timer.C, so
			// there is nothing to drain (draining would block forever).
			timer.Stop()
			op()
			continue
		case <-r.stop:
			return false
		case <-timer.C:
		}
		break
	}
	// Run what queued up during the coarse wait without delaying the tick.
	for {
		select {
		case op := <-r.ctrl:
			op()
			continue
		case <-r.stop:
			return false
		default:
		}
		break
	}
	if d := time.Until(due); d > 0 {
		sleepPrecisely(d)
	}
	return true
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
// runs on the room goroutine (OfferSnapshot calls it from step) and encodes
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

// join seats s. Room goroutine.
func (r *Room) join(s *session) (wire.Joined, error) {
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

// resume reattaches a held seat to s. Room goroutine.
func (r *Room) resume(s *session, token string) (wire.Joined, error) {
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

// leave removes m from the room. Room goroutine.
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

// disconnected handles the end of m's connection s. Room goroutine.
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
// has been empty for EmptyTimeout and should close. Room goroutine, O(1)
// unless something is due.
func (r *Room) expired(now time.Time) bool {
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

// shutdown tells members the room closed and unregisters it. Room goroutine,
// on exit.
func (r *Room) shutdown() {
	reason := "closed"
	if p := r.stopCause.Load(); p != nil {
		reason = *p
	}
	msg := slices.Clone(r.enc.RoomClosed(wire.RoomClosed{RoomID: r.id, Reason: reason}))
	for _, m := range r.members {
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
