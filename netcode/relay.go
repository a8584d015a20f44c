package netcode

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/tickroom/tickroom/netcode/internal/wsframe"
	"github.com/tickroom/tickroom/netcode/wire"
)

// This file holds the relay: a connection whose join another node serves
// is relayed, frame by frame and unchanged, to that node, for clients
// that can reach only one (load-balanced) address. The client speaks to
// this node's WebSocket (heartbeats, rate limits and close codes stay
// this node's), and every application message goes through untouched in
// both directions, so the room's deltas stay valid.
//
// Goroutines: a relay owns two, started when the upstream accepted the
// join: the upstream reader, which hands every message to the client's
// connection (waiting while its control queue is full, so that a client
// that does not read stops the reading upstream, and the room's own
// slow-consumer rule, newest snapshot wins, protects the rest), and the
// upstream writer, which sends what the client sent. The connection's
// finish stops both and waits for them.

// RelayError answers a Join by relaying the connection to another node.
// Session.Join returns one, made by Relay.
type RelayError struct {
	URL  string // the node's game endpoint, ws:// or wss://
	Node string // the node's name, for logs
}

func (e *RelayError) Error() string {
	return fmt.Sprintf("netcode: join relayed to node %s at %s", e.Node, e.URL)
}

// Relay returns the error with which Session.Join relays the connection
// to the node at url: netcode dials it, sends it the join (Hops one
// higher) and from then on relays every message both ways; the Session
// sees no more of the connection's messages.
func Relay(url, node string) error { return &RelayError{URL: url, Node: node} }

// relayQueue bounds the client's messages waiting for the upstream: a
// second of inputs and a few requests. Beyond it the upstream is not
// keeping up, and the client is closed as for a full control queue.
const relayQueue = 64

type relay struct {
	c    *Conn
	up   net.Conn
	rd   *wsframe.Reader
	out  chan outFrame // to the upstream, masked by the writer
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup
	torn atomic.Bool // a write to the upstream failed, perhaps part-way
	// closeBy bounds the writes after close: set before stop is closed,
	// read by the writer only after it sees stop.
	closeBy time.Time
}

// startRelay dials the node re names, shakes hands, sends it the join and
// starts relaying; the upstream's reply (Joined, Error, or a Redirect of
// its own) reaches the client as every later message does. It runs on the
// goroutine answering the request, which may block.
func (c *Conn) startRelay(reqID uint32, join wire.Join, re *RelayError) {
	if c.isClosing() {
		return // no player to seat on the host
	}
	up, rd, err := c.dialUpstream(re.URL)
	if err == nil && c.isClosing() {
		_ = up.Close() // the client went during the handshake: seat no one
		return
	}
	if err != nil {
		c.logger().Warn("cannot relay to the room's node", "node", re.Node, "url", re.URL, "err", err)
		c.replyError(reqID, wire.CodeRoomMoving, "the room's node cannot be reached just now; join again in a moment")
		return
	}
	r := &relay{c: c, up: up, rd: rd, out: make(chan outFrame, relayQueue), stop: make(chan struct{})}
	join.ReqID = reqID
	join.Hops++
	e := c.srv.encoders.Get().(*wire.Encoder)
	msg := append([]byte(nil), e.Join(join)...)
	c.srv.encoders.Put(e)
	r.out <- outFrame{op: ws.OpBinary, data: msg}
	c.srv.stats.Relayed.Add(1)
	r.wg.Add(2)
	go r.readUpstream()
	go r.writeUpstream()
	c.relay.Store(r)
	c.logger().Info("connection relayed", "node", re.Node, "url", re.URL)
}

