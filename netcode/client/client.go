// Package client is the Go client of the tickroom protocol, used by game
// clients, the bots and the tests: it dials, joins, sends inputs, receives
// snapshots with deltas applied, makes requests with timeouts, and after an
// abnormal drop reconnects with exponential backoff and jitter and resumes its
// seat with the reconnect token.
//
// Goroutines: a Client owns one goroutine, started by Dial and stopped and
// waited for by Close. It reads from the connection, answers the server's
// pings, delivers replies to waiting requests, applies snapshots and calls
// Config.OnSnapshot, and, when the connection drops, reconnects. With
// Config.Poller set (Linux), a Poller's goroutine does the reading, for
// many clients at once, and the client's own goroutine only waits and
// reconnects. Methods are safe for concurrent use; they write to the socket
// under a mutex.
package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/tickroom/tickroom/netcode/internal/wsframe"
	"github.com/tickroom/tickroom/netcode/wire"
)

// Errors callers branch on.
var (
	// ErrClosed: the client is closed for good (Close, a normal close by the
	// server, or reconnecting gave up). Err tells why.
	ErrClosed = errors.New("client: closed")
	// ErrNotConnected: the connection dropped and the client is reconnecting.
	ErrNotConnected = errors.New("client: not connected")
	// ErrNotInRoom: the client has not joined a room.
	ErrNotInRoom = errors.New("client: not in a room")
	// ErrPollerClosed: the Poller reading the connection was closed.
	ErrPollerClosed = errors.New("client: poller closed")
	// ErrPollerUnsupported: NewPoller needs Linux (epoll).
	ErrPollerUnsupported = errors.New("client: pollers need Linux")
)

// closeWait is how long Close waits for the server to echo the close.
const closeWait = time.Second

// ReconnectConfig sets how a client reconnects after an abnormal drop.
type ReconnectConfig struct {
	// Attempts is how many reconnects are tried before giving up; 0 never
	// reconnects.
	Attempts int
	// Base is the delay before the first attempt; each further attempt
	// doubles it, up to Cap. Each delay is drawn at random from its upper
	// half (jitter), so that clients dropped together do not return together.
	Base time.Duration
	Cap  time.Duration
}

// Config configures a Client.
type Config struct {
	// Name is sent in the Hello, for the server's logs.
	Name string
	// DialTimeout bounds connecting plus the Hello/Welcome handshake.
	DialTimeout time.Duration
	// RequestTimeout bounds requests whose context has no deadline.
	RequestTimeout time.Duration
	// WriteTimeout bounds one socket write.
	WriteTimeout time.Duration
	// MaxMessageSize bounds a server message, in bytes.
	MaxMessageSize int
	// Reconnect sets reconnection after abnormal drops.
	Reconnect ReconnectConfig
	// EventBuffer is the capacity of the Events channel; events that do not
	// fit are dropped and counted in Stats.EventsDropped.
	EventBuffer int
	// OnSnapshot, if set, is called after each snapshot is applied, from
	// the goroutine that reads the connection: the client's, or its
	// Poller's, which reads for other clients too. It must not block or call
	// the client's request methods or Close; s and its Entities are valid
	// only during the call.
	OnSnapshot func(s *Snapshot)
	// OnEvent, if set, receives events instead of the Events channel, from
	// the goroutine that reads the connection (the client's or its
	// Poller's) or, for drops and resumes, the client's. It must not block
	// or call the client's request methods or Close.
	OnEvent func(e Event)
	// OnPong, if set, is called with the round trip of each Pong answering
	// SendPing, from the goroutine that reads the connection.
	OnPong func(rtt time.Duration)
	// Logger receives connection lifecycle logs; nil discards them.
	Logger *slog.Logger
	// Poller, if set, reads the client's connection instead of the
	// client's goroutine (which then only waits), and calls OnSnapshot,
	// OnEvent and OnPong from its own goroutine. One poller serves many
	// clients, sparing a goroutine wake-up and an extra read per message:
	// it is for processes that run thousands of clients, like the bots. A
	// TLS (wss://) connection is read by the client's goroutine regardless.
	Poller *Poller
}

