package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/gobwas/ws"

	"github.com/tickroom/tickroom/netcode/internal/wsframe"
	"github.com/tickroom/tickroom/netcode/wire"
)

// This file holds the writing side: inputs, requests with their replies
// and timeouts, pings, and the socket writes under the client's lock.

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
	if conn.closeSent {
		return fmt.Errorf("%w: the connection is closing", ErrNotConnected)
	}
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

// errUnexpectedRedirect answers a request other than a Join with a Redirect.
var errUnexpectedRedirect = errors.New("client: the server redirected a request that is not a join")

// request sends a request and waits for its reply, which must not be a
// Redirect.
func (c *Client) request(ctx context.Context, encode func(e *wire.Encoder, id uint32) []byte) (reply, error) {
	r, _, err := c.roundTrip(ctx, encode)
	if err == nil && r.redirect != nil {
		return reply{}, fmt.Errorf("%w (to %s)", errUnexpectedRedirect, r.redirect.URL)
	}
	return r, err
}

// roundTrip sends a request on the current connection, waits for its
// reply and returns it with the connection it came on.
func (c *Client) roundTrip(ctx context.Context, encode func(e *wire.Encoder, id uint32) []byte) (reply, *connection, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.RequestTimeout)
		defer cancel()
	}
	id := c.reqID.Add(1)
	ch := make(chan reply, 1)
	c.mu.Lock()
	conn, err := c.connLocked()
	if err == nil {
		c.pending[id] = waiter{ch: ch, conn: conn}
	}
	c.mu.Unlock()
	if err != nil {
		return reply{}, nil, err
	}
	conn.wmu.Lock()
	err = c.writeLocked(conn, encode(conn.enc, id))
	conn.wmu.Unlock()
	if err != nil {
		c.forget(id)
		return reply{}, nil, err
	}
	select {
	case r := <-ch:
		return r, conn, r.err
	case <-ctx.Done():
		c.forget(id)
		return reply{}, nil, fmt.Errorf("client: request %d: %w", id, ctx.Err())
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

// Join takes a seat in a room. If the server redirects the Join to another
// node, Join follows (see the package doc): it returns the seat that node
// gave, the client being connected to it from then on; or, if the redirect
// could not be followed, an error, the client staying on its connection.
func (c *Client) Join(ctx context.Context, opts JoinOptions) (*Joined, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.RequestTimeout)
		defer cancel()
	}
	// Close ends a redirect this Join follows, as it ends a reconnect.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(c.closeCtx, cancel)()
	j := wire.Join{RoomID: opts.RoomID, Mode: opts.Mode, MaxPlayers: uint32(opts.MaxPlayers)}
	r, conn, err := c.roundTrip(ctx, func(e *wire.Encoder, id uint32) []byte {
		j := j
		j.ReqID = id
		return e.Join(j)
	})
	if err != nil {
		return nil, err
	}
	joined := r.joined
	if r.redirect != nil {
		if joined, err = c.followJoin(ctx, conn, j, *r.redirect); err != nil {
			return nil, err
		}
	} else {
		c.mu.Lock()
		current := c.conn == conn
		if current {
			c.seat = joined
			c.seq = 0
		}
		c.mu.Unlock()
		if !current {
			// A concurrent Join was redirected and moved the client to
			// another node meanwhile: this seat, on the connection left
			// behind, was given up with it.
			return nil, fmt.Errorf("%w: another Join moved the client to another node meanwhile", ErrNotConnected)
		}
	}
	out := *joined
	return &out, nil
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
	conn, err := c.connLocked()
	if err == nil {
		c.pings[key] = waiter{ch: ch, conn: conn}
	}
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	defer func() {
		c.mu.Lock()
		delete(c.pings, key)
		c.mu.Unlock()
	}()
	conn.wmu.Lock()
	err = c.writeLocked(conn, conn.enc.Ping(wire.Ping{ClientTime: key}))
	conn.wmu.Unlock()
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
