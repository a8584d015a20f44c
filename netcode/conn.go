package netcode

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"

	"github.com/tickroom/tickroom/netcode/internal/wsframe"
	"github.com/tickroom/tickroom/netcode/wire"
)

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

type outFrame struct {
	op   ws.OpCode
	data []byte
}

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

	// The socket's writer: whoever holds owner (1) may write, either the
	// writer goroutine or, on the fast path, the room offering a snapshot.
	// The room never blocks on the socket: when its non-blocking write does
	// not go through whole, it leaves the rest in handoffRest, sets handoff
	// and wakes the writer goroutine, which then owns the socket and
	// finishes the frame before anything else.
	owner   atomic.Int32
	handoff atomic.Bool
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

// Send queues an encoded message for the client. msg must not be modified
// afterwards; it may be shared by many connections. Send never blocks: if the
// control queue is full, the client is too slow and is disconnected with
// wire.CloseSlowConsumer.
func (c *Conn) Send(msg []byte) {
	select {
	case <-c.closing:
		return
	default:
	}
	if !c.enqueue(outFrame{op: ws.OpBinary, data: msg}) {
		c.srv.stats.SlowConsumers.Add(1)
		c.Close(wire.CloseSlowConsumer, "client reads too slowly: control queue overflow")
	}
}

// enqueue queues a control frame without blocking; false if the queue is full.
func (c *Conn) enqueue(f outFrame) bool {
	c.w.Lock()
	defer c.w.Unlock()
	if len(c.w.queue) >= c.srv.cfg.ControlQueue {
		return false
	}
	c.queued.Add(1)
	c.w.queue = append(c.w.queue, f)
	c.startWriterLocked()
	return true
}

// wakeWriter has the writer write the snapshot waiting in the slot (or
// finish a handed-off frame, or write the close), starting it if need be.
func (c *Conn) wakeWriter() {
	c.w.Lock()
	c.w.snapshot = true
	c.startWriterLocked()
	c.w.Unlock()
}

// startWriterLocked starts the writer goroutine unless it runs, is done for
// good, or the upgrade is not done. The caller holds c.w.
func (c *Conn) startWriterLocked() {
	if c.w.running || c.w.finished || !c.w.ready {
		return
	}
	c.w.running = true
	go c.writeLoop()
}

// writerReady lets writing start, once the upgrade's response is written.
func (c *Conn) writerReady() {
	c.w.Lock()
	defer c.w.Unlock()
	c.w.ready = true
	c.w.lastPing = time.Now()
	if len(c.w.queue) > 0 || c.w.snapshot || c.isClosing() {
		c.startWriterLocked()
	}
}

// pingIfDue asks the writer for a heartbeat ping if the last was a
// PingInterval ago. The server's pinger calls it.
func (c *Conn) pingIfDue(now time.Time) {
	c.w.Lock()
	defer c.w.Unlock()
	if !c.w.ready || c.w.finished || now.Sub(c.w.lastPing) < c.srv.cfg.PingInterval {
		return
	}
	c.w.lastPing = now
	c.w.ping = true
	c.startWriterLocked()
}

// heartbeatDue closes a connection read by a poller from which nothing
// arrived for HeartbeatTimeout (a reader goroutine has a read deadline
// instead). The server's pinger calls it every heartbeatSlack, so the close
// comes HeartbeatTimeout to HeartbeatTimeout+heartbeatSlack after the last
// frame.
func (c *Conn) heartbeatDue(now time.Time) {
	last := c.lastRead.Load()
	if c.poll == nil || last == 0 || now.Sub(c.srv.epoch)-time.Duration(last) <= c.srv.cfg.HeartbeatTimeout || c.isClosing() {
		return
	}
	c.Close(wire.CloseHeartbeatTimeout, "no frame within the heartbeat timeout")
}

