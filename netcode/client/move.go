package client

import (
	"errors"
	"fmt"
	"time"

	"github.com/tickroom/tickroom/netcode/wire"
)

// This file holds following a room that moved to another node (RoomMoved):
// the client dials the node it names at once, without backoff, and
// resumes its seat there.

// errRoomMoved ends a connection whose room moved: run follows it.
var errRoomMoved = errors.New("client: the room moved to another node")

// moveAttempts bounds the resumes of a move that the target answers with
// room_moving (it is still restoring the room), moveRetry apart.
const (
	moveAttempts = 10
	moveRetry    = 30 * time.Millisecond
)

// followMove resumes the seat where mv says, then through the dialed URL
// and the seeds, each at once; an error leaves the normal reconnect
// (with backoff) to the caller.
func (c *Client) followMove(mv *wire.RoomMoved) (*connection, error) {
	if mv == nil {
		return nil, errors.New("client: no move to follow")
	}
	c.mu.Lock()
	targets := reconnectURLs(mv.URL, c.url, c.cfg.Seeds)
	c.mu.Unlock()
	var last error
	for _, url := range targets {
		for range moveAttempts {
			conn, w, err := c.dial(c.closeCtx, url)
			if err != nil {
				last = err
				break // the next URL
			}
			f, err := c.resume(conn, w, url, mv.Token)
			var er *wire.ErrorReply
			if errors.As(err, &er) && er.Code == wire.CodeRoomMoving {
				last = err
				select {
				case <-time.After(moveRetry):
					continue
				case <-c.closeCh:
					return nil, ErrClosed
				}
			}
			if err != nil {
				last = err
				break
			}
			c.install(f.conn, f.welcome, f.url)
			c.mu.Lock()
			c.seat = f.joined
			c.mu.Unlock()
			c.stats.Moves.Add(1)
			c.log.Info("seat followed its room", "room", f.joined.RoomID, "node", mv.Node, "url", f.url, "epoch", mv.Epoch)
			c.emit(Event{Kind: EventMoved, Player: f.joined.Player, Reason: mv.Node})
			return f.conn, nil
		}
		if c.closing.Load() {
			return nil, ErrClosed
		}
	}
	return nil, fmt.Errorf("client: follow the room to %s: %w", mv.Node, last)
}
