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

// This file holds reconnecting after a drop: backoff with jitter, and
// resuming the seat with its reconnect token.

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