// writeControl writes a control frame taken from the queue. The caller owns
// the socket.
func (c *Conn) writeControl(f outFrame) bool {
	ok := c.writeFrame(f.op, f.data)
	c.queued.Add(-1)
	return ok
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

// writeLoop is the connection's writer goroutine. It runs while there is
// work and exits when there is none; the next piece of work starts it
// again. Control frames go first: replies and events are small and must not
// wait behind a snapshot, and a join's Joined must precede the seat's first
// snapshot. Once the connection is closing it writes what is queued and the
// close frame, and is done for good.
func (c *Conn) writeLoop() {
	for {
		c.w.Lock()
		queue := c.w.queue
		c.w.queue = c.w.spare[:0]
		c.w.spare = nil
		snapshot, ping := c.w.snapshot, c.w.ping
		c.w.snapshot, c.w.ping = false, false
		closing := c.isClosing()
		if closing {
			c.w.finished = true
		} else if len(queue) == 0 && !snapshot && !ping && !c.handoff.Load() {
			c.w.running = false
			c.w.queue = queue // empty: keep its buffer
			c.w.Unlock()
			return
		}
		c.w.Unlock()

		if closing {
			if c.own() {
				c.writeClose(queue)
			}
			c.disown()
			close(c.writerDone)
			return
		}
		ok := c.own()
		for _, f := range queue {
			if ok {
				ok = c.writeControl(f)
			} else {
				c.queued.Add(-1)
			}
		}
		if ok && snapshot {
			if c.queued.Load() > 0 {
				// A reply was queued meanwhile: it goes first (a join's
				// Joined before the seat's first snapshot), next round.
				c.w.Lock()
				c.w.snapshot = true
				c.w.Unlock()
			} else {
				ok = c.writeSnapshot()
			}
		}
		if ok && ping {
			ok = c.writePing()
		}
		c.disown()
		// A failed write ended the connection: the next round writes the
		// close (or nothing, for a broken socket) and finishes.
		clear(queue) // drop references to sent messages
		c.w.Lock()
		if cap(queue) <= 8 { // a burst's large buffer is let go
			c.w.spare = queue[:0]
		}
		c.w.Unlock()
	}
}

// writePing writes a heartbeat ping carrying its send time, which the pong
// echoes, so the pong gives the RTT.
func (c *Conn) writePing() bool {
	sent := int64(time.Since(c.srv.epoch))
	c.pinged.Store(sent) // before the ping is written, so before its pong can arrive
	var stamp [8]byte
	binary.BigEndian.PutUint64(stamp[:], uint64(sent))
	return c.writeFrame(ws.OpPing, stamp[:])
}

// own makes the writer goroutine the socket's writer: at once if the room
// handed it a frame to finish (which it writes first), else as soon as the
// room's non-blocking write, if one is under way, is done. It returns false
// if finishing a handed-over frame failed.
func (c *Conn) own() bool {
	for {
		if c.handoff.Load() {
			c.handoff.Store(false)
			return c.write(c.handoffRest)
		}
		if c.owner.CompareAndSwap(0, 1) {
			return true
		}
		// The room holds it for one non-blocking write, and for encoding the
		// snapshot if it is the first of its tick with that base.
		runtime.Gosched()
	}
}

func (c *Conn) disown() { c.owner.Store(0) }

// writeDirect is the fast path of OfferSnapshot: when nothing is queued for
// the client and no one is writing, the caller (the room) writes the
// snapshot itself with one non-blocking write, saving the writer goroutine's
// wake-up. "Nothing queued" counts control frames queued and not yet written
// (queued), so a Joined or an event queued before the offer goes first. It
// reports false, having done nothing, when the fast path does not apply.
func (c *Conn) writeDirect(src SnapshotSource, tick uint64, ack uint32) bool {
	if !c.owner.CompareAndSwap(0, 1) {
		return false
	}
	if c.raw == nil { // read under ownership: startPolling swaps it
		c.disown()
		return false
	}
	s := &c.slot
	s.mu.Lock()
	if s.held || s.pending != nil || c.queued.Load() > 0 || c.isClosing() {
		s.mu.Unlock()
		c.disown()
		return false
	}
	f := src.SnapshotFrame(s.posted)
	s.posted = tick
	s.mu.Unlock()

	b := c.appendSnapshot(c.wbuf[:0], f, ack)
	c.wbuf = b
	n, err := c.raw.WriteNonBlocking(b)
	c.stats.BytesOut.Add(uint64(n))
	switch {
	case err == nil && n == len(b):
		c.stats.MessagesOut.Add(1)
		c.disown()
	case err == nil || errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR):
		// The socket buffer is full: the writer goroutine finishes the
		// frame, blocking as long as WriteTimeout allows (and counts it).
		c.handoffRest = b[n:]
		c.handoff.Store(true)
		c.wakeWriter()
	default:
		c.end(fmt.Errorf("netcode: write: %w", err), nil)
		c.stopReading()
		c.disown()
	}
	return true
}