// DefaultConfig returns a configuration suited to a game client.
func DefaultConfig() Config {
	return Config{
		Name:           "tickroom-go",
		DialTimeout:    5 * time.Second,
		RequestTimeout: 5 * time.Second,
		WriteTimeout:   5 * time.Second,
		MaxMessageSize: 1 << 20, // a full snapshot of a large room
		Reconnect: ReconnectConfig{
			Attempts: 10,
			Base:     100 * time.Millisecond,
			Cap:      5 * time.Second, // ten attempts span about the server's seat grace and then some
		},
		EventBuffer: 256,
	}
}

func (c *Config) validate() error {
	switch {
	case c.DialTimeout <= 0 || c.RequestTimeout <= 0 || c.WriteTimeout <= 0:
		return errors.New("client: DialTimeout, RequestTimeout and WriteTimeout must be positive")
	case c.MaxMessageSize < 64:
		return errors.New("client: MaxMessageSize must be at least 64")
	case c.Reconnect.Attempts < 0:
		return errors.New("client: Reconnect.Attempts must not be negative")
	case c.Reconnect.Attempts > 0 && (c.Reconnect.Base <= 0 || c.Reconnect.Cap < c.Reconnect.Base):
		return errors.New("client: Reconnect.Base must be positive and Cap at least Base")
	case c.EventBuffer < 0:
		return errors.New("client: EventBuffer must not be negative")
	}
	return nil
}

// Snapshot is the world as of one snapshot, after applying it.
type Snapshot struct {
	Tick       uint64
	Base       uint64 // 0 for a full snapshot
	Ack        uint32 // this player's highest input seq the server applied
	ServerTime int64  // ms since the Unix epoch
	Paused     bool
	Size       int // the snapshot message's size in bytes
	Entities   []wire.Entity
}

// Joined describes the seat a Join got.
type Joined struct {
	RoomID     string
	Mode       string
	Player     uint32
	Token      string
	Resumed    bool
	MaxPlayers int
	Players    []uint32
}

// EventKind says what an Event is.
type EventKind int

// Event kinds.
const (
	EventPlayerJoined EventKind = iota + 1 // Player took a seat
	EventPlayerLeft                        // Player left; Reason says why
	EventRoomMessage                       // the game sent Payload, From a player or 0
	EventRoomClosed                        // the room closed; the client holds no seat
	EventError                             // the server reported Err without a request (e.g. rate limited)
	EventDisconnected                      // the connection dropped (Err); the client reconnects
	EventResumed                           // the client reconnected and resumed its seat
	EventClosed                            // the client is closed for good (Err)
)

// Event is something the server or the connection told the client.
type Event struct {
	Kind    EventKind
	Player  uint32
	From    uint32
	Reason  string
	Payload []byte
	Err     error
}

// Stats are a client's counters.
type Stats struct {
	BytesIn, BytesOut atomic.Uint64 // WebSocket bytes on the wire, frame headers included
	Snapshots         atomic.Uint64
	Drops             atomic.Uint64 // abnormal disconnects
	Resumes           atomic.Uint64 // successful seat resumes
	EventsDropped     atomic.Uint64
}

// Client is a connection to a tickroom server.
type Client struct {
	url  string
	cfg  Config
	log  *slog.Logger
	done chan struct{} // closed when the client's goroutine has exited

	stats   Stats
	events  chan Event
	closing atomic.Bool   // Close was called
	closeCh chan struct{} // closed by Close
	reqID   atomic.Uint32

	mu      sync.Mutex // guards the fields below; never held across a socket write
	conn    *connection
	welcome wire.Welcome
	pending map[uint32]chan reply
	pings   map[int64]chan reply
	seat    *Joined
	seq     uint32
	err     error // why the client closed

	stateMu sync.Mutex
	state   Snapshot // written only by the client's goroutine
	spare   []wire.Entity
	snapMsg wire.ServerMessage
}

type connection struct {
	br *bufio.Reader // under rd: what it holds past the handshake goes to a poller
	rd *wsframe.Reader

	// wmu serializes writes. Lock order: wmu, then Client.mu (held briefly,
	// never across a write), so that a write stuck on a full socket holds up
	// only other writes, not the reading side.
	wmu           sync.Mutex
	nc            net.Conn // replaced under wmu when a poller detaches it
	enc           *wire.Encoder
	wbuf          []byte
	writeDeadline time.Time

	polled  *polled        // with Config.Poller: the poller's state for this connection
	writers sync.WaitGroup // writes the poller handed off (pongs, the close echo)
}

