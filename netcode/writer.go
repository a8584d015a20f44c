package netcode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"

	"github.com/gobwas/ws"

	"github.com/tickroom/tickroom/netcode/internal/wsframe"
	"github.com/tickroom/tickroom/netcode/wire"
)

// This file holds a connection's writing side: the control queue, the
// on-demand writer goroutine, the room's direct-write fast path and the
// ownership of the socket between them, and the close.

type outFrame struct {
	op   ws.OpCode
	data []byte
}

// Send queues an encoded message for the client. msg must not be modified
// afterwards; it may be shared by many connections. Send never blocks: if the
// control queue is full, the client is too slow and is disconnected with
// wire.CloseSlowConsumer. When nothing is queued ahead of it and no one is
// writing, Send writes msg at once with one non-blocking write, as the
// snapshot fast path does, sparing the writer goroutine's start: so Send
// may make one write system call on the caller's goroutine.
func (c *Conn) Send(msg []byte) {
	select {
	case <-c.closing:
		return
	default:
	}
	if c.sendDirect(msg) {
		return
	}
	if !c.enqueue(outFrame{op: ws.OpBinary, data: msg}) {
		c.srv.stats.SlowConsumers.Add(1)
		c.Close(wire.CloseSlowConsumer, "client reads too slowly: control queue overflow")
	}
}

// sendWait queues msg like Send, but waits up to timeout while the control
// queue is full instead of closing the connection at once: the relay's
// upstream reader uses it, so that a client that does not read stops the
// reading upstream. It reports false if the connection is closing or
// closed for being too slow.
func (c *Conn) sendWait(msg []byte, timeout time.Duration) bool {
	if c.isClosing() {
		return false
	}
	if c.sendDirect(msg) || c.enqueue(outFrame{op: ws.OpBinary, data: msg}) {
		return true
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case <-c.space:
			if c.enqueue(outFrame{op: ws.OpBinary, data: msg}) {
				return true
			}
		case <-c.closing:
			return false
		case <-t.C:
			c.srv.stats.SlowConsumers.Add(1)
			c.Close(wire.CloseSlowConsumer, "client reads too slowly: relayed messages piled up")
			return false
		}
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
	c.writable.Store(true)
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

// writeControl writes a control frame taken from the queue. The caller owns
// the socket.
func (c *Conn) writeControl(f outFrame) bool {
	ok := c.writeFrame(f.op, f.data)
	c.queued.Add(-1)
	return ok
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
		if len(queue) > 0 {
			select {
			case c.space <- struct{}{}: // a relay may be waiting for room
			default:
			}
		}
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
			rest := c.handoffRest
			c.handoffRest = nil // do not keep an old write buffer alive
			return c.write(rest)
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

	c.wbuf = c.appendSnapshot(c.wbuf[:0], f, ack)
	c.writeOwned(c.wbuf)
	return true
}

// sendDirect is Send's fast path: a control message written at once when
// the upgrade is done, nothing is queued for the client (a control frame
// queued earlier must go first) and no one is writing. It reports false,
// having done nothing, when the fast path does not apply.
func (c *Conn) sendDirect(msg []byte) bool {
	if !c.writable.Load() || !c.owner.CompareAndSwap(0, 1) {
		return false
	}
	if c.raw == nil || c.queued.Load() > 0 || c.isClosing() {
		c.disown()
		return false
	}
	c.wbuf = append(wsframe.AppendHeader(c.wbuf[:0], ws.OpBinary, len(msg), nil), msg...)
	c.writeOwned(c.wbuf)
	return true
}

// writeOwned writes frame b on the fast path: the caller owns the socket
// and gives it up here, or hands it, with what the socket did not take,
// to the writer goroutine.
func (c *Conn) writeOwned(b []byte) {
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