// dialUpstream opens the WebSocket to url and does the Hello and
// Welcome, whose answer only this node needed.
func (c *Conn) dialUpstream(url string) (net.Conn, *wsframe.Reader, error) {
	cfg := &c.srv.cfg
	ctx, cancel := context.WithTimeout(context.Background(), cfg.HandshakeTimeout)
	var mu sync.Mutex
	var upstream net.Conn // set once dialled, for the watcher below
	watched := make(chan struct{})
	defer func() {
		cancel()
		<-watched // the watcher ends with this function
	}()
	go func() { // the dial and the handshake end early if the client goes
		defer close(watched)
		select {
		case <-c.closing:
			cancel()
			mu.Lock()
			if upstream != nil {
				_ = upstream.SetDeadline(time.Now())
			}
			mu.Unlock()
		case <-ctx.Done():
		}
	}()
	up, br, _, err := ws.Dialer{}.Dial(ctx, url)
	if err != nil {
		return nil, nil, fmt.Errorf("dial: %w", err)
	}
	if tc, ok := up.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	deadline, _ := ctx.Deadline()
	_ = up.SetDeadline(deadline)
	mu.Lock()
	upstream = up // the watcher may cut the handshake short from now on
	mu.Unlock()
	if br == nil {
		br = bufio.NewReaderSize(up, 4096)
	}
	rd := wsframe.NewReader(br, relayMaxMessage, false)
	fail := func(err error) (net.Conn, *wsframe.Reader, error) {
		_ = up.Close()
		return nil, nil, err
	}
	e := c.srv.encoders.Get().(*wire.Encoder)
	hello := append([]byte(nil), e.Hello(wire.Hello{Version: wire.Version, Client: "relay/" + c.client})...)
	c.srv.encoders.Put(e)
	if err := writeMasked(up, ws.OpBinary, hello); err != nil {
		return fail(fmt.Errorf("hello: %w", err))
	}
	dec := wire.NewDecoder()
	var m wire.ServerMessage
	for {
		op, p, err := rd.Next()
		if err != nil {
			return fail(fmt.Errorf("handshake: %w", err))
		}
		if op == ws.OpClose {
			code, reason, _ := wsframe.ParseClose(p)
			return fail(fmt.Errorf("handshake: closed: %d %s", code, reason))
		}
		if op != ws.OpBinary || dec.DecodeServer(p, &m) != nil || m.Type != wire.TypeWelcome {
			continue
		}
		_ = up.SetDeadline(time.Time{})
		return up, rd, nil
	}
}

// relayMaxMessage bounds a message from the upstream. A host's messages
// are small (a full snapshot of a 256-seat room is a few KB, a room event
// at most MaxRoomMessage), so a slow client's relay holds ControlQueue of
// them, tens of KB; this bound only stops a broken host.
const relayMaxMessage = 1 << 20

// forward queues a message from the client for the upstream, without
// blocking the reader (a poller serves many connections). It reports false
// if the connection must close.
func (r *relay) forward(p []byte) bool {
	msg := append([]byte(nil), p...)
	if isJoin(p) {
		msg = r.countHop(msg)
	}
	select {
	case r.out <- outFrame{op: ws.OpBinary, data: msg}:
		return true
	default:
		r.c.srv.stats.SlowConsumers.Add(1)
		r.c.Close(wire.CloseInternalError, "the room's node does not keep up")
		return false
	}
}

// isJoin reports whether p looks like a Join: a small array whose first
// element is the Join type. Inputs, the common case, are told apart by
// their second byte alone.
func isJoin(p []byte) bool {
	return len(p) >= 2 && p[0]&0xf0 == 0x90 && p[1] == byte(wire.TypeJoin)
}

// countHop re-encodes a Join the client sends through the relay with its
// hops one higher, so that the hop limit holds however the join travels.
// A message that does not decode goes as it is: the host answers it.
func (r *relay) countHop(msg []byte) []byte {
	var m wire.ClientMessage
	dec := wire.NewDecoder()
	if dec.DecodeClient(msg, &m) != nil || m.Type != wire.TypeJoin {
		return msg
	}
	m.Join.Hops++
	e := r.c.srv.encoders.Get().(*wire.Encoder)
	out := append([]byte(nil), e.Join(m.Join)...)
	r.c.srv.encoders.Put(e)
	return out
}