type reply struct {
	joined *Joined
	err    error
	pong   wire.Pong
}

// Dial connects to a tickroom server at url (ws://host:port/ws), performs the
// handshake and starts the client's goroutine.
func Dial(ctx context.Context, url string, cfg Config) (*Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		url:     url,
		cfg:     cfg,
		log:     log,
		done:    make(chan struct{}),
		closeCh: make(chan struct{}),
		events:  make(chan Event, cfg.EventBuffer),
		pending: make(map[uint32]chan reply),
		pings:   make(map[int64]chan reply),
	}
	conn, w, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	c.conn, c.welcome = conn, w
	go c.run(conn)
	return c, nil
}

// dial connects and performs the Hello/Welcome handshake.
func (c *Client) dial(ctx context.Context) (*connection, wire.Welcome, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	nc, br, _, err := ws.Dialer{}.Dial(ctx, c.url)
	if err != nil {
		return nil, wire.Welcome{}, fmt.Errorf("client: dial %s: %w", c.url, err)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	// Buffered, so a snapshot's header and payload cost one read syscall.
	if br == nil {
		br = bufio.NewReaderSize(nc, 1024)
	} // else buffered already, and holds what the server sent right after the handshake
	conn := &connection{
		nc:  nc,
		br:  br,
		rd:  wsframe.NewReader(br, c.cfg.MaxMessageSize, false),
		enc: wire.NewEncoder(),
	}
	deadline, _ := ctx.Deadline()
	_ = nc.SetDeadline(deadline)
	fail := func(err error) (*connection, wire.Welcome, error) {
		nc.Close()
		return nil, wire.Welcome{}, err
	}
	if err := c.writeTo(conn, conn.enc.Hello(wire.Hello{Version: wire.Version, Client: c.cfg.Name})); err != nil {
		return fail(fmt.Errorf("client: send hello: %w", err))
	}
	dec := wire.NewDecoder()
	var m wire.ServerMessage
	for {
		op, p, err := conn.rd.Next()
		if err != nil {
			return fail(fmt.Errorf("client: handshake with %s: %w", c.url, err))
		}
		switch op {
		case ws.OpClose:
			code, reason, _ := wsframe.ParseClose(p)
			return fail(fmt.Errorf("client: handshake with %s: server closed: %d %s", c.url, code, reason))
		case ws.OpBinary:
		default:
			continue
		}
		if err := dec.DecodeServer(p, &m); err != nil {
			return fail(fmt.Errorf("client: handshake with %s: %w", c.url, err))
		}
		switch m.Type {
		case wire.TypeWelcome:
			_ = nc.SetDeadline(time.Time{})
			conn.writeDeadline = time.Time{} // the next write sets its own
			if c.cfg.Poller != nil {
				if err := c.cfg.Poller.prepare(c, conn); err != nil {
					return fail(err)
				}
			}
			return conn, m.Welcome, nil
		case wire.TypeError:
			return fail(fmt.Errorf("client: handshake with %s: %w", c.url, &wire.ErrorReply{Code: m.Error.Code, Message: m.Error.Message}))
		}
	}
}

// Welcome returns what the server announced in its Welcome.
func (c *Client) Welcome() wire.Welcome {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.welcome
}

// Stats returns the client's counters.
func (c *Client) Stats() *Stats { return &c.stats }

// Events returns the channel of events. Unread events beyond Config.EventBuffer
// are dropped.
func (c *Client) Events() <-chan Event { return c.events }

// Done is closed when the client has closed for good.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the client closed, or nil while it runs.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// State returns a copy of the newest snapshot.
func (c *Client) State() Snapshot {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	s := c.state
	s.Entities = append([]wire.Entity(nil), c.state.Entities...)
	return s
}

// Seat returns the current seat, or nil if the client is in no room.
func (c *Client) Seat() *Joined {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seat == nil {
		return nil
	}
	j := *c.seat
	return &j
}

func (c *Client) emit(e Event) {
	if c.cfg.OnEvent != nil {
		c.cfg.OnEvent(e)
		return
	}
	select {
	case c.events <- e:
	default:
		c.stats.EventsDropped.Add(1)
	}
}

// writeTo writes one masked binary message on conn. The caller must hold
// conn.wmu, or own conn exclusively (during dial).
func (c *Client) writeTo(conn *connection, msg []byte) error {
	return c.writeFrame(conn, ws.OpBinary, msg)
}

func (c *Client) writeFrame(conn *connection, op ws.OpCode, msg []byte) error {
	mask := [4]byte{}
	r := rand.Uint32()
	mask[0], mask[1], mask[2], mask[3] = byte(r), byte(r>>8), byte(r>>16), byte(r>>24)
	b := wsframe.AppendHeader(conn.wbuf[:0], op, len(msg), &mask)
	n := len(b)
	b = append(b, msg...)
	wsframe.MaskPayload(b[n:], mask)
	conn.wbuf = b
	// Renew the deadline only when less than half of WriteTimeout is left:
	// a timer update per input is measurable across thousands of bots.
	if now := time.Now(); conn.writeDeadline.Sub(now) < c.cfg.WriteTimeout/2 {
		conn.writeDeadline = now.Add(c.cfg.WriteTimeout)
		_ = conn.nc.SetWriteDeadline(conn.writeDeadline)
	}
	w, err := conn.nc.Write(b)
	c.stats.BytesOut.Add(uint64(w))
	return err
}

// send encodes and writes a message on the current connection.
func (c *Client) send(encode func(*wire.Encoder) []byte) error {
	c.mu.Lock()
	conn, err := c.connLocked()
	c.mu.Unlock()
	if err != nil {
		return err
	}
	conn.wmu.Lock()
	defer conn.wmu.Unlock()
	return c.writeLocked(conn, encode(conn.enc))
}

// connLocked returns the live connection. c.mu must be held.
func (c *Client) connLocked() (*connection, error) {
	switch {
	case c.err != nil:
		return nil, fmt.Errorf("%w: %w", ErrClosed, c.err)
	case c.conn == nil:
		return nil, ErrNotConnected
	}
	return c.conn, nil
}

// writeLocked writes msg on conn. conn.wmu must be held.
func (c *Client) writeLocked(conn *connection, msg []byte) error {
	if err := c.writeTo(conn, msg); err != nil {
		c.breakConn(conn, err)
		return fmt.Errorf("%w: %w", ErrNotConnected, err)
	}
	return nil
}

// breakConn ends a connection whose write failed; whoever reads it then
// reconnects. conn.wmu must be held. A polled socket is shut down, not
// closed: its descriptor must stay valid until the poller has taken it out
// of its epoll set, and the client's goroutine closes it after.
func (c *Client) breakConn(conn *connection, err error) {
	if conn.polled != nil {
		c.cfg.Poller.end(conn.polled, err)
		if d, ok := conn.nc.(interface{ Shutdown() }); ok {
			d.Shutdown() // a detached socket: later writes fail at once, and the poller reads the EOF
			return
		}
	}
	_ = conn.nc.Close()
}

// SendInput sends one input with the next sequence number and returns that
// number. payload is one MessagePack value (the arena: a uint of direction
// bits); nil sends MessagePack nil.
func (c *Client) SendInput(payload []byte) (uint32, error) {
	c.mu.Lock()
	conn, err := c.connLocked()
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	// Numbered under the write lock, so inputs go out in seq order.
	conn.wmu.Lock()
	defer conn.wmu.Unlock()
	c.mu.Lock()
	switch {
	case c.seat == nil:
		c.mu.Unlock()
		return 0, ErrNotInRoom
	case c.conn != conn:
		c.mu.Unlock()
		return 0, ErrNotConnected // it dropped meanwhile
	}
	c.seq++
	seq := c.seq
	c.mu.Unlock()
	// Encoded and written without allocating: this runs per tick.
	return seq, c.writeLocked(conn, conn.enc.Input(wire.Input{Seq: seq, Payload: payload}))
}

// request sends a request and waits for its reply.
func (c *Client) request(ctx context.Context, encode func(e *wire.Encoder, id uint32) []byte) (reply, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.RequestTimeout)
		defer cancel()
	}
	id := c.reqID.Add(1)
	ch := make(chan reply, 1)
	c.mu.Lock()
	c.pending[id] = ch
	c.mu.Unlock()
	err := c.send(func(e *wire.Encoder) []byte { return encode(e, id) })
	if err != nil {
		c.forget(id)
		return reply{}, err
	}
	select {
	case r := <-ch:
		return r, r.err
	case <-ctx.Done():
		c.forget(id)
		return reply{}, fmt.Errorf("client: request %d: %w", id, ctx.Err())
	}
}