func (c *Conn) writeSnapshot() bool {
	f, ack := c.slot.takeUnless(&c.queued)
	if f == nil {
		if c.queued.Load() > 0 { // next round, after the queued frames
			c.w.Lock()
			c.w.snapshot = true
			c.w.Unlock()
		}
		return true
	}
	c.wbuf = c.appendSnapshot(c.wbuf[:0], f, ack)
	return c.write(c.wbuf)
}

// appendSnapshot appends the frame of snapshot f with the player's ack.
func (c *Conn) appendSnapshot(b []byte, f *SnapshotFrame, ack uint32) []byte {
	var head [8]byte
	h := wire.AppendSnapshotHead(head[:0], ack)
	b = wsframe.AppendHeader(b, ws.OpBinary, len(h)+len(f.Body), nil)
	b = append(b, h...)
	return append(b, f.Body...)
}

func (c *Conn) writeFrame(op ws.OpCode, data []byte) bool {
	b := wsframe.AppendHeader(c.wbuf[:0], op, len(data), nil)
	b = append(b, data...)
	c.wbuf = b
	return c.write(b)
}

// write writes one whole frame, blocking for at most WriteTimeout. With the
// fast path (c.raw) it sets the deadline for this write and clears it after,
// since the fast path's non-blocking writes would fail on an expired
// deadline; this path is then the rare one. Without it, every snapshot comes
// here, so the deadline is renewed only when less than half is left.
func (c *Conn) write(b []byte) bool {
	now := time.Now()
	if c.raw != nil {
		_ = c.nc.SetWriteDeadline(now.Add(c.srv.cfg.WriteTimeout))
		defer func() { _ = c.nc.SetWriteDeadline(time.Time{}) }()
	} else if c.writeDeadline.Sub(now) < c.srv.cfg.WriteTimeout/2 {
		c.writeDeadline = now.Add(c.srv.cfg.WriteTimeout)
		_ = c.nc.SetWriteDeadline(c.writeDeadline)
	}
	n, err := c.nc.Write(b)
	c.stats.BytesOut.Add(uint64(n))
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			c.srv.stats.SlowConsumers.Add(1)
			err = &CloseError{Code: wire.CloseSlowConsumer, Reason: "write timed out"}
		} else {
			err = fmt.Errorf("netcode: write: %w", err)
		}
		c.end(err, nil)
		c.stopReading()
		return false
	}
	c.stats.MessagesOut.Add(1)
	return true
}

// writeClose sends what is left in the control queue (an error reply that
// explains the close, say) and the close frame, then half-closes the TCP
// connection so the client reads the frame and an EOF rather than a reset,
// and gives the reader CloseGrace to see the client's answer.
func (c *Conn) writeClose(queue []outFrame) {
	if _, send := c.endCause(); send != nil {
		c.writeDeadline = time.Now().Add(c.srv.cfg.CloseGrace)
		_ = c.nc.SetWriteDeadline(c.writeDeadline)
		for _, f := range queue {
			if f.op != ws.OpBinary {
				continue
			}
			if _, err := c.nc.Write(wsframe.AppendHeader(c.wbuf[:0], ws.OpBinary, len(f.data), nil)); err != nil {
				break
			}
			if _, err := c.nc.Write(f.data); err != nil {
				break
			}
		}
		body := wsframe.CloseBody(uint16(send.Code), send.Reason)
		b := wsframe.AppendHeader(c.wbuf[:0], ws.OpClose, len(body), nil)
		b = append(b, body...)
		_, _ = c.nc.Write(b)
		if tc, ok := c.nc.(interface{ CloseWrite() error }); ok {
			_ = tc.CloseWrite()
		}
	}
	// The deadline bounds the reader goroutine's drain (with a poller, the
	// handshake's, if the close comes before the poller has the connection);
	// a poller has the timer, since no event may come to fail its read.
	_ = c.nc.SetReadDeadline(time.Now().Add(c.srv.cfg.CloseGrace))
	if c.poll != nil {
		poll := c.poll
		c.graceTimer = time.AfterFunc(c.srv.cfg.CloseGrace, func() { poll.requestFinish(c) })
	}
}

