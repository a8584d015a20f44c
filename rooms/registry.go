package rooms

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tickroom/tickroom/netcode"
	"github.com/tickroom/tickroom/netcode/wire"
)

// Registry creates, finds and closes a node's rooms, and is the
// netcode.Handler that routes connections to them.
type Registry struct {
	cfg   Config
	log   *slog.Logger
	clock *clock

	router     routerSlot // where joins for other nodes' rooms go (route.go)
	routeStats routeStats
	replicator replicatorSlot // where checkpoints go (checkpoint.go)

	restores    atomic.Uint64
	fencedRooms atomic.Uint64

	mu     sync.Mutex
	rooms  map[string]*Room
	order  []*Room // creation order: join-or-create fills older rooms first
	seq    uint64  // rooms created
	closed bool

	// statsMu orders retiring a room (moving its counters into retired)
	// against Stats, so a closing room is counted exactly once.
	statsMu     sync.RWMutex
	retired     NodeStats // the closed rooms' counters
	roomsClosed atomic.Uint64
	wg          sync.WaitGroup // rooms not yet finished
}

// NewRegistry returns an empty registry.
func NewRegistry(cfg Config) (*Registry, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Registry{
		cfg:   cfg,
		log:   log,
		clock: newClock(time.Second/time.Duration(cfg.TickRate), cfg.Workers, cfg.MaxRooms, newPreciseWaiter),
		rooms: make(map[string]*Room),
	}, nil
}

// Config returns the registry's configuration.
func (g *Registry) Config() Config { return g.cfg }

// Stats returns the counters summed over the registry's rooms, open and
// closed; counts only grow. It visits every open room's histograms: call it
// for a scrape, not on a tick.
func (g *Registry) Stats() *NodeStats {
	g.statsMu.RLock() // no room retires while its counters are summed
	defer g.statsMu.RUnlock()
	g.mu.Lock()
	rooms := slices.Clone(g.order)
	created := g.seq
	g.mu.Unlock()
	s := &NodeStats{RoomsCreated: created, RoomsClosed: g.roomsClosed.Load()}
	s.Ticks, s.Overruns, s.InputsDropped = g.retired.Ticks, g.retired.Overruns, g.retired.InputsDropped
	s.Checkpoints, s.CheckpointBytes, s.CheckpointNanos = g.retired.Checkpoints, g.retired.CheckpointBytes, g.retired.CheckpointNanos
	s.Restores, s.Fenced = g.restores.Load(), g.fencedRooms.Load()
	s.Lateness.Merge(&g.retired.Lateness)
	s.Duration.Merge(&g.retired.Duration)
	s.SnapshotBytes.Merge(&g.retired.SnapshotBytes)
	for _, r := range rooms {
		s.add(&r.stats)
	}
	c := &g.clock.stats
	s.NodeTicks, s.NodeOverruns, s.Helpers = c.Ticks.Load(), c.Overruns.Load(), c.Helpers.Load()
	s.ClockLateness.Merge(&c.Lateness)
	return s
}

// Players returns the seats taken in all rooms, held seats included.
func (g *Registry) Players() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, r := range g.order {
		n += r.Players()
	}
	return n
}

// Create starts a new room.
func (g *Registry) Create(opts RoomOptions) (*Room, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.createLocked(opts)
}

func (g *Registry) createLocked(opts RoomOptions) (*Room, error) {
	factory, ok := g.cfg.Modes[opts.Mode]
	switch {
	case g.closed:
		return nil, ErrClosed
	case !ok:
		return nil, fmt.Errorf("%w: %q (this server runs %s)", ErrUnknownMode, opts.Mode, strings.Join(g.Modes(), ", "))
	case opts.MaxPlayers < 0 || opts.MaxPlayers > g.cfg.MaxRoomSize:
		return nil, fmt.Errorf("%w: MaxPlayers %d must be in 0..%d", ErrInvalidOptions, opts.MaxPlayers, g.cfg.MaxRoomSize)
	case opts.FirstTick > maxFirstTick:
		return nil, fmt.Errorf("%w: FirstTick %d must be at most %d", ErrInvalidOptions, opts.FirstTick, uint64(maxFirstTick))
	case len(g.rooms) >= g.cfg.MaxRooms:
		return nil, fmt.Errorf("%w: at most %d", ErrTooManyRooms, g.cfg.MaxRooms)
	}
	id := newRoomID()
	for g.rooms[id] != nil {
		id = newRoomID()
	}
	r, err := newRoom(g, id, opts, factory, uint64(time.Now().UnixNano()))
	if err != nil {
		return nil, err
	}
	if err := g.registerLocked(r); err != nil {
		return nil, err
	}
	r.log.Info("room created", "max_players", r.maxPlayers, "private", r.private, "first_tick", r.firstTick)
	return r, nil
}

// registerLocked makes r one of the registry's rooms and schedules its
// first turn. The caller holds g.mu.
func (g *Registry) registerLocked(r *Room) error {
	if err := g.clock.start(g.cfg.Workers); err != nil {
		return err
	}
	id := r.id
	r.align(time.Now())
	g.seq++
	r.seq = g.seq
	g.rooms[id] = r
	g.order = append(g.order, r)
	g.wg.Add(1)
	r.schedule() // the first turn settles it: awake with players, else asleep
	return nil
}