func (c *Client) forget(id uint32) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// JoinOptions says which room to join: RoomID, or else a public room of Mode
// (created if none has a free seat), of exactly MaxPlayers seats if set.
type JoinOptions struct {
	RoomID     string
	Mode       string
	MaxPlayers int
}

// Join takes a seat in a room.
func (c *Client) Join(ctx context.Context, opts JoinOptions) (*Joined, error) {
	r, err := c.request(ctx, func(e *wire.Encoder, id uint32) []byte {
		return e.Join(wire.Join{ReqID: id, RoomID: opts.RoomID, Mode: opts.Mode, MaxPlayers: uint32(opts.MaxPlayers)})
	})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.seat = r.joined
	c.seq = 0
	c.mu.Unlock()
	j := *r.joined
	return &j, nil
}

// Leave gives up the seat; the connection stays open for another Join.
func (c *Client) Leave(ctx context.Context) error {
	_, err := c.request(ctx, func(e *wire.Encoder, id uint32) []byte { return e.Leave(wire.Leave{ReqID: id}) })
	if err == nil {
		c.mu.Lock()
		c.seat = nil
		c.mu.Unlock()
	}
	return err
}

// SendMessage sends a reliable room message (one MessagePack value) and waits
// for the server to accept it.
func (c *Client) SendMessage(ctx context.Context, payload []byte) error {
	_, err := c.request(ctx, func(e *wire.Encoder, id uint32) []byte {
		return e.Message(wire.RoomMessage{ReqID: id, Payload: payload})
	})
	return err
}