// stopReading makes the reading side give up on a socket whose write
// failed: the reader goroutine's read fails, or the poller finishes the
// connection. With a poller, the socket is not closed here: its descriptor
// must stay valid until it is out of the epoll set.
func (c *Conn) stopReading() {
	if c.poll != nil {
		_ = c.nc.SetReadDeadline(time.Now()) // a handshake's read, if one is under way
		c.poll.requestFinish(c)
		return
	}
	_ = c.nc.Close()
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
	_ = c.nc.Close()
	cause, _ := c.endCause()
	label := c.Label() // as it was when the connection ended: Closed may clear it
	if c.session != nil {
		c.session.Closed(cause)
	}
	c.recordEnd(cause, label)
	c.srv.remove(c)
}

// startPolling hands the connection to its poller after the handshake. The
// frames the client sent right behind its Hello may already sit in the
// handshake's buffer: they are handled first, here.
func (c *Conn) startPolling(ds *decodeState) {
	c.parser = wsframe.NewParser(c.srv.cfg.MaxMessageSize, true)
	_ = c.nc.SetReadDeadline(time.Time{}) // the pinger checks the heartbeat from now on
	c.lastRead.Store(int64(time.Since(c.srv.epoch)))
	if n := c.br.Buffered(); n > 0 {
		b, _ := c.br.Peek(n)
		rest, _ := c.consume(bytes.Clone(b), ds, nil)
		c.keepPending(rest)
	}
	c.srv.putDecoder(ds)
	c.rd, c.br = nil, nil
	c.detach() // best effort: an attached socket is read the same way
	c.pollFD = c.raw.FD()
	if c.pollFD < 0 {
		c.end(errors.New("netcode: socket closed during the handshake"), nil)
		c.finish()
		return
	}
	c.poll.arm(c)
}

// keepPending keeps the start of a frame that a read cut short, copied out
// of the buffer it was read into. It is at most one frame's header and
// MaxMessageSize bytes: the parser refuses longer frames from the header.
func (c *Conn) keepPending(rest []byte) {
	if len(rest) == 0 {
		if cap(c.pend) > releaseAbove {
			c.pend = nil // let a large message's memory go
		} else {
			c.pend = c.pend[:0]
		}
		return
	}
	if cap(c.pend) > max(releaseAbove, 2*len(rest)) {
		c.pend = bytes.Clone(rest) // do not pin a large buffer for a few bytes
		return
	}
	c.pend = append(c.pend[:0], rest...)
}

// consume handles the whole frames in b and returns the start of the next
// one, if b ends inside it. With a poller p, it does not answer a request
// (join, leave, room message: those wait on a room): it keeps what follows
// it in pend, takes the connection from the poller and answers the request
// on a goroutine of the connection's own, which then handles the rest and
// gives the connection back (handedOff). Without one, it is that goroutine
// (or the handshake's) and answers requests itself.
func (c *Conn) consume(b []byte, ds *decodeState, p *poller) (rest []byte, handedOff bool) {
	for len(b) > 0 && !c.draining {
		op, payload, n, err := c.parser.Parse(b)
		if err != nil {
			c.readFailed(err)
			c.draining = true
			return nil, false
		}
		if n == 0 {
			return b, false
		}
		b = b[n:]
		if op == 0 {
			continue // a fragment
		}
		c.stats.BytesIn.Add(uint64(len(payload)))
		data, ok := c.frame(op, payload)
		if !ok {
			continue
		}
		switch c.dispatch(ds, c.session, data, p == nil) {
		case dispatchClose:
			c.draining = true
			return nil, false
		case dispatchRequest:
			c.keepPending(b)
			req := new(wire.ClientMessage)
			*req = ds.msg
			if req.Type == wire.TypeMessage {
				req.Message.Payload = bytes.Clone(req.Message.Payload) // it points into the poller's buffer
			}
			p.disarm(c)
			go c.serveRequest(req)
			return nil, true
		}
	}
	if c.draining {
		return nil, false
	}
	c.parser.Release(releaseAbove)
	return nil, false
}

// serveRequest answers the request consume handed it, on a goroutine of
// the connection's own, handles what the client sent behind it, and gives
// the connection back to its poller.
func (c *Conn) serveRequest(req *wire.ClientMessage) {
	c.request(c.session, req)
	if !c.draining {
		ds := c.srv.getDecoder()
		rest, _ := c.consume(c.pend, ds, nil)
		c.srv.putDecoder(ds)
		c.keepPending(rest)
	}
	c.poll.arm(c)
}