// Modes returns the names of the game modes, sorted.
func (g *Registry) Modes() []string {
	names := make([]string, 0, len(g.cfg.Modes))
	for name := range g.cfg.Modes {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Get returns a room by id.
func (g *Registry) Get(id string) (*Room, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r, ok := g.rooms[id]
	return r, ok
}

// List returns the open rooms in creation order.
func (g *Registry) List() []*Room {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.order)
}

// unregister removes a room that stopped, and keeps its counters. The
// room's last turn.
func (g *Registry) unregister(r *Room) {
	g.statsMu.Lock()
	defer g.statsMu.Unlock()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.rooms[r.id] == r {
		delete(g.rooms, r.id)
		g.order = slices.DeleteFunc(g.order, func(o *Room) bool { return o == r })
		g.retired.add(&r.stats)
		g.roomsClosed.Add(1)
	}
}

// Close closes every room and waits for them, and then for the node clock's
// goroutines, or for ctx. Rooms can no longer be created.
func (g *Registry) Close(ctx context.Context) error {
	g.mu.Lock()
	g.closed = true
	rooms := slices.Clone(g.order)
	g.mu.Unlock()
	for _, r := range rooms {
		r.requestStop("server shutting down")
	}
	done := make(chan struct{})
	go func() {
		g.wg.Wait()
		g.clock.shutdown() // no room is left to run
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("rooms: close: %w", ctx.Err())
	}
}

// takesNewcomer reports whether join-or-create may seat a player of mode
// (and of size seats, unless 0) in r: public, not paused (a paused room is
// an operator's, being debugged) and with a seat that no join in flight
// has promised. The caller holds g.mu.
func (r *Room) takesNewcomer(mode string, size int) bool {
	return r.mode == mode && !r.private && !r.isPaused.Load() && !r.stopped() && (size == 0 || r.maxPlayers == size) &&
		int(r.seats.Load()+r.reserved.Load()) < r.maxPlayers
}

// hasFreeSeat reports whether a public room of mode (and of size seats,
// unless 0) has a seat that no join in flight has promised.
func (g *Registry) hasFreeSeat(mode string, size int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, r := range g.order {
		if r.takesNewcomer(mode, size) {
			return true
		}
	}
	return false
}

// reserveSeat picks a public room of mode (and of size seats, unless 0)
// with a free seat, counting seats already promised to joins in flight, or
// creates one. The caller must release the reservation.
func (g *Registry) reserveSeat(mode string, size int) (*Room, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, ErrClosed
	}
	for _, r := range g.order {
		if r.takesNewcomer(mode, size) {
			r.reserved.Add(1)
			return r, nil
		}
	}
	r, err := g.createLocked(RoomOptions{Mode: mode, MaxPlayers: size})
	if err != nil {
		return nil, err
	}
	r.reserved.Add(1)
	return r, nil
}

// ReadBeforeTicks implements netcode.TickReader: the node clock calls read
// just before each node tick, so that the players' inputs are read once a
// tick, right before the rooms apply them.
func (g *Registry) ReadBeforeTicks(read func()) { g.clock.beforeTick.Store(&read) }

// Open implements netcode.Handler.
func (g *Registry) Open(c *netcode.Conn) netcode.Session {
	return &session{reg: g, conn: c}
}

// session routes one connection's requests. netcode calls its methods from
// the connection's reader goroutine; the room's turn clears member and room
// when the seat goes away.
type session struct {
	reg    *Registry
	conn   *netcode.Conn
	member atomic.Pointer[member]
	room   atomic.Pointer[Room]
}

// detach clears the session's seat if it is still m. The room's turn.
func (s *session) detach(m *member) {
	if s.member.CompareAndSwap(m, nil) {
		s.room.Store(nil)
	}
}