// Ping measures the round trip to the server.
func (c *Client) Ping(ctx context.Context) (time.Duration, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.RequestTimeout)
		defer cancel()
	}
	start := time.Now()
	key := start.UnixNano()
	ch := make(chan reply, 1)
	c.mu.Lock()
	c.pings[key] = ch
	c.mu.Unlock()
	err := c.send(func(e *wire.Encoder) []byte { return e.Ping(wire.Ping{ClientTime: key}) })
	defer func() {
		c.mu.Lock()
		delete(c.pings, key)
		c.mu.Unlock()
	}()
	if err != nil {
		return 0, err
	}
	select {
	case r := <-ch:
		return time.Since(start), r.err
	case <-ctx.Done():
		return 0, fmt.Errorf("client: ping: %w", ctx.Err())
	}
}

// SendPing sends a Ping without waiting: Config.OnPong gets the round trip
// when the Pong arrives. It does not allocate.
func (c *Client) SendPing() error {
	c.mu.Lock()
	conn, err := c.connLocked()
	c.mu.Unlock()
	if err != nil {
		return err
	}
	conn.wmu.Lock()
	defer conn.wmu.Unlock()
	return c.writeLocked(conn, conn.enc.Ping(wire.Ping{ClientTime: time.Now().UnixNano()}))
}

// Close closes the connection normally (no reconnect) and waits for the
// client's goroutine to exit.
func (c *Client) Close() error {
	if c.closing.Swap(true) {
		<-c.done
		return nil
	}
	close(c.closeCh)
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	if conn != nil {
		conn.wmu.Lock()
		_ = c.writeFrame(conn, ws.OpClose, wsframe.CloseBody(uint16(wire.CloseNormal), "client closed"))
		// The server echoes the close; give it a moment, then cut.
		_ = conn.nc.SetReadDeadline(time.Now().Add(closeWait))
		conn.wmu.Unlock()
	}
	<-c.done
	return nil
}

