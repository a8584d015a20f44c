package client

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

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
// It dials the current host first; each time a dial fails, the next
// attempt dials the next of the URL given to Dial and the seeds, in turn.
func (c *Client) reconnect(seat *Joined) (*connection, error) {
	rc := c.cfg.Reconnect
	c.mu.Lock()
	urls := reconnectURLs(c.host, c.url, c.cfg.Seeds)
	c.mu.Unlock()
	next := 0
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
		url := urls[next]
		conn, w, err := c.dial(c.closeCtx, url)
		if errors.Is(err, ErrPollerClosed) {
			return nil, err
		}
		if err != nil {
			last = err
			next = (next + 1) % len(urls)
			c.log.Debug("reconnect attempt failed", "attempt", attempt+1, "url", url, "err", err)
			continue
		}
		if seat == nil {
			c.install(conn, w, url)
			return conn, nil
		}
		f, err := c.resume(conn, w, url, seat.Token)
		if err != nil {
			var er *wire.ErrorReply
			if errors.As(err, &er) && (er.Code == wire.CodeBadToken || er.Code == wire.CodeRoomNotFound) {
				return nil, fmt.Errorf("client: seat lost: %w", err)
			}
			// Anything else is worth another try, after the backoff:
			// wire.CodeRoomMoving says the room is between hosts.
			last = err
			c.log.Debug("resume attempt failed", "attempt", attempt+1, "url", url, "err", err)
			continue
		}
		c.install(f.conn, f.welcome, f.url)
		c.mu.Lock()
		c.seat = f.joined
		c.mu.Unlock()
		c.stats.Resumes.Add(1)
		c.log.Info("seat resumed", "room", f.joined.RoomID, "player", f.joined.Player, "url", f.url)
		c.emit(Event{Kind: EventResumed, Player: f.joined.Player})
		return f.conn, nil
	}
	return nil, fmt.Errorf("client: reconnect gave up after %d attempts: %w", rc.Attempts, last)
}

// reconnectURLs lists where a reconnect dials, in order: the current host,
// the URL given to Dial, the seeds; each once.
func reconnectURLs(host, dialed string, seeds []string) []string {
	urls := make([]string, 0, 2+len(seeds))
	for _, u := range append([]string{host, dialed}, seeds...) {
		if u != "" && !slices.Contains(urls, u) {
			urls = append(urls, u)
		}
	}
	return urls
}

// resume sends a Join with the token on conn, a fresh connection to url
// that the client's goroutine owns, before it is handed to the read loop,
// and reads until its reply. A Redirect is followed: conn is closed, and
// the seat resumed on the redirect's target. On failure the connection is
// closed.
func (c *Client) resume(conn *connection, w wire.Welcome, url, token string) (*followed, error) {
	j := wire.Join{ReqID: c.reqID.Add(1), Token: token}
	ctx := c.closeCtx
	joined, r, err := c.exchange(ctx, conn, j)
	switch {
	case err != nil:
		c.closeConn(conn, "resume failed")
		return nil, err
	case r == nil:
		return &followed{conn: conn, welcome: w, url: url, joined: joined}, nil
	}
	c.closeConn(conn, "redirected")
	return c.follow(ctx, j, *r)
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