// next reads the next data message, answering pings and handling close
// frames. It returns false when the connection is over. Reader goroutine
// only.
func (c *Conn) next() ([]byte, bool) {
	for {
		op, p, err := c.rd.Next()
		if err != nil {
			c.readFailed(err)
			c.drain()
			return nil, false
		}
		c.stats.BytesIn.Add(uint64(len(p)))
		// Renew the heartbeat deadline on any frame, but only every
		// heartbeatSlack, to keep timer updates off most reads: the
		// deadline it sets reaches that far past HeartbeatTimeout, so the
		// close comes HeartbeatTimeout to HeartbeatTimeout+heartbeatSlack
		// after the last frame, as with a poller (heartbeatDue). Before the
		// Hello, the handshake deadline stands whatever arrives.
		if c.welcomed && !c.isClosing() {
			if now := time.Now(); now.Sub(c.lastDeadline) >= c.srv.heartbeatSlack() {
				c.lastDeadline = now
				_ = c.nc.SetReadDeadline(c.srv.heartbeatDeadline(now))
			}
		}
		if data, ok := c.frame(op, p); ok {
			return data, true
		}
	}
}

// frame handles one whole frame: it answers a ping, takes a pong's RTT, acts
// on a close, refuses text, and returns a binary message's data with true.
func (c *Conn) frame(op ws.OpCode, p []byte) ([]byte, bool) {
	switch op {
	case ws.OpBinary:
		if c.isClosing() {
			return nil, false // nothing sent after a close is acted on
		}
		c.stats.MessagesIn.Add(1)
		return p, true
	case ws.OpText:
		c.Close(wire.CloseUnsupportedData, "text frames are not supported: send binary MessagePack")
	case ws.OpPing:
		if !c.enqueue(outFrame{op: ws.OpPong, data: append([]byte(nil), p...)}) {
			c.Close(wire.CloseSlowConsumer, "client reads too slowly: control queue overflow")
		}
	case ws.OpPong:
		// Besides renewing the heartbeat, a pong to our latest ping gives
		// the RTT. A client may send anything here, so only a pong that
		// echoes that ping's payload counts: another payload (an
		// unsolicited pong, a forged or a stale stamp) gives no RTT.
		if sent := c.pinged.Load(); sent != 0 && len(p) == 8 && int64(binary.BigEndian.Uint64(p)) == sent {
			if rtt := time.Since(c.srv.epoch) - time.Duration(sent); rtt >= 0 {
				c.rtt.Store(int64(rtt))
			}
		}
	case ws.OpClose:
		code, reason, err := wsframe.ParseClose(p)
		if err != nil {
			c.Close(wire.CloseProtocolError, "malformed close frame")
			return nil, false
		}
		c.end(&CloseError{Code: wire.CloseCode(code), Reason: reason, ByPeer: true}, &CloseError{Code: echoCode(code)})
	}
	return nil, false
}

// echoCode is the code to answer a client's close frame with: its own code
// if that may appear on the wire (RFC 6455, 7.4), 1000 for an empty close
// frame, and 1002 for a code no endpoint may send.
func echoCode(code uint16) wire.CloseCode {
	switch {
	case code == 1005:
		return wire.CloseNormal
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1011, code >= 3000 && code <= 4999:
		return wire.CloseCode(code)
	default:
		return wire.CloseProtocolError
	}
}

// readFailed turns a read error into the connection's end. The reading side
// then drains (see drain).
func (c *Conn) readFailed(err error) {
	switch {
	case c.isClosing():
		// Closing was already under way; this is the socket going down.
	case errors.Is(err, wsframe.ErrTooBig):
		c.Close(wire.CloseMessageTooBig, fmt.Sprintf("frame larger than %d bytes", c.srv.cfg.MaxMessageSize))
	case errors.Is(err, wsframe.ErrProtocol):
		c.Close(wire.CloseProtocolError, err.Error())
	case errors.Is(err, os.ErrDeadlineExceeded) && !c.welcomed:
		c.Close(wire.CloseHandshakeTimeout, "no Hello within the handshake timeout")
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.Close(wire.CloseHeartbeatTimeout, "no frame within the heartbeat timeout")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		c.end(&CloseError{Code: 1006, Reason: "connection lost", ByPeer: true}, nil)
	default:
		c.end(fmt.Errorf("netcode: read: %w", err), nil)
	}
}