// run is the client's goroutine: read until the connection ends, then
// reconnect or finish.
func (c *Client) run(conn *connection) {
	defer close(c.done)
	for {
		var cause error
		if conn.polled != nil {
			cause = c.cfg.Poller.serve(c, conn)
		} else {
			cause = c.readLoop(conn)
		}
		c.mu.Lock()
		c.conn = nil
		c.failPending(fmt.Errorf("%w: %w", ErrNotConnected, cause))
		seat := c.seat
		c.mu.Unlock()
		conn.wmu.Lock()
		_ = conn.nc.Close()
		conn.wmu.Unlock()
		conn.writers.Wait() // they fail at once on the closed socket

		if c.closing.Load() || !reconnectable(cause) || c.cfg.Reconnect.Attempts == 0 {
			c.finish(cause)
			return
		}
		c.stats.Drops.Add(1)
		c.log.Info("connection dropped; reconnecting", "err", cause)
		c.emit(Event{Kind: EventDisconnected, Err: cause})
		next, err := c.reconnect(seat)
		if err != nil {
			c.finish(err)
			return
		}
		if c.closing.Load() {
			// Close came during the reconnect, too late to close this
			// connection: it would be read without a deadline forever.
			_ = next.nc.Close()
			c.finish(ErrClosed)
			return
		}
		conn = next
	}
}

func (c *Client) finish(cause error) {
	c.mu.Lock()
	if c.err == nil {
		if c.closing.Load() {
			c.err = ErrClosed
		} else {
			c.err = cause
		}
	}
	err := c.err
	c.seat = nil
	c.failPending(fmt.Errorf("%w: %w", ErrClosed, err))
	c.mu.Unlock()
	c.emit(Event{Kind: EventClosed, Err: err})
}

// failPending fails every waiting request. c.mu must be held.
func (c *Client) failPending(err error) {
	for id, ch := range c.pending {
		ch <- reply{err: err}
		delete(c.pending, id)
	}
	for k, ch := range c.pings {
		ch <- reply{err: err}
		delete(c.pings, k)
	}
}

// CloseError is how the server closed the connection.
type CloseError struct {
	Code   wire.CloseCode
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("client: server closed the connection: %d %s", e.Code, e.Reason)
}

// reconnectable reports whether a connection that ended with cause should be
// re-established: network failures yes; a close by the server only for the
// codes wire says are worth retrying.
func reconnectable(cause error) bool {
	var ce *CloseError
	if errors.As(cause, &ce) {
		return ce.Code.Reconnectable()
	}
	return !errors.Is(cause, wsframe.ErrProtocol) && !errors.Is(cause, wsframe.ErrTooBig) && !errors.Is(cause, ErrPollerClosed)
}

// reconnect dials again with backoff and, if the client held a seat, resumes
// it. It gives up after the configured attempts, or when the seat is gone.
func (c *Client) reconnect(seat *Joined) (*connection, error) {
	rc := c.cfg.Reconnect
	var last error
	for attempt := range rc.Attempts {
		d := min(rc.Base<<attempt, rc.Cap)
		if d <= 0 { // shifted past int64
			d = rc.Cap
		}
		d = d/2 + rand.N(d/2+1)
		select {
		case <-time.After(d):
		case <-c.closeCh:
			return nil, ErrClosed
		}
		conn, w, err := c.dial(context.Background())
		if errors.Is(err, ErrPollerClosed) {
			return nil, err
		}
		if err != nil {
			last = err
			c.log.Debug("reconnect attempt failed", "attempt", attempt+1, "err", err)
			continue
		}
		if seat == nil {
			c.install(conn, w)
			return conn, nil
		}
		joined, err := c.resume(conn, seat.Token)
		if err != nil {
			conn.nc.Close()
			var er *wire.ErrorReply
			if errors.As(err, &er) && (er.Code == wire.CodeBadToken || er.Code == wire.CodeRoomNotFound) {
				return nil, fmt.Errorf("client: seat lost: %w", err)
			}
			last = err
			continue
		}
		c.install(conn, w)
		c.mu.Lock()
		c.seat = joined
		c.mu.Unlock()
		c.stats.Resumes.Add(1)
		c.log.Info("seat resumed", "room", joined.RoomID, "player", joined.Player)
		c.emit(Event{Kind: EventResumed, Player: joined.Player})
		return conn, nil
	}
	return nil, fmt.Errorf("client: reconnect gave up after %d attempts: %w", rc.Attempts, last)
}

