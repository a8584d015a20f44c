package netcode

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

	"github.com/tickroom/tickroom/netcode/internal/wsframe"
	"github.com/tickroom/tickroom/netcode/wire"
)

// Stats are a connection's counters, safe to read at any time.
type Stats struct {
	BytesIn, BytesOut       atomic.Uint64
	MessagesIn, MessagesOut atomic.Uint64
	SnapshotsReplaced       atomic.Uint64 // offered snapshots dropped unsent for a newer one
	InputsDropped           atomic.Uint64 // inputs over the rate limit
}

// Conn is one client connection. Its methods are safe for concurrent use.
type Conn struct {
	srv *Server
	// nc is the socket. With a poller it is replaced by a detached one
	// (detach) after the handshake; it is used by the connection's own
	// goroutine before that, and otherwise only by the socket's writer (see
	// owner) and by finish.
	nc     net.Conn
	remote net.Addr // nc's peer, fixed: read from any goroutine
	id     uint64
	client string // from the Hello, for logs; set by the reader before Open

	slot       snapshotSlot
	closing    chan struct{} // closed once the connection is closing
	writerDone chan struct{} // closed when the last writer goroutine is done for good

	// The writer goroutine runs only while there is something to write:
	// control frames, a snapshot the fast path could not write, a ping, or
	// the close. An idle connection has none, which saves its stack. w
	// guards the writer's work list and its life.
	w struct {
		sync.Mutex
		queue    []outFrame // control frames, at most ControlQueue
		spare    []outFrame // the queue's other buffer, while the writer works
		snapshot bool       // a snapshot waits in slot, or a handed-off frame
		ping     bool
		lastPing time.Time // when the last ping was asked for
		ready    bool      // the upgrade is done: writing may start
		running  bool
		finished bool // the close was written: no writer starts again
	}

	closeOnce sync.Once
	causeMu   sync.Mutex
	cause     error       // the first reason the connection ended
	send      *CloseError // the close frame the writer sends, nil for none

	stats  Stats
	opened time.Time
	label  atomic.Pointer[string]
	rtt    atomic.Int64 // nanoseconds, from the last ping answered; 0 if none yet
	// pinged is the payload of the latest ping sent: its send time, in
	// nanoseconds since the server's epoch; 0 before the first.
	pinged atomic.Int64

	// The reading side: the reader goroutine, or, once the handshake is
	// done and a poller reads the connection (poll), whichever of the
	// poller and the connection's request goroutine holds it (pollState).
	rd           *wsframe.Reader // until the poller takes over
	br           *bufio.Reader   // rd's source
	session      Session
	inputs       tokenBucket
	requests     tokenBucket
	welcomed     bool // the Hello was answered
	lastDeadline time.Time
	errThrottle  map[wire.ErrorCode]time.Time
	abuseWindow  time.Time // start of the second in which abuseDrops counts
	abuseDrops   int
	parser       *wsframe.Parser // with a poller
	pend         []byte          // with a poller: a frame's start, read and not yet parsed
	draining     bool            // with a poller: the connection is closing; reads are discarded

	// With a poller (see poller): nil without. pollFD is the socket's
	// descriptor; pollState and pollFinish are guarded by the poller's mu.
	// lastRead (nanoseconds since the server's epoch) is when the poller
	// last read anything, for the pinger's heartbeat check; graceTimer
	// finishes a connection whose client does not answer the close.
	poll       *poller
	pollFD     int
	pollState  pollState
	pollFinish bool
	lastRead   atomic.Int64
	graceTimer *time.Timer
	// redirectTimer closes a connection whose join was redirected, if the
	// client does not (request sets it, finish stops it).
	redirectTimer atomic.Pointer[time.Timer]
	// relay, once set, takes every message the client sends (relay.go);
	// space tells a relay waiting on a full control queue that the writer
	// took the queue.
	relay atomic.Pointer[relay]
	space chan struct{}

	// The socket's writer: whoever holds owner (1) may write, either the
	// writer goroutine or, on the fast path, the room offering a snapshot.
	// The room never blocks on the socket: when its non-blocking write does
	// not go through whole, it leaves the rest in handoffRest, sets handoff
	// and wakes the writer goroutine, which then owns the socket and
	// finishes the frame before anything else.
	owner    atomic.Int32
	handoff  atomic.Bool
	writable atomic.Bool // the upgrade's response is written: the fast paths may write
	// queued counts control frames queued and not yet written: unlike the
	// queue's length, it still counts a frame the writer has taken but not
	// written, so the fast path cannot overtake it.
	queued      atomic.Int32
	handoffRest []byte
	raw         rawIO // nil where non-blocking reads and writes are not wired up

	// Owned by the socket's writer (see owner).
	wbuf          []byte
	writeDeadline time.Time
}

// logger returns a logger for this connection's lifecycle events, built on
// demand: they are rare, and a logger per connection is not free.
func (c *Conn) logger() *slog.Logger {
	return c.srv.log.With("conn", c.id, "remote", c.remote.String(), "client", c.client)
}

// ID returns the connection's id, unique within its server.
func (c *Conn) ID() uint64 { return c.id }

// RemoteAddr returns the client's address.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// Stats returns the connection's counters.
func (c *Conn) Stats() *Stats { return &c.stats }

