package client

import (
	"fmt"
	"time"

	"github.com/gobwas/ws"

	"github.com/tickroom/tickroom/netcode/internal/wsframe"
	"github.com/tickroom/tickroom/netcode/wire"
)

// This file holds the reading side: frames, server messages, replies to
// waiting requests, and snapshots applied to the client's state.

// reply writes a control frame the server asked for (a pong, the close
// echo). A poller hands it to a goroutine: the write may wait for the
// socket (or for another writer) up to WriteTimeout, and the poller reads
// for many clients. The client's goroutine waits for those goroutines
// before it closes the socket.
// After the client sent its own close (leave), nothing is written: the
// server's close is the echo.
func (c *Client) reply(conn *connection, op ws.OpCode, p []byte) error {
	if conn.polled == nil {
		conn.wmu.Lock()
		defer conn.wmu.Unlock()
		if conn.closeSent {
			return nil
		}
		return c.writeFrame(conn, op, p)
	}
	p = append([]byte(nil), p...) // p is the poller's buffer
	conn.writers.Add(1)
	go func() {
		defer conn.writers.Done()
		conn.wmu.Lock()
		defer conn.wmu.Unlock()
		if conn.closeSent {
			return
		}
		if err := c.writeFrame(conn, op, p); err != nil && op != ws.OpClose {
			c.breakConn(conn, err)
		}
	}()
	return nil
}

// readLoop reads one connection until it ends and returns why.
func (c *Client) readLoop(conn *connection) error {
	dec := wire.NewDecoder()
	hb := c.heartbeat()
	for {
		if !c.closing.Load() && !conn.isLeaving() {
			_ = conn.nc.SetReadDeadline(time.Now().Add(hb))
			if conn.isLeaving() {
				// leave set its deadline just now, maybe before this one:
				// its deadline stands.
				_ = conn.nc.SetReadDeadline(conn.leaveBy)
			}
		}
		op, p, err := conn.rd.Next()
		if err != nil {
			return err
		}
		if err := c.onFrame(conn, dec, op, p); err != nil {
			return err
		}
	}
}

// heartbeat is how long the server may stay silent before the connection
// counts as dead: it pings at least that often.
func (c *Client) heartbeat() time.Duration {
	if hb := time.Duration(c.Welcome().HeartbeatMs) * time.Millisecond; hb > 0 {
		return hb
	}
	return 15 * time.Second
}

// onFrame handles one message from the server: it answers a ping, echoes a
// close and returns why the connection ends, and decodes and handles data.
// It runs on whichever goroutine reads conn.
func (c *Client) onFrame(conn *connection, dec *wire.Decoder, op ws.OpCode, p []byte) error {
	c.stats.BytesIn.Add(uint64(wsframe.HeaderLen(len(p)) + len(p))) // wire bytes, as sent unmasked
	switch op {
	case ws.OpPing:
		return c.reply(conn, ws.OpPong, p)
	case ws.OpClose:
		code, reason, _ := wsframe.ParseClose(p)
		_ = c.reply(conn, ws.OpClose, p[:min(len(p), 2)])
		if code == 1005 {
			code = uint16(wire.CloseNormal)
		}
		return &CloseError{Code: wire.CloseCode(code), Reason: reason}
	case ws.OpBinary:
	default:
		return nil
	}
	m := &c.snapMsg
	if err := dec.DecodeServer(p, m); err != nil {
		c.log.Warn("undecodable server message", "err", err)
		return nil
	}
	return c.handle(m, len(p))
}

func (c *Client) handle(m *wire.ServerMessage, size int) error {
	switch m.Type {
	case wire.TypeSnapshot:
		return c.applySnapshot(&m.Snapshot, size)
	case wire.TypeJoined:
		c.deliver(m.Joined.ReqID, reply{joined: joinedFrom(&m.Joined)})
	case wire.TypeOK:
		c.deliver(m.OK.ReqID, reply{})
	case wire.TypeRedirect:
		r := m.Redirect
		if !c.deliver(r.ReqID, reply{redirect: &r}) {
			c.log.Warn("redirect for no waiting join", "req", r.ReqID, "url", r.URL, "node", r.Node)
		}
	case wire.TypeError:
		err := &wire.ErrorReply{Code: m.Error.Code, Message: m.Error.Message}
		if m.Error.ReqID == 0 || !c.deliver(m.Error.ReqID, reply{err: err}) {
			c.emit(Event{Kind: EventError, Err: err})
		}
	case wire.TypePong:
		c.mu.Lock()
		w, ok := c.pings[m.Pong.ClientTime]
		if ok {
			w.ch <- reply{pong: m.Pong}
			delete(c.pings, m.Pong.ClientTime)
		}
		c.mu.Unlock()
		if !ok && c.cfg.OnPong != nil {
			// A SendPing: ClientTime is when it was sent, in Unix ns.
			c.cfg.OnPong(time.Duration(time.Now().UnixNano() - m.Pong.ClientTime))
		}
	case wire.TypePlayerJoined:
		c.emit(Event{Kind: EventPlayerJoined, Player: m.PlayerJoined.Player})
	case wire.TypePlayerLeft:
		c.emit(Event{Kind: EventPlayerLeft, Player: m.PlayerLeft.Player, Reason: m.PlayerLeft.Reason})
	case wire.TypeRoomEvent:
		c.emit(Event{Kind: EventRoomMessage, From: m.RoomEvent.From, Payload: append([]byte(nil), m.RoomEvent.Payload...)})
	case wire.TypeRoomMoved:
		mv := m.RoomMoved
		c.mu.Lock()
		seated := c.seat != nil && c.seat.RoomID == mv.RoomID
		if seated {
			c.moved = &mv
		}
		c.mu.Unlock()
		if !seated {
			c.log.Warn("RoomMoved for a room this client is not seated in", "room", mv.RoomID)
			return nil
		}
		return errRoomMoved // ends this connection: run follows the room
	case wire.TypeRoomClosed:
		c.mu.Lock()
		c.seat = nil
		c.mu.Unlock()
		c.emit(Event{Kind: EventRoomClosed, Reason: m.RoomClosed.Reason})
	}
	return nil
}

func (c *Client) deliver(id uint32, r reply) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	w, ok := c.pending[id]
	if ok {
		w.ch <- r
		delete(c.pending, id)
	}
	return ok
}

// applySnapshot applies s to the current state. A delta against a tick the
// client does not hold means the stream is broken: the connection is
// dropped, and the resume starts over with a full snapshot.
func (c *Client) applySnapshot(s *wire.Snapshot, size int) error {
	if !s.Full() && s.Base != c.state.Tick {
		return fmt.Errorf("%w: delta against tick %d, client holds %d", wire.ErrBadDelta, s.Base, c.state.Tick)
	}
	// Only this goroutine writes c.state, so it may read it unlocked.
	next, err := s.Apply(c.spare, c.state.Entities)
	if err != nil {
		return err
	}
	c.stateMu.Lock()
	c.spare = c.state.Entities
	c.state = Snapshot{
		Tick:       s.Tick,
		Base:       s.Base,
		Ack:        s.Ack,
		ServerTime: s.ServerTime,
		Paused:     s.Flags&wire.FlagPaused != 0,
		Size:       size,
		Entities:   next,
	}
	c.stateMu.Unlock()
	c.stats.Snapshots.Add(1)
	if c.cfg.OnSnapshot != nil {
		c.cfg.OnSnapshot(&c.state)
	}
	return nil
}