func (s *session) Join(req wire.Join) (wire.Joined, error) {
	if s.member.Load() != nil {
		return wire.Joined{}, netcode.Reply(wire.CodeAlreadyInRoom, "already in room %s; leave it first", s.room.Load().id)
	}
	timeout := s.reg.cfg.JoinTimeout
	var (
		joined  wire.Joined
		joinErr error // from the room
		err     error // from reaching the room
	)
	switch {
	case req.Token != "":
		roomID, _, ok := strings.Cut(req.Token, ".")
		r, found := s.reg.Get(roomID)
		if ok && !found {
			if err := s.reg.routeAway(roomID, req.Hops); err != nil {
				return wire.Joined{}, err
			}
		}
		if !ok || !found {
			return wire.Joined{}, netcode.Reply(wire.CodeBadToken, "no seat for this reconnect token; it may have expired")
		}
		err = r.do(func() { joined, joinErr = r.resume(s, req.Token) }, timeout)
	case req.RoomID != "":
		r, found := s.reg.Get(req.RoomID)
		if !found {
			if err := s.reg.routeAway(req.RoomID, req.Hops); err != nil {
				return wire.Joined{}, err
			}
			return wire.Joined{}, netcode.Reply(wire.CodeRoomNotFound, "no room %q", req.RoomID)
		}
		err = r.do(func() { joined, joinErr = r.join(s) }, timeout)
	case req.Mode != "":
		if req.MaxPlayers > uint32(s.reg.cfg.MaxRoomSize) {
			return wire.Joined{}, netcode.Reply(wire.CodeBadRequest, "rooms of %d seats asked for; this server allows at most %d", req.MaxPlayers, s.reg.cfg.MaxRoomSize)
		}
		if _, known := s.reg.cfg.Modes[req.Mode]; !known {
			return wire.Joined{}, replyFor(fmt.Errorf("%w: %q (this server runs %s)", ErrUnknownMode, req.Mode, strings.Join(s.reg.Modes(), ", ")))
		}
		if err := s.reg.placeAway(req.Mode, int(req.MaxPlayers), req.Hops); err != nil {
			return wire.Joined{}, err
		}
		// A reserved seat can still be taken first by a join by room id:
		// then try the next room with a free seat.
		for range joinOrCreateAttempts {
			r, rerr := s.reg.reserveSeat(req.Mode, int(req.MaxPlayers))
			if rerr != nil {
				return wire.Joined{}, replyFor(rerr)
			}
			err = r.do(func() {
				r.reserved.Add(-1)
				joined, joinErr = r.join(s)
			}, timeout)
			if err != nil {
				r.reserved.Add(-1) // the operation never ran
			}
			if err != nil || !isRoomFull(joinErr) {
				break
			}
		}
	default:
		return wire.Joined{}, netcode.Reply(wire.CodeBadRequest, "join needs a token, a room id or a mode")
	}
	if err == nil {
		err = joinErr
	}
	if err != nil {
		return wire.Joined{}, replyFor(err)
	}
	return joined, nil
}

// maxFirstTick bounds RoomOptions.FirstTick so that a room's schedule
// (Room.base) fits an int64: at 1,000 Hz that is 146 million years of ticks.
const maxFirstTick = 1 << 62

// joinOrCreateAttempts bounds how often join-or-create moves on to another
// room after its reserved seat was taken.
const joinOrCreateAttempts = 3

func isRoomFull(err error) bool {
	var er *wire.ErrorReply
	return errors.As(err, &er) && er.Code == wire.CodeRoomFull
}

// replyFor maps registry errors to the codes clients see.
func replyFor(err error) error {
	var er *wire.ErrorReply
	switch {
	case errors.As(err, &er):
		return err
	case errors.Is(err, ErrUnknownMode):
		return netcode.Reply(wire.CodeUnknownMode, "%v", err)
	case errors.Is(err, ErrRoomClosed):
		return netcode.Reply(wire.CodeRoomNotFound, "the room closed")
	case errors.Is(err, ErrClosed):
		return netcode.Reply(wire.CodeShuttingDown, "the server is shutting down")
	case errors.Is(err, ErrTooManyRooms):
		return netcode.Reply(wire.CodeRoomFull, "%v", err)
	case errors.Is(err, ErrRoomUnresponsive):
		return netcode.Reply(wire.CodeInternal, "%v", err)
	}
	return err
}

func (s *session) Leave() error {
	m, r := s.member.Load(), s.room.Load()
	if m == nil || r == nil {
		return netcode.Reply(wire.CodeNotInRoom, "not in a room")
	}
	err := r.do(func() { r.leave(m, "left") }, s.reg.cfg.JoinTimeout)
	if errors.Is(err, ErrRoomClosed) {
		s.detach(m)
		return nil // the seat is gone either way
	}
	return err
}

func (s *session) Input(in wire.Input) error {
	m := s.member.Load()
	if m == nil {
		return netcode.Reply(wire.CodeNotInRoom, "input while not in a room")
	}
	if len(in.Payload) > s.reg.cfg.MaxInputSize {
		return netcode.Reply(wire.CodeTooLarge, "input payload of %d bytes, at most %d", len(in.Payload), s.reg.cfg.MaxInputSize)
	}
	if m.inputs.push(in.Seq, in.Payload) {
		// Rare (a queue overflows only when the room falls behind or the
		// client bursts), so the shared counters cost the common path nothing.
		if r := s.room.Load(); r != nil {
			r.stats.InputsDropped.Add(1)
		}
	}
	return nil
}

func (s *session) Message(payload []byte) error {
	m, r := s.member.Load(), s.room.Load()
	if m == nil || r == nil {
		return netcode.Reply(wire.CodeNotInRoom, "room message while not in a room")
	}
	return r.queueMessage(m.id, payload)
}

func (s *session) Closed(cause error) {
	m, r := s.member.Load(), s.room.Load()
	if m == nil || r == nil {
		return
	}
	graceful := netcode.Graceful(cause)
	// Bounded wait: a closing room answers through r.done.
	_ = r.do(func() { r.disconnected(m, s, graceful, cause) }, s.reg.cfg.JoinTimeout)
}