// readUpstream hands the upstream's messages to the client, in order.
func (r *relay) readUpstream() {
	defer r.wg.Done()
	c := r.c
	for {
		// A host that goes silent without closing (its machine gone) is
		// noticed as the client's own server would notice a client: it
		// pings every PingInterval, so nothing for HeartbeatTimeout is
		// dead.
		_ = r.up.SetReadDeadline(time.Now().Add(c.srv.cfg.HeartbeatTimeout))
		select {
		case <-r.stop:
			return // close's wake-up may have come before this deadline
		default:
		}
		op, p, err := r.rd.Next()
		if err != nil {
			select {
			case <-r.stop: // our own close
			default:
				c.Close(wire.CloseGoingAway, "the room's node went away")
			}
			return
		}
		switch op {
		case ws.OpBinary:
			if !c.sendWait(append([]byte(nil), p...), c.srv.cfg.WriteTimeout) {
				return
			}
		case ws.OpPing:
			select {
			case r.out <- outFrame{op: ws.OpPong, data: append([]byte(nil), p...)}:
			default: // a pong less: the upstream's heartbeat tolerates it
			}
		case ws.OpClose:
			code, reason, _ := wsframe.ParseClose(p)
			cc := echoCode(code)
			if cc == wire.CloseProtocolError && code != uint16(wire.CloseProtocolError) {
				cc = wire.CloseGoingAway // a code that may not be sent on
			}
			c.Close(cc, reason)
			return
		}
		r.rd.Release(4096)
	}
}

// writeUpstream sends the client's messages to the upstream, masked as a
// client's must be.
func (r *relay) writeUpstream() {
	defer r.wg.Done()
	write := func(f outFrame, deadline time.Time) bool {
		_ = r.up.SetWriteDeadline(deadline)
		if err := writeMasked(r.up, f.op, f.data); err != nil {
			r.torn.Store(true) // perhaps part of the frame went
			r.c.Close(wire.CloseGoingAway, "the room's node went away")
			return false
		}
		return true
	}
	for {
		select {
		case f := <-r.out:
			if !write(f, time.Now().Add(r.c.srv.cfg.WriteTimeout)) {
				return
			}
		case <-r.stop:
			// What the client sent before it went still goes, within
			// CloseGrace (close set that deadline); then close's frame.
			for {
				select {
				case f := <-r.out:
					if !write(f, r.closeBy) {
						return
					}
				default:
					return
				}
			}
		}
	}
}

// close ends the relay: a close frame to the upstream with the client's
// code, then the socket; it waits for the relay's goroutines.
func (r *relay) close() {
	r.once.Do(func() {
		r.closeBy = time.Now().Add(r.c.srv.cfg.CloseGrace)
		close(r.stop)
		_ = r.up.SetReadDeadline(time.Now()) // wakes the reader; it sees stop
		_ = r.up.SetWriteDeadline(r.closeBy) // bounds a writer stuck on a full upstream
		r.wg.Wait()                          // the writer is gone: a close frame is the last write
		if r.torn.Load() {
			_ = r.up.Close() // a frame was cut short: a close frame would be garbage
			return
		}
		// Only a client that said goodbye says goodbye to the host: a
		// client that dropped, timed out or was too slow must look
		// dropped there too (no close frame), so that its seat is held.
		var ce *CloseError
		if cause, _ := r.c.endCause(); errors.As(cause, &ce) && ce.ByPeer && ce.Code != closeAbnormal {
			code := echoCode(uint16(ce.Code))
			_ = r.up.SetWriteDeadline(time.Now().Add(r.c.srv.cfg.CloseGrace))
			_ = writeMasked(r.up, ws.OpClose, wsframe.CloseBody(uint16(code), ce.Reason))
		}
		_ = r.up.Close()
	})
}

// writeMasked writes one masked frame (a client's frames are masked).
func writeMasked(w net.Conn, op ws.OpCode, p []byte) error {
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	b := wsframe.AppendHeader(make([]byte, 0, 14+len(p)), op, len(p), &mask)
	start := len(b)
	b = append(b, p...)
	wsframe.MaskPayload(b[start:], mask)
	_, err := w.Write(b)
	return err
}