func (c *Client) install(conn *connection, w wire.Welcome) {
	c.mu.Lock()
	c.conn, c.welcome = conn, w
	c.mu.Unlock()
	c.stateMu.Lock()
	c.state.Tick = 0 // the server starts a resumed seat with a full snapshot
	c.stateMu.Unlock()
}

// resume sends a Join with the token on a fresh connection, before the
// connection is handed to the read loop, and reads until its reply.
func (c *Client) resume(conn *connection, token string) (*Joined, error) {
	_ = conn.nc.SetDeadline(time.Now().Add(c.cfg.RequestTimeout))
	defer func() {
		_ = conn.nc.SetDeadline(time.Time{})
		conn.writeDeadline = time.Time{} // the next write sets its own
	}()
	id := c.reqID.Add(1)
	if err := c.writeTo(conn, conn.enc.Join(wire.Join{ReqID: id, Token: token})); err != nil {
		return nil, err
	}
	dec := wire.NewDecoder()
	var m wire.ServerMessage
	for {
		op, p, err := conn.rd.Next()
		if err != nil {
			return nil, err
		}
		if op == ws.OpClose {
			code, reason, _ := wsframe.ParseClose(p)
			return nil, &CloseError{Code: wire.CloseCode(code), Reason: reason}
		}
		if op != ws.OpBinary || dec.DecodeServer(p, &m) != nil {
			continue
		}
		switch {
		case m.Type == wire.TypeJoined && m.Joined.ReqID == id:
			return joinedFrom(&m.Joined), nil
		case m.Type == wire.TypeError && m.Error.ReqID == id:
			return nil, &wire.ErrorReply{Code: m.Error.Code, Message: m.Error.Message}
		}
		// Anything else before the reply (events of the old seat) is stale.
	}
}

func joinedFrom(m *wire.Joined) *Joined {
	return &Joined{
		RoomID:     m.RoomID,
		Mode:       m.Mode,
		Player:     m.Player,
		Token:      m.Token,
		Resumed:    m.Resumed,
		MaxPlayers: int(m.MaxPlayers),
		Players:    append([]uint32(nil), m.Players...),
	}
}

// reply writes a control frame the server asked for (a pong, the close
// echo). A poller hands it to a goroutine: the write may wait for the
// socket (or for another writer) up to WriteTimeout, and the poller reads
// for many clients. The client's goroutine waits for those goroutines
// before it closes the socket.
func (c *Client) reply(conn *connection, op ws.OpCode, p []byte) error {
	if conn.polled == nil {
		conn.wmu.Lock()
		defer conn.wmu.Unlock()
		return c.writeFrame(conn, op, p)
	}
	p = append([]byte(nil), p...) // p is the poller's buffer
	conn.writers.Add(1)
	go func() {
		defer conn.writers.Done()
		conn.wmu.Lock()
		defer conn.wmu.Unlock()
		if err := c.writeFrame(conn, op, p); err != nil && op != ws.OpClose {
			c.breakConn(conn, err)
		}
	}()
	return nil
}

// readLoop reads one connection until it ends and returns why.
func (c *Client) readLoop(conn *connection) error {
	dec := wire.NewDecoder()
	hb := c.heartbeat()
	for {
		if !c.closing.Load() {
			_ = conn.nc.SetReadDeadline(time.Now().Add(hb))
		}
		op, p, err := conn.rd.Next()
		if err != nil {
			return err
		}
		if err := c.onFrame(conn, dec, op, p); err != nil {
			return err
		}
	}
}

// heartbeat is how long the server may stay silent before the connection
// counts as dead: it pings at least that often.
func (c *Client) heartbeat() time.Duration {
	if hb := time.Duration(c.Welcome().HeartbeatMs) * time.Millisecond; hb > 0 {
		return hb
	}
	return 15 * time.Second
}