// RTT returns the round-trip time measured by the last heartbeat ping the
// client answered, or 0 before the first.
func (c *Conn) RTT() time.Duration { return time.Duration(c.rtt.Load()) }

// SetLabel sets a short description of what the connection is for (the
// Handler's business: rooms sets the room and player), shown in its logs and
// in RecentDisconnects.
func (c *Conn) SetLabel(label string) { c.label.Store(&label) }

// Label returns what SetLabel set, or "".
func (c *Conn) Label() string {
	if p := c.label.Load(); p != nil {
		return *p
	}
	return ""
}

// Done is closed when the connection starts closing.
func (c *Conn) Done() <-chan struct{} { return c.closing }

// Close closes the connection with a close frame carrying code and reason.
// It returns at once; the connection's goroutines finish in the background
// and its Session's Closed is called when they have. Later calls do nothing.
func (c *Conn) Close(code wire.CloseCode, reason string) {
	ce := &CloseError{Code: code, Reason: reason}
	c.end(ce, ce)
}

// end records why the connection ends and starts closing it, once; the
// writer sends send as the close frame, or none if send is nil.
func (c *Conn) end(cause error, send *CloseError) {
	c.closeOnce.Do(func() {
		c.causeMu.Lock()
		if c.cause == nil {
			c.cause = cause
		}
		c.send = send
		c.causeMu.Unlock()
		close(c.closing)
		c.wakeWriter() // to write the close frame, if the upgrade is done
	})
}

func (c *Conn) setCause(err error) {
	c.causeMu.Lock()
	if c.cause == nil {
		c.cause = err
	}
	c.causeMu.Unlock()
}

func (c *Conn) endCause() (error, *CloseError) {
	c.causeMu.Lock()
	defer c.causeMu.Unlock()
	return c.cause, c.send
}

func (c *Conn) isClosing() bool {
	select {
	case <-c.closing:
		return true
	default:
		return false
	}
}

// serve is the connection's reader goroutine: upgrade, handshake, then read
// until the connection ends, or, with a poller, hand the reading to it.
func (c *Conn) serve() {
	_ = c.nc.SetDeadline(time.Now().Add(c.srv.cfg.HandshakeTimeout))
	if _, err := c.srv.upgrader.Upgrade(c.nc); err != nil {
		c.srv.stats.HandshakeFailures.Add(1)
		c.logger().Debug("websocket upgrade failed", "err", err)
		c.end(fmt.Errorf("netcode: upgrade: %w", err), nil)
		close(c.writerDone) // the writer never started
		c.finish()
		return
	}
	_ = c.nc.SetWriteDeadline(time.Time{})
	// Only now may anything else be written: the 101 response comes first.
	c.writerReady()

	ds := c.srv.getDecoder()
	if !c.handshake(ds) {
		c.srv.putDecoder(ds)
		c.drain()
		c.finish()
		return
	}
	c.session = c.srv.handler.Open(c)
	if c.poll != nil {
		c.startPolling(ds)
		return
	}
	c.readLoop(ds, c.session)
	c.srv.putDecoder(ds)
	c.finish()
}

// finish ends the connection once its reading is over: it waits for the
// writer, closes the socket, tells the Session, and counts and logs the end.
// It runs once, on the goroutine that read last.
func (c *Conn) finish() {
	c.end(&CloseError{Code: wire.CloseInternalError, Reason: "connection ended"}, nil)
	<-c.writerDone
	if c.graceTimer != nil {
		c.graceTimer.Stop()
	}
	if t := c.redirectTimer.Load(); t != nil {
		t.Stop()
	}
	if r := c.relay.Load(); r != nil {
		r.close()
	}
	_ = c.nc.Close()
	cause, _ := c.endCause()
	label := c.Label() // as it was when the connection ended: Closed may clear it
	if c.session != nil {
		c.session.Closed(cause)
	}
	c.recordEnd(cause, label)
	c.srv.remove(c)
}

// recordEnd counts and logs the connection's end, once, on the reader
// goroutine. Failed handshakes (port scanners, health checks) log at debug
// level only, so they cannot flood the log.
func (c *Conn) recordEnd(cause error, label string) {
	reason := classify(cause, c.welcomed)
	c.srv.stats.disconnects[reason].Add(1)
	d := Disconnect{
		Time:     time.Now(),
		Conn:     c.id,
		Remote:   c.remote.String(),
		Client:   c.client,
		Label:    label,
		Reason:   reason,
		Duration: time.Since(c.opened),
	}
	var ce *CloseError
	if errors.As(cause, &ce) {
		d.Code, d.Detail = ce.Code, ce.Reason
	} else if cause != nil {
		d.Detail = cause.Error()
	}
	level := slog.LevelInfo
	if !c.welcomed {
		level = slog.LevelDebug
	} else {
		c.srv.recent.add(d)
	}
	c.logger().Log(context.Background(), level, "connection closed",
		"reason", reason.String(), "code", int(d.Code), "detail", d.Detail,
		"label", d.Label, "duration", d.Duration.Round(time.Millisecond))
}

func isTimeout(err error) bool {
	var ce *CloseError
	return errors.As(err, &ce) && ce.Code == wire.CloseHandshakeTimeout
}
