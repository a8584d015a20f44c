// Package client is the Go client of the tickroom protocol, used by game
// clients, the bots and the tests: it dials, joins, sends inputs, receives
// snapshots with deltas applied, makes requests with timeouts, and after an
// abnormal drop reconnects with exponential backoff and jitter and resumes its
// seat with the reconnect token.
//
// Clusters: a node that does not host the room a Join asks for answers it
// with a wire.Redirect to the node that does. The client follows it at
// once, without backoff: it dials the node, sends the same Join there with
// wire.Join.Hops one higher, and once that node seats the player it makes
// the new connection its own, closes the old one normally (close code
// 1000; no EventDisconnected, no reconnect) and returns the seat. It
// follows at most wire.MaxHops redirects per Join (ErrTooManyRedirects);
// when a redirect cannot be followed the Join fails and the client stays on
// the connection it had. Resuming a seat after a drop follows redirects the
// same way, so a token resumes through any node of the cluster. The client
// remembers its current host, the URL it is connected to after redirects:
// after a drop it dials that host first, and when a dial fails it tries the
// URL given to Dial and then each of Config.Seeds, in turn, on the
// following attempts, with the usual backoff between them. A resume
// answered with wire.CodeRoomMoving (the room is between hosts) is retried
// like a network error.
//
// Goroutines: a Client owns one goroutine, started by Dial and stopped and
// waited for by Close. It reads from the connection, answers the server's
// pings, delivers replies to waiting requests, applies snapshots and calls
// Config.OnSnapshot, and, when the connection drops, reconnects. With
// Config.Poller set (Linux), a Poller's goroutine does the reading, for
// many clients at once, and the client's own goroutine only waits and
// reconnects. Methods are safe for concurrent use; they write to the socket
// under a mutex. A Join that is redirected dials and handshakes the new
// connection on the caller's goroutine, which owns it until it hands it to
// the client's goroutine (see Client.switchTo).
package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	// ErrTooManyRedirects: a Join (or a resume) was redirected again after
	// following wire.MaxHops redirects.
	ErrTooManyRedirects = errors.New("client: too many redirects")
)

// closeWait is how long Close waits for the server to echo the close.
const closeWait = time.Second

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
	EventMoved                             // the room moved to another node and the client resumed its seat there
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
	Redirects         atomic.Uint64 // redirects followed: the target was dialed and greeted
	Moves             atomic.Uint64 // seats resumed on the node a RoomMoved named
	EventsDropped     atomic.Uint64
}

// Client is a connection to a tickroom server.
type Client struct {
	url  string // as given to Dial
	cfg  Config
	log  *slog.Logger
	done chan struct{} // closed when the client's goroutine has exited

	stats   Stats
	events  chan Event
	closing atomic.Bool   // Close was called
	closeCh chan struct{} // closed by Close
	// closeCtx is cancelled by Close, so that a reconnect, resume or
	// redirect under way stops at once.
	closeCtx    context.Context
	cancelClose context.CancelFunc
	reqID       atomic.Uint32

	mu      sync.Mutex  // guards the fields below; never held across a socket write
	conn    *connection // the connection requests go to; nil while reconnecting
	host    string      // the URL conn (or, reconnecting, the last one) is connected to
	welcome wire.Welcome
	pending map[uint32]waiter
	pings   map[int64]waiter
	seat    *Joined
	seq     uint32
	err     error // why the client closed
	// handoff is the connection a redirected Join switched to while the
	// client's goroutine still reads the one before (retired): that
	// goroutine takes it once the retired connection has ended.
	handoff *connection
	moved   *wire.RoomMoved // the RoomMoved that ended the current connection

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

	// closeSent is set, under wmu, once the client has sent its close
	// frame: nothing more is written. leaveBy, set under wmu before
	// leaving is closed, is how long the reader then waits for the echo.
	closeSent bool
	leaveBy   time.Time
	leaving   chan struct{}

	// retired, guarded by Client.mu, marks a connection that a redirected
	// Join replaced by Client.handoff: its end is no drop.
	retired bool
}

// isLeaving reports whether the client has sent its close on conn.
func (conn *connection) isLeaving() bool {
	select {
	case <-conn.leaving:
		return true
	default:
		return false
	}
}

// waiter is a request waiting for its reply, and the connection it was sent on.
type waiter struct {
	ch   chan reply
	conn *connection
}

type reply struct {
	joined   *Joined
	redirect *wire.Redirect
	err      error
	pong     wire.Pong
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

// Close closes the connection normally (no reconnect) and waits for the
// client's goroutine to exit.
func (c *Client) Close() error {
	if c.closing.Swap(true) {
		<-c.done
		return nil
	}
	close(c.closeCh)
	c.cancelClose()
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	if conn != nil {
		c.leave(conn, "client closed")
	}
	<-c.done
	return nil
}

// leave sends a normal close (1000) on conn, once; whoever reads conn then
// waits closeWait for the server's echo, and cuts. Any goroutine.
func (c *Client) leave(conn *connection, reason string) {
	conn.wmu.Lock()
	defer conn.wmu.Unlock()
	if conn.closeSent {
		return
	}
	_ = c.writeFrame(conn, ws.OpClose, wsframe.CloseBody(uint16(wire.CloseNormal), reason))
	conn.closeSent = true
	conn.leaveBy = time.Now().Add(closeWait)
	// leaving first: a reader that sets its heartbeat deadline after this
	// one re-checks leaving and puts the shorter deadline back.
	close(conn.leaving)
	_ = conn.nc.SetReadDeadline(conn.leaveBy)
}

// run is the client's goroutine: read until the connection ends, then
// switch to the connection a redirected Join handed off, reconnect, or
// finish.
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
		retired, next := conn.retired, c.handoff
		if retired {
			c.handoff = nil // c.conn is next already
		} else {
			c.conn = nil
		}
		c.failPending(conn, fmt.Errorf("%w: %w", ErrNotConnected, cause))
		seat := c.seat
		c.mu.Unlock()
		conn.wmu.Lock()
		_ = conn.nc.Close()
		conn.wmu.Unlock()
		conn.writers.Wait() // they fail at once on the closed socket

		if retired {
			c.log.Debug("switched to the redirect's connection", "old", cause)
			c.resetState()
			conn = next
			continue
		}

		if errors.Is(cause, errRoomMoved) && !c.closing.Load() {
			c.mu.Lock()
			mv := c.moved
			c.moved = nil
			c.mu.Unlock()
			if next, err := c.followMove(mv); err == nil {
				conn = next
				continue
			}
		}
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
	c.failPending(nil, fmt.Errorf("%w: %w", ErrClosed, err))
	c.mu.Unlock()
	c.emit(Event{Kind: EventClosed, Err: err})
}

// failPending fails the requests waiting for a reply on conn, or every
// waiting request if conn is nil. c.mu must be held.
func (c *Client) failPending(conn *connection, err error) {
	for id, w := range c.pending {
		if conn == nil || w.conn == conn {
			w.ch <- reply{err: err}
			delete(c.pending, id)
		}
	}
	for k, w := range c.pings {
		if conn == nil || w.conn == conn {
			w.ch <- reply{err: err}
			delete(c.pings, k)
		}
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