// drain reads and discards until the client closes or the deadline the
// writer sets with the close frame (CloseGrace) passes, so that the client
// reads the close frame rather than a reset caused by unread data.
func (c *Conn) drain() {
	for {
		if _, _, err := c.rd.Next(); err != nil {
			return
		}
	}
}

// handshake waits for the Hello and answers it with the Welcome.
func (c *Conn) handshake(ds *decodeState) bool {
	p, ok := c.next()
	if !ok {
		if cause, _ := c.endCause(); isTimeout(cause) {
			c.srv.stats.HandshakeFailures.Add(1)
		}
		return false
	}
	err := ds.dec.DecodeClient(p, &ds.msg)
	switch {
	case errors.Is(err, wire.ErrMalformed):
		c.srv.stats.HandshakeFailures.Add(1)
		c.Close(wire.CloseInvalidPayload, "malformed message: expected Hello")
		return false
	case err != nil || ds.msg.Type != wire.TypeHello:
		c.srv.stats.HandshakeFailures.Add(1)
		c.Close(wire.CloseProtocolError, "the first message must be Hello")
		return false
	case ds.msg.Hello.Version != wire.Version:
		c.srv.stats.HandshakeFailures.Add(1)
		c.sendEncoded(func(e *wire.Encoder) []byte {
			return e.Error(wire.Error{
				Code:    wire.CodeUnsupportedVersion,
				Message: fmt.Sprintf("protocol version %d is not supported; this server speaks %d", ds.msg.Hello.Version, wire.Version),
			})
		})
		c.Close(wire.CloseUnsupportedVersion, "unsupported protocol version")
		return false
	}
	cfg := &c.srv.cfg
	c.sendEncoded(func(e *wire.Encoder) []byte {
		return e.Welcome(wire.Welcome{
			Version:     wire.Version,
			TickRate:    uint32(cfg.TickRate),
			ServerTime:  time.Now().UnixMilli(),
			MaxMessage:  uint32(cfg.MaxMessageSize),
			HeartbeatMs: uint32(cfg.HeartbeatTimeout / time.Millisecond),
		})
	})
	c.welcomed = true
	c.lastDeadline = time.Now()
	_ = c.nc.SetReadDeadline(c.srv.heartbeatDeadline(c.lastDeadline))
	c.client = ds.msg.Hello.Client
	c.logger().Info("connection opened")
	return true
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

// readLoop decodes messages and dispatches them to the session.
func (c *Conn) readLoop(ds *decodeState, s Session) {
	for {
		p, ok := c.next()
		if !ok {
			return
		}
		if c.dispatch(ds, s, p, true) == dispatchClose {
			c.drain()
			return
		}
		if len(p) > releaseAbove {
			c.rd.Release(releaseAbove)
		}
	}
}

// releaseAbove is the read buffer size a connection keeps between messages.
const releaseAbove = 1024

// dispatchResult says what dispatch did with a message.
type dispatchResult uint8

const (
	dispatchDone    dispatchResult = iota // handled
	dispatchClose                         // the connection is closing: read no further
	dispatchRequest                       // a request left in ds.msg for the caller to answer
)

// dispatch decodes one client message and handles it. A request (join,
// leave, room message) it answers itself only if inline; otherwise it
// leaves it decoded in ds.msg for the caller.
func (c *Conn) dispatch(ds *decodeState, s Session, p []byte, inline bool) dispatchResult {
	m := &ds.msg
	if err := ds.dec.DecodeClient(p, m); err != nil {
		var de *wire.DecodeError
		errors.As(err, &de)
		switch {
		case errors.Is(err, wire.ErrMalformed):
			c.Close(wire.CloseInvalidPayload, "malformed message: not a MessagePack message array")
			return dispatchClose
		case errors.Is(err, wire.ErrUnknownType):
			c.replyError(de.ReqID, wire.CodeUnknownType, fmt.Sprintf("unknown message type %d", de.Type))
		default:
			c.replyError(de.ReqID, wire.CodeBadRequest, err.Error())
		}
		return dispatchDone
	}
	switch m.Type {
	case wire.TypeInput:
		now := time.Now()
		if !c.inputs.allow(now) {
			c.stats.InputsDropped.Add(1)
			if c.abusing(now) {
				c.Close(wire.CloseRateLimited, "inputs far above the rate limit")
				return dispatchClose
			}
			c.throttledError(now, wire.CodeRateLimited, "more inputs per second than allowed; the excess is dropped")
			return dispatchDone
		}
		if err := s.Input(m.Input); err != nil {
			c.throttledError(now, codeOf(err), err.Error())
		}
	case wire.TypePing:
		c.sendEncoded(func(e *wire.Encoder) []byte {
			return e.Pong(wire.Pong{ClientTime: m.Ping.ClientTime, ServerTime: time.Now().UnixMilli()})
		})
	case wire.TypeHello:
		c.replyError(0, wire.CodeBadRequest, "hello was already received")
	case wire.TypeJoin, wire.TypeLeave, wire.TypeMessage:
		if !inline {
			return dispatchRequest
		}
		c.request(s, m)
	}
	return dispatchDone
}

// abusing counts a dropped input and reports whether the client dropped so
// many within a second (AbuseFactor times the input rate, plus the burst)
// that it is flooding rather than merely fast.
func (c *Conn) abusing(now time.Time) bool {
	if now.Sub(c.abuseWindow) > time.Second {
		c.abuseWindow, c.abuseDrops = now, 0
	}
	c.abuseDrops++
	cfg := &c.srv.cfg
	return c.abuseDrops > int(cfg.AbuseFactor*cfg.InputRate)+cfg.InputBurst
}

// request handles the messages that carry a request id: exactly one reply.
func (c *Conn) request(s Session, m *wire.ClientMessage) {
	var reqID uint32
	switch m.Type {
	case wire.TypeJoin:
		reqID = m.Join.ReqID
	case wire.TypeLeave:
		reqID = m.Leave.ReqID
	case wire.TypeMessage:
		reqID = m.Message.ReqID
	}
	if !c.requests.allow(time.Now()) {
		c.replyError(reqID, wire.CodeRateLimited, "more requests per second than allowed")
		return
	}
	var err error
	switch m.Type {
	case wire.TypeJoin:
		// A new seat starts with a full snapshot, and its snapshots wait
		// until the reply is queued, so the client hears Joined first.
		c.slot.hold()
		defer func() {
			if c.slot.release() {
				c.wakeWriter()
			}
		}()
		var j wire.Joined
		if j, err = s.Join(m.Join); err == nil {
			j.ReqID = reqID
			c.sendEncoded(func(e *wire.Encoder) []byte { return e.Joined(j) })
			return
		}
	case wire.TypeLeave:
		err = s.Leave()
	case wire.TypeMessage:
		if len(m.Message.Payload) > c.srv.cfg.MaxRoomMessage {
			err = Reply(wire.CodeTooLarge, "room message of %d bytes, at most %d", len(m.Message.Payload), c.srv.cfg.MaxRoomMessage)
		} else {
			err = s.Message(m.Message.Payload)
		}
	}
	if err != nil {
		c.replyError(reqID, codeOf(err), err.Error())
		return
	}
	c.sendEncoded(func(e *wire.Encoder) []byte { return e.OK(wire.OK{ReqID: reqID}) })
}

func codeOf(err error) wire.ErrorCode {
	var er *wire.ErrorReply
	if errors.As(err, &er) {
		return er.Code
	}
	return wire.CodeInternal
}

func (c *Conn) replyError(reqID uint32, code wire.ErrorCode, msg string) {
	c.sendEncoded(func(e *wire.Encoder) []byte { return e.Error(wire.Error{ReqID: reqID, Code: code, Message: msg}) })
}

// throttledError reports an error about streamed inputs at most once a second
// per code, so a misbehaving client cannot fill its own queue with errors.
func (c *Conn) throttledError(now time.Time, code wire.ErrorCode, msg string) {
	if last, ok := c.errThrottle[code]; ok && now.Sub(last) < time.Second {
		return
	}
	if c.errThrottle == nil {
		c.errThrottle = make(map[wire.ErrorCode]time.Time)
	}
	c.errThrottle[code] = now
	c.replyError(0, code, msg)
}

// sendEncoded encodes a reply with a pooled encoder and queues a copy.
func (c *Conn) sendEncoded(encode func(e *wire.Encoder) []byte) {
	e := c.srv.encoders.Get().(*wire.Encoder)
	msg := bytes.Clone(encode(e))
	c.srv.encoders.Put(e)
	c.Send(msg)
}

// tokenBucket is a rate limiter used by one goroutine.
type tokenBucket struct {
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
}

func newTokenBucket(rate float64, burst int) tokenBucket {
	return tokenBucket{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

func (b *tokenBucket) allow(now time.Time) bool {
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