// onFrame handles one message from the server: it answers a ping, echoes a
// close and returns why the connection ends, and decodes and handles data.
// It runs on whichever goroutine reads conn.
func (c *Client) onFrame(conn *connection, dec *wire.Decoder, op ws.OpCode, p []byte) error {
	c.stats.BytesIn.Add(uint64(wsframe.HeaderLen(len(p)) + len(p))) // wire bytes, as sent unmasked
	switch op {
	case ws.OpPing:
		return c.reply(conn, ws.OpPong, p)
	case ws.OpClose:
		code, reason, _ := wsframe.ParseClose(p)
		_ = c.reply(conn, ws.OpClose, p[:min(len(p), 2)])
		if code == 1005 {
			code = uint16(wire.CloseNormal)
		}
		return &CloseError{Code: wire.CloseCode(code), Reason: reason}
	case ws.OpBinary:
	default:
		return nil
	}
	m := &c.snapMsg
	if err := dec.DecodeServer(p, m); err != nil {
		c.log.Warn("undecodable server message", "err", err)
		return nil
	}
	return c.handle(m, len(p))
}

func (c *Client) handle(m *wire.ServerMessage, size int) error {
	switch m.Type {
	case wire.TypeSnapshot:
		return c.applySnapshot(&m.Snapshot, size)
	case wire.TypeJoined:
		c.deliver(m.Joined.ReqID, reply{joined: joinedFrom(&m.Joined)})
	case wire.TypeOK:
		c.deliver(m.OK.ReqID, reply{})
	case wire.TypeError:
		err := &wire.ErrorReply{Code: m.Error.Code, Message: m.Error.Message}
		if m.Error.ReqID == 0 || !c.deliver(m.Error.ReqID, reply{err: err}) {
			c.emit(Event{Kind: EventError, Err: err})
		}
	case wire.TypePong:
		c.mu.Lock()
		ch, ok := c.pings[m.Pong.ClientTime]
		if ok {
			ch <- reply{pong: m.Pong}
			delete(c.pings, m.Pong.ClientTime)
		}
		c.mu.Unlock()
		if !ok && c.cfg.OnPong != nil {
			// A SendPing: ClientTime is when it was sent, in Unix ns.
			c.cfg.OnPong(time.Duration(time.Now().UnixNano() - m.Pong.ClientTime))
		}
	case wire.TypePlayerJoined:
		c.emit(Event{Kind: EventPlayerJoined, Player: m.PlayerJoined.Player})
	case wire.TypePlayerLeft:
		c.emit(Event{Kind: EventPlayerLeft, Player: m.PlayerLeft.Player, Reason: m.PlayerLeft.Reason})
	case wire.TypeRoomEvent:
		c.emit(Event{Kind: EventRoomMessage, From: m.RoomEvent.From, Payload: append([]byte(nil), m.RoomEvent.Payload...)})
	case wire.TypeRoomClosed:
		c.mu.Lock()
		c.seat = nil
		c.mu.Unlock()
		c.emit(Event{Kind: EventRoomClosed, Reason: m.RoomClosed.Reason})
	}
	return nil
}

func (c *Client) deliver(id uint32, r reply) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch, ok := c.pending[id]
	if ok {
		ch <- r
		delete(c.pending, id)
	}
	return ok
}

// applySnapshot applies s to the current state. A delta against a tick the
// client does not hold means the stream is broken: the connection is
// dropped, and the resume starts over with a full snapshot.
func (c *Client) applySnapshot(s *wire.Snapshot, size int) error {
	if !s.Full() && s.Base != c.state.Tick {
		return fmt.Errorf("%w: delta against tick %d, client holds %d", wire.ErrBadDelta, s.Base, c.state.Tick)
	}
	// Only this goroutine writes c.state, so it may read it unlocked.
	next, err := s.Apply(c.spare, c.state.Entities)
	if err != nil {
		return err
	}
	c.stateMu.Lock()
	c.spare = c.state.Entities
	c.state = Snapshot{
		Tick:       s.Tick,
		Base:       s.Base,
		Ack:        s.Ack,
		ServerTime: s.ServerTime,
		Paused:     s.Flags&wire.FlagPaused != 0,
		Size:       size,
		Entities:   next,
	}
	c.stateMu.Unlock()
	c.stats.Snapshots.Add(1)
	if c.cfg.OnSnapshot != nil {
		c.cfg.OnSnapshot(&c.state)
	}
	return nil
}
