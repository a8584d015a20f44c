package client

import (
	"context"
	"fmt"
	"time"

	"github.com/gobwas/ws"

	"github.com/tickroom/tickroom/netcode/internal/wsframe"
	"github.com/tickroom/tickroom/netcode/wire"
)

// This file holds following redirects: a node that does not host the room
// answers a Join with a wire.Redirect, and the client sends the Join again
// to the node named, on a new connection, and moves to it.
//
// Ownership: a connection being dialed for a redirect belongs to the
// goroutine that follows it (a Join's caller, or the client's goroutine
// when it resumes), which reads it itself, synchronously, until the Join's
// reply. Only then is it handed over: by install on the client's
// goroutine, or by switchTo, under Client.mu, to the client's goroutine
// (Client.handoff), which takes it once the connection it is reading has
// ended.

// followed is where a followed redirect got a seat: the connection, still
// owned by the goroutine that followed it, with its Welcome and URL.
type followed struct {
	conn    *connection
	welcome wire.Welcome
	url     string
	joined  *Joined
}

// follow follows redirect r of join j: it dials r's URL, greets the node
// and sends j there with Hops one higher, and again while the answer is
// another Redirect, up to wire.MaxHops in all. It returns the connection
// that seated the player, for the caller to install or close. The
// connections it leaves behind, and the last one when it fails, are closed
// normally.
func (c *Client) follow(ctx context.Context, j wire.Join, r wire.Redirect) (*followed, error) {
	for {
		if j.Hops >= wire.MaxHops {
			return nil, fmt.Errorf("%w: the join sent with %d hops was redirected again, to node %s at %s",
				ErrTooManyRedirects, j.Hops, r.Node, r.URL)
		}
		j.Hops++
		conn, w, err := c.dial(ctx, r.URL)
		if err != nil {
			return nil, fmt.Errorf("client: follow redirect to node %s: %w", r.Node, err)
		}
		c.stats.Redirects.Add(1)
		c.log.Debug("following redirect", "url", r.URL, "node", r.Node, "hops", j.Hops)
		j.ReqID = c.reqID.Add(1)
		joined, next, err := c.exchange(ctx, conn, j)
		if err != nil {
			c.closeConn(conn, "join failed")
			return nil, fmt.Errorf("client: join at %s (node %s, redirected): %w", r.URL, r.Node, err)
		}
		if next == nil {
			return &followed{conn: conn, welcome: w, url: r.URL, joined: joined}, nil
		}
		c.closeConn(conn, "redirected")
		r = *next
	}
}

// followJoin follows the Redirect r that answered j on from, and switches
// the client to the connection that seats the player. If it cannot, the
// client stays on from.
func (c *Client) followJoin(ctx context.Context, from *connection, j wire.Join, r wire.Redirect) (*Joined, error) {
	f, err := c.follow(ctx, j, r)
	if err != nil {
		return nil, err
	}
	if err := c.switchTo(from, f); err != nil {
		c.closeConn(f.conn, "client moved on") // gives up the seat it took
		return nil, fmt.Errorf("client: switch to %s after a redirect: %w", f.url, err)
	}
	c.log.Info("joined through a redirect", "url", f.url, "room", f.joined.RoomID, "player", f.joined.Player)
	return f.joined, nil
}

// switchTo makes f's connection the client's in place of from, the one
// the Join was redirected on. Requests go to the new connection at once.
// The client's goroutine, which reads from, owns the new one from here:
// switchTo marks from retired and leaves it (a close with 1000); once the
// server's echo (or closeWait) has ended from, the client's goroutine
// finds it retired, which no drop is, and reads Client.handoff instead of
// reconnecting. The check and the marking are under Client.mu, as is the
// client's goroutine's look at retired, so a from that dropped on its own
// either is seen retired or makes switchTo fail. It fails, f.conn staying
// the caller's, when the client is closed or no longer on from: it dropped
// meanwhile and is reconnecting, or another Join switched first.
func (c *Client) switchTo(from *connection, f *followed) error {
	c.mu.Lock()
	conn, err := c.connLocked()
	switch {
	case err != nil:
	case c.closing.Load():
		err = ErrClosed
	case conn != from || c.handoff != nil:
		err = fmt.Errorf("%w: the connection changed while following the redirect", ErrNotConnected)
	}
	if err != nil {
		c.mu.Unlock()
		return err
	}
	from.retired = true
	c.handoff = f.conn
	c.conn, c.welcome, c.host = f.conn, f.welcome, f.url
	c.seat, c.seq = f.joined, 0
	c.mu.Unlock()
	c.leave(from, "redirected")
	return nil
}

// exchange sends j on conn, which the calling goroutine owns and no other
// reads, and reads until its reply: the seat, or a Redirect. What comes
// before the reply (events of an old seat) is stale and dropped; what comes
// after stays buffered for whoever reads conn next. It waits at most
// RequestTimeout, and no longer than ctx allows.
func (c *Client) exchange(ctx context.Context, conn *connection, j wire.Join) (*Joined, *wire.Redirect, error) {
	deadline := time.Now().Add(c.cfg.RequestTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = conn.nc.SetDeadline(deadline)
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		_ = conn.nc.SetDeadline(time.Now()) // cancelled: end the read now
	})
	defer func() {
		if !stop() {
			<-fired // so that its deadline does not land after the reset
		}
		_ = conn.nc.SetDeadline(time.Time{})
		conn.writeDeadline = time.Time{} // the next write sets its own
	}()
	if err := c.writeTo(conn, conn.enc.Join(j)); err != nil {
		return nil, nil, fmt.Errorf("client: send join: %w", err)
	}
	dec := wire.NewDecoder()
	var m wire.ServerMessage
	for {
		op, p, err := conn.rd.Next()
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return nil, nil, fmt.Errorf("client: join: %w: %w", cerr, err)
			}
			return nil, nil, fmt.Errorf("client: join: %w", err)
		}
		c.stats.BytesIn.Add(uint64(wsframe.HeaderLen(len(p)) + len(p)))
		if op == ws.OpClose {
			code, reason, _ := wsframe.ParseClose(p)
			return nil, nil, &CloseError{Code: wire.CloseCode(code), Reason: reason}
		}
		if op != ws.OpBinary || dec.DecodeServer(p, &m) != nil {
			continue
		}
		switch {
		case m.Type == wire.TypeJoined && m.Joined.ReqID == j.ReqID:
			return joinedFrom(&m.Joined), nil, nil
		case m.Type == wire.TypeRedirect && m.Redirect.ReqID == j.ReqID:
			r := m.Redirect
			return nil, &r, nil
		case m.Type == wire.TypeError && m.Error.ReqID == j.ReqID:
			return nil, nil, &wire.ErrorReply{Code: m.Error.Code, Message: m.Error.Message}
		}
	}
}

// closeConn closes a connection that the calling goroutine owns and no
// other reads: a normal close, a wait of at most closeWait for the
// server's echo, then the socket.
func (c *Client) closeConn(conn *connection, reason string) {
	c.leave(conn, reason)
	for {
		op, _, err := conn.rd.Next()
		if err != nil || op == ws.OpClose {
			break
		}
	}
	_ = conn.nc.Close()
}
