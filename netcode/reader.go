package netcode

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/gobwas/ws"

	"github.com/tickroom/tickroom/netcode/internal/wsframe"
	"github.com/tickroom/tickroom/netcode/wire"
)

// This file holds a connection's reading side: the handshake, the reader
// goroutine's loop, the poller's frame parsing and hand-off of requests,
// frame-level handling (ping, pong, close) and read errors.

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
		c.end(&CloseError{Code: closeAbnormal, Reason: "connection lost", ByPeer: true}, nil)
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
	if c.isClosing() {
		return false // the Welcome's write failed: the peer is gone
	}
	c.lastDeadline = time.Now()
	_ = c.nc.SetReadDeadline(c.srv.heartbeatDeadline(c.lastDeadline))
	c.client = ds.msg.Hello.Client
	c.logger().Info("connection opened")
	return true
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
