package netcode

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/tickroom/tickroom/netcode/wire"
)

// This file holds the dispatch of decoded client messages to the Session:
// inputs, pings and requests, each with exactly one reply where one is due.

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
	if r := c.relay.Load(); r != nil {
		if !r.forward(p) {
			return dispatchClose
		}
		return dispatchDone
	}
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
	if t := c.redirectTimer.Swap(nil); t != nil {
		t.Stop() // the client stays: it did not follow, or could not
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
		var re *RedirectError
		if errors.As(err, &re) {
			c.redirect(reqID, re)
			return
		}
		var rl *RelayError
		if errors.As(err, &rl) {
			c.startRelay(reqID, m.Join, rl)
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

// redirect answers a join with a Redirect, and closes the connection
// RedirectGrace later unless the client, which now dials the other node,
// closes it first.
func (c *Conn) redirect(reqID uint32, re *RedirectError) {
	if len(re.URL) > wire.MaxURLLength || len(re.Node) > wire.MaxIDLength {
		c.replyError(reqID, wire.CodeInternal, "the room's node has an address too long to redirect to")
		return
	}
	c.srv.stats.Redirects.Add(1)
	c.sendEncoded(func(e *wire.Encoder) []byte {
		return e.Redirect(wire.Redirect{ReqID: reqID, URL: re.URL, Node: re.Node})
	})
	t := time.AfterFunc(c.srv.cfg.RedirectGrace, func() {
		c.Close(wire.CloseGoingAway, "redirected to node "+re.Node)
	})
	c.redirectTimer.Store(t) // request stopped any earlier one
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
