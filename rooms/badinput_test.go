package rooms_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/tickroom/tickroom/netcode"
	"github.com/tickroom/tickroom/netcode/client"
	"github.com/tickroom/tickroom/netcode/netcodetest"
	"github.com/tickroom/tickroom/netcode/wire"
	"github.com/tickroom/tickroom/rooms"
	"github.com/tickroom/tickroom/rooms/roomstest"
	"github.com/tickroom/tickroom/sim"
)

// badInputConfig is roomstest's configuration (1 s heartbeat) with the
// limits the bad-input cases probe squeezed: a low input rate and a short
// handshake timeout.
func badInputConfig() (netcode.ServerConfig, rooms.Config) {
	n, r := roomstest.Config()
	n.HandshakeTimeout = time.Second
	n.InputRate = 10
	n.InputBurst = 5
	return n, r
}

// bystander is a well-behaved player on the server under attack, joined to a
// public arena room. After the attack it must not have noticed anything.
type bystander struct {
	c    *client.Client
	seat *client.Joined
}

func newBystander(t testing.TB, url string) *bystander {
	t.Helper()
	c, err := client.Dial(context.Background(), url, client.DefaultConfig())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	seat, err := c.Join(context.Background(), client.JoinOptions{Mode: sim.ArenaMode})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return c.State().Tick > 0 }, 5*time.Second, 10*time.Millisecond,
		"the bystander receives snapshots")
	return &bystander{c: c, seat: seat}
}

// requireUnaffected checks that the bystander is still connected, never
// dropped, got no events but the allowed kinds, still answers pings, and
// still receives snapshots of a ticking room.
func (b *bystander) requireUnaffected(t testing.TB, allowed ...client.EventKind) {
	t.Helper()
	for drained := false; !drained; {
		select {
		case e := <-b.c.Events():
			require.Contains(t, allowed, e.Kind, "the bystander noticed something: event %+v", e)
		default:
			drained = true
		}
	}
	require.Zero(t, b.c.Stats().Drops.Load(), "the bystander's connection dropped")
	require.Zero(t, b.c.Stats().EventsDropped.Load())
	require.NoError(t, b.c.Err(), "the bystander's client closed")
	seat := b.c.Seat()
	require.NotNil(t, seat, "the bystander lost its seat")
	require.Equal(t, b.seat.RoomID, seat.RoomID)
	require.Equal(t, b.seat.Player, seat.Player)
	_, err := b.c.Ping(context.Background())
	require.NoError(t, err)
	tick := b.c.State().Tick
	require.Eventually(t, func() bool { return b.c.State().Tick >= tick+10 }, 5*time.Second, 10*time.Millisecond,
		"the bystander's snapshots keep coming")
}

// msgpackArray encodes fields as one MessagePack array, the shape of every
// message, so that tests can send fields of any type.
func msgpackArray(t testing.TB, fields ...any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(fields)
	require.NoError(t, err)
	return b
}

// msgpackValue encodes one MessagePack value, for input and room message
// payloads.
func msgpackValue(t testing.TB, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	require.NoError(t, err)
	return b
}

// writeWSFrame writes a frame built with gobwas/ws: RawConn.SendFrame only
// writes final, masked frames without reserved bits.
func writeWSFrame(t testing.TB, c *netcodetest.RawConn, f ws.Frame) {
	t.Helper()
	require.NoError(t, c.NC.SetWriteDeadline(time.Now().Add(5*time.Second)))
	require.NoError(t, ws.WriteFrame(c.NC, f))
}

// maskedFrame is a client frame with any fin bit.
func maskedFrame(op ws.OpCode, fin bool, payload []byte) ws.Frame {
	return ws.MaskFrame(ws.NewFrame(op, fin, payload))
}

// requireUsable checks that c still works: a Ping gets its Pong. Errors of
// the tolerated codes may come first.
func requireUsable(t testing.TB, c *netcodetest.RawConn, tolerate ...wire.ErrorCode) {
	t.Helper()
	c.Send(c.Enc.Ping(wire.Ping{ClientTime: 42}))
	for {
		m := c.Next(true)
		if m.Type == wire.TypeError && slices.Contains(tolerate, m.Error.Code) {
			continue
		}
		require.Equal(t, wire.TypePong, m.Type, "want the Pong, got %+v", *m)
		require.Equal(t, int64(42), m.Pong.ClientTime)
		return
	}
}

// readCloseIgnoringPings reads frames straight from c's socket until the
// server's close frame and returns its code, answering nothing: RawConn's
// reads answer pings, which a dead client would not. (Reading past RawConn's
// own reader could only miss frames the server sent before the test's last
// RawConn read; the close frame comes long after.)
func readCloseIgnoringPings(t testing.TB, c *netcodetest.RawConn, timeout time.Duration) (wire.CloseCode, error) {
	t.Helper()
	require.NoError(t, c.NC.SetReadDeadline(time.Now().Add(timeout)))
	for {
		h, err := ws.ReadHeader(c.NC)
		if err != nil {
			return 0, err
		}
		if h.Length > 1<<20 {
			return 0, fmt.Errorf("frame of %d bytes", h.Length)
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(c.NC, p); err != nil {
			return 0, err
		}
		if h.Masked {
			ws.Cipher(p, h.Mask, 0)
		}
		if h.OpCode == ws.OpClose {
			code, _ := ws.ParseCloseFrameData(p)
			return wire.CloseCode(code), nil
		}
	}
}

// badInputEnv is what the cases share.
type badInputEnv struct {
	srv       *roomstest.Server
	ncfg      netcode.ServerConfig
	rcfg      rooms.Config
	bystander *bystander
}

// joinPrivate creates a private arena room and seats c in it, so that a case
// that needs a seat does not share the bystander's room.
func (env *badInputEnv) joinPrivate(t testing.TB, c *netcodetest.RawConn, opts rooms.RoomOptions) *rooms.Room {
	t.Helper()
	opts.Mode, opts.Private = sim.ArenaMode, true
	room, err := env.srv.Registry.Create(opts)
	require.NoError(t, err)
	c.Send(c.Enc.Join(wire.Join{ReqID: 1, RoomID: room.ID()}))
	m := c.Expect(wire.TypeJoined)
	require.Equal(t, uint32(1), m.Joined.ReqID)
	require.Equal(t, room.ID(), m.Joined.RoomID)
	return room
}

// badInputCase is one kind of misbehaviour and the server's answer to it.
type badInputCase struct {
	name  string
	hello bool // complete the handshake before send
	setup func(t *testing.T, env *badInputEnv, c *netcodetest.RawConn)
	send  func(t *testing.T, env *badInputEnv, c *netcodetest.RawConn)

	// The answer: an Error with wantErr and wantReqID (if wantErr is set),
	// then a close with wantClose (if set); without a close the connection
	// must stay usable.
	wantErr   wire.ErrorCode
	wantReqID uint32
	wantClose wire.CloseCode
	tolerate  []wire.ErrorCode // errors that may precede the usability check's Pong
	// check, if set, replaces the checks above.
	check func(t *testing.T, env *badInputEnv, c *netcodetest.RawConn)
}

func sendBytes(b ...byte) func(*testing.T, *badInputEnv, *netcodetest.RawConn) {
	return func(_ *testing.T, _ *badInputEnv, c *netcodetest.RawConn) { c.Send(b) }
}

func sendFields(fields ...any) func(*testing.T, *badInputEnv, *netcodetest.RawConn) {
	return func(t *testing.T, _ *badInputEnv, c *netcodetest.RawConn) { c.Send(msgpackArray(t, fields...)) }
}

func sendJoin(j wire.Join) func(*testing.T, *badInputEnv, *netcodetest.RawConn) {
	return func(_ *testing.T, _ *badInputEnv, c *netcodetest.RawConn) { c.Send(c.Enc.Join(j)) }
}

func seatedInPrivateRoom(t *testing.T, env *badInputEnv, c *netcodetest.RawConn) {
	t.Helper()
	env.joinPrivate(t, c, rooms.RoomOptions{})
}

func badInputCases() []badInputCase {
	return []badInputCase{
		// Before the Hello.
		{
			name:      "first message is a Join",
			send:      sendJoin(wire.Join{ReqID: 1, Mode: sim.ArenaMode}),
			wantClose: wire.CloseProtocolError,
		},
		{
			name: "first message is a Ping",
			send: func(_ *testing.T, _ *badInputEnv, c *netcodetest.RawConn) {
				c.Send(c.Enc.Ping(wire.Ping{ClientTime: 1}))
			},
			wantClose: wire.CloseProtocolError,
		},
		{
			name:      "garbage before the Hello",
			send:      sendBytes(0xc1, 0xc1, 0xc1),
			wantClose: wire.CloseInvalidPayload,
		},
		{
			name:      "a Hello with a string version",
			send:      sendFields(wire.TypeHello, "1", "x"),
			wantClose: wire.CloseProtocolError,
		},
		{
			name: "a Hello with an unsupported version",
			send: func(_ *testing.T, _ *badInputEnv, c *netcodetest.RawConn) {
				c.Send(c.Enc.Hello(wire.Hello{Version: wire.Version + 1, Client: "from the future"}))
			},
			wantErr:   wire.CodeUnsupportedVersion,
			wantClose: wire.CloseUnsupportedVersion,
		},
		{
			name: "a text frame before the Hello",
			send: func(_ *testing.T, _ *badInputEnv, c *netcodetest.RawConn) {
				c.SendFrame(ws.OpText, []byte(`{"type":"hello"}`))
			},
			wantClose: wire.CloseUnsupportedData,
		},
		{
			name: "no Hello within the handshake timeout, pings unanswered",
			check: func(t *testing.T, env *badInputEnv, c *netcodetest.RawConn) {
				code, err := readCloseIgnoringPings(t, c, env.ncfg.HandshakeTimeout+2*time.Second)
				require.NoError(t, err, "want a close frame")
				require.Equal(t, wire.CloseHandshakeTimeout, code,
					"4005 means no Hello within the handshake timeout; 4000 is the heartbeat timeout")
			},
		},
		{
			name: "no Hello within the handshake timeout, pings answered",
			check: func(t *testing.T, env *badInputEnv, c *netcodetest.RawConn) {
				// ReadClose answers the server's pings: a client that keeps
				// the connection alive must still say Hello in time.
				code, _, err := c.ReadClose(env.ncfg.HandshakeTimeout + time.Second)
				require.NoError(t, err, "no close within the handshake timeout and a second")
				require.Equal(t, wire.CloseHandshakeTimeout, code)
			},
		},

		// Malformed messages after the Hello.
		{
			name:      "0xc1, never used in MessagePack",
			hello:     true,
			send:      sendBytes(0xc1),
			wantClose: wire.CloseInvalidPayload,
		},
		{
			name:  "a MessagePack string instead of an array",
			hello: true,
			send: func(t *testing.T, _ *badInputEnv, c *netcodetest.RawConn) {
				c.Send(msgpackValue(t, "join arena please"))
			},
			wantClose: wire.CloseInvalidPayload,
		},
		{
			name:      "an empty array",
			hello:     true,
			send:      sendBytes(0x90),
			wantClose: wire.CloseInvalidPayload,
		},
		{
			name:      "an empty frame",
			hello:     true,
			send:      sendBytes(),
			wantClose: wire.CloseInvalidPayload,
		},
		{
			name:      "a type beyond 255",
			hello:     true,
			send:      sendFields(300, 1),
			wantClose: wire.CloseInvalidPayload,
		},
		{
			name:  "bytes after the message array",
			hello: true,
			send: func(_ *testing.T, _ *badInputEnv, c *netcodetest.RawConn) {
				c.Send(append(c.Enc.Ping(wire.Ping{ClientTime: 1}), 0x00))
			},
			wantClose: wire.CloseInvalidPayload,
		},
		{
			// Truncation inside a known message's fields is reported as a
			// bad field, so the request id read so far is echoed.
			name:      "a Join cut short after its request id",
			hello:     true,
			send:      sendBytes(0x95, byte(wire.TypeJoin), 7),
			wantErr:   wire.CodeBadRequest,
			wantReqID: 7,
		},
		// Well-formed messages the server does not take.
		{
			name:    "unknown message type",
			hello:   true,
			send:    sendFields(99, 1),
			wantErr: wire.CodeUnknownType,
		},
		{
			name:    "a server-to-client message type",
			hello:   true,
			send:    sendFields(wire.TypeWelcome, 1, 60, 0, 4096, 1000),
			wantErr: wire.CodeUnknownType,
		},
		{
			name:  "a second Hello",
			hello: true,
			send: func(_ *testing.T, _ *badInputEnv, c *netcodetest.RawConn) {
				c.Send(c.Enc.Hello(wire.Hello{Version: wire.Version}))
			},
			wantErr: wire.CodeBadRequest,
		},
		{
			name:    "a Join with a string request id",
			hello:   true,
			send:    sendFields(wire.TypeJoin, "7", "", sim.ArenaMode, ""),
			wantErr: wire.CodeBadRequest,
		},
		{
			name:      "a Join with an int room id",
			hello:     true,
			send:      sendFields(wire.TypeJoin, 7, 123, "", ""),
			wantErr:   wire.CodeBadRequest,
			wantReqID: 7,
		},
		{
			name:      "a Join with missing fields",
			hello:     true,
			send:      sendFields(wire.TypeJoin, 8),
			wantErr:   wire.CodeBadRequest,
			wantReqID: 8,
		},
		{
			name:      "a Join with a room id over the length limit",
			hello:     true,
			send:      sendFields(wire.TypeJoin, 9, strings.Repeat("r", wire.MaxIDLength+1), "", ""),
			wantErr:   wire.CodeBadRequest,
			wantReqID: 9,
		},
		{
			name:    "an Input with a string seq",
			hello:   true,
			send:    sendFields(wire.TypeInput, "1", 0),
			wantErr: wire.CodeBadRequest,
		},
		{
			name:    "an Input with a seq over 32 bits",
			hello:   true,
			send:    sendFields(wire.TypeInput, uint64(1)<<32, 0),
			wantErr: wire.CodeBadRequest,
		},
		{
			name:    "a Ping with a string time",
			hello:   true,
			send:    sendFields(wire.TypePing, "now"),
			wantErr: wire.CodeBadRequest,
		},

		// Requests that make no sense in the connection's state.
		{
			name:  "input while not in a room",
			hello: true,
			send: func(_ *testing.T, _ *badInputEnv, c *netcodetest.RawConn) {
				c.Send(c.Enc.Input(wire.Input{Seq: 1, Payload: []byte{sim.ArenaRight}}))
			},
			wantErr: wire.CodeNotInRoom,
		},
		{
			name:  "room message while not in a room",
			hello: true,
			send: func(t *testing.T, _ *badInputEnv, c *netcodetest.RawConn) {
				c.Send(c.Enc.Message(wire.RoomMessage{ReqID: 11, Payload: msgpackValue(t, "hi")}))
			},
			wantErr:   wire.CodeNotInRoom,
			wantReqID: 11,
		},
		{
			name:  "leave while not in a room",
			hello: true,
			send: func(_ *testing.T, _ *badInputEnv, c *netcodetest.RawConn) {
				c.Send(c.Enc.Leave(wire.Leave{ReqID: 12}))
			},
			wantErr:   wire.CodeNotInRoom,
			wantReqID: 12,
		},
		{
			name:      "join an unknown room id",
			hello:     true,
			send:      sendJoin(wire.Join{ReqID: 13, RoomID: "no-such-room"}),
			wantErr:   wire.CodeRoomNotFound,
			wantReqID: 13,
		},
		{
			name:      "join an unknown mode",
			hello:     true,
			send:      sendJoin(wire.Join{ReqID: 14, Mode: "chess"}),
			wantErr:   wire.CodeUnknownMode,
			wantReqID: 14,
		},
		{
			name:      "join with a bogus token",
			hello:     true,
			send:      sendJoin(wire.Join{ReqID: 15, Token: "bogus"}),
			wantErr:   wire.CodeBadToken,
			wantReqID: 15,
		},
		{
			name:  "join with a forged token for the bystander's room",
			hello: true,
			send: func(_ *testing.T, env *badInputEnv, c *netcodetest.RawConn) {
				c.Send(c.Enc.Join(wire.Join{ReqID: 16, Token: env.bystander.seat.RoomID + ".forged"}))
			},
			wantErr:   wire.CodeBadToken,
			wantReqID: 16,
		},
		{
			name:      "join with nothing",
			hello:     true,
			send:      sendJoin(wire.Join{ReqID: 17}),
			wantErr:   wire.CodeBadRequest,
			wantReqID: 17,
		},
		{
			name:      "join while already in a room",
			hello:     true,
			setup:     seatedInPrivateRoom,
			send:      sendJoin(wire.Join{ReqID: 18, Mode: sim.ArenaMode}),
			wantErr:   wire.CodeAlreadyInRoom,
			wantReqID: 18,
		},
		{
			name:  "join a full room",
			hello: true,
			send: func(t *testing.T, env *badInputEnv, c *netcodetest.RawConn) {
				filler := netcodetest.DialHello(t, env.srv.URL)
				room := env.joinPrivate(t, filler, rooms.RoomOptions{MaxPlayers: 1})
				c.Send(c.Enc.Join(wire.Join{ReqID: 19, RoomID: room.ID()}))
			},
			wantErr:   wire.CodeRoomFull,
			wantReqID: 19,
		},

		// Limits.
		{
			name:  "inputs over the rate limit",
			hello: true,
			setup: seatedInPrivateRoom,
			send: func(_ *testing.T, env *badInputEnv, c *netcodetest.RawConn) {
				for seq := range uint32(10 * env.ncfg.InputBurst) {
					c.Send(c.Enc.Input(wire.Input{Seq: seq + 1, Payload: []byte{sim.ArenaRight}}))
				}
			},
			wantErr: wire.CodeRateLimited,
			// Errors about inputs are throttled to one a second per code;
			// a slow machine may take longer than that to send them all.
			tolerate: []wire.ErrorCode{wire.CodeRateLimited},
		},
		{
			name:  "input payload over MaxInputSize",
			hello: true,
			setup: seatedInPrivateRoom,
			send: func(t *testing.T, env *badInputEnv, c *netcodetest.RawConn) {
				payload := msgpackValue(t, bytes.Repeat([]byte{1}, env.rcfg.MaxInputSize))
				require.Greater(t, len(payload), env.rcfg.MaxInputSize)
				c.Send(c.Enc.Input(wire.Input{Seq: 1, Payload: payload}))
			},
			wantErr: wire.CodeTooLarge,
		},
		{
			name:  "room message over MaxRoomMessage",
			hello: true,
			setup: seatedInPrivateRoom,
			send: func(t *testing.T, env *badInputEnv, c *netcodetest.RawConn) {
				payload := msgpackValue(t, bytes.Repeat([]byte{1}, env.ncfg.MaxRoomMessage))
				c.Send(c.Enc.Message(wire.RoomMessage{ReqID: 20, Payload: payload}))
			},
			wantErr:   wire.CodeTooLarge,
			wantReqID: 20,
		},
		{
			name:  "a frame of exactly MaxMessageSize is read",
			hello: true,
			send: func(t *testing.T, env *badInputEnv, c *netcodetest.RawConn) {
				// fixarray, type, req id, bin16 header: 6 bytes.
				payload := msgpackValue(t, bytes.Repeat([]byte{1}, env.ncfg.MaxMessageSize-6))
				msg := c.Enc.Message(wire.RoomMessage{ReqID: 21, Payload: payload})
				require.Len(t, msg, env.ncfg.MaxMessageSize)
				c.Send(msg)
			},
			wantErr:   wire.CodeTooLarge, // the room message, not the frame
			wantReqID: 21,
		},
		{
			name:  "a frame over MaxMessageSize",
			hello: true,
			send: func(_ *testing.T, env *badInputEnv, c *netcodetest.RawConn) {
				c.Send(make([]byte, env.ncfg.MaxMessageSize+1))
			},
			wantClose: wire.CloseMessageTooBig,
		},
		{
			name:  "fragments adding up to over MaxMessageSize",
			hello: true,
			send: func(t *testing.T, env *badInputEnv, c *netcodetest.RawConn) {
				half := env.ncfg.MaxMessageSize/2 + 1
				writeWSFrame(t, c, maskedFrame(ws.OpBinary, false, make([]byte, half)))
				writeWSFrame(t, c, maskedFrame(ws.OpContinuation, true, make([]byte, half)))
			},
			wantClose: wire.CloseMessageTooBig,
		},

		// Frames that break RFC 6455.
		{
			name:  "a text frame",
			hello: true,
			send: func(_ *testing.T, _ *badInputEnv, c *netcodetest.RawConn) {
				c.SendFrame(ws.OpText, []byte(`[6, 1]`))
			},
			wantClose: wire.CloseUnsupportedData,
		},
		{
			name:  "an unmasked frame",
			hello: true,
			send: func(t *testing.T, _ *badInputEnv, c *netcodetest.RawConn) {
				writeWSFrame(t, c, ws.NewBinaryFrame(c.Enc.Ping(wire.Ping{ClientTime: 1})))
			},
			wantClose: wire.CloseProtocolError,
		},
		{
			name:  "a reserved bit without an extension",
			hello: true,
			send: func(t *testing.T, _ *badInputEnv, c *netcodetest.RawConn) {
				f := maskedFrame(ws.OpBinary, true, c.Enc.Ping(wire.Ping{ClientTime: 1}))
				f.Header.Rsv = ws.Rsv(true, false, false)
				writeWSFrame(t, c, f)
			},
			wantClose: wire.CloseProtocolError,
		},
		{
			name:  "a reserved opcode",
			hello: true,
			send: func(t *testing.T, _ *badInputEnv, c *netcodetest.RawConn) {
				writeWSFrame(t, c, maskedFrame(0x3, true, []byte{1}))
			},
			wantClose: wire.CloseProtocolError,
		},
		{
			name:  "a continuation without a message",
			hello: true,
			send: func(t *testing.T, _ *badInputEnv, c *netcodetest.RawConn) {
				writeWSFrame(t, c, maskedFrame(ws.OpContinuation, true, c.Enc.Ping(wire.Ping{ClientTime: 1})))
			},
			wantClose: wire.CloseProtocolError,
		},
		{
			name:  "a new message inside a fragmented one",
			hello: true,
			send: func(t *testing.T, _ *badInputEnv, c *netcodetest.RawConn) {
				writeWSFrame(t, c, maskedFrame(ws.OpBinary, false, []byte{0x91}))
				writeWSFrame(t, c, maskedFrame(ws.OpBinary, true, []byte{0x06}))
			},
			wantClose: wire.CloseProtocolError,
		},
		{
			name:  "a ping of 126 bytes",
			hello: true,
			send: func(_ *testing.T, _ *badInputEnv, c *netcodetest.RawConn) {
				c.SendFrame(ws.OpPing, make([]byte, 126))
			},
			wantClose: wire.CloseProtocolError,
		},
		{
			name:  "a fragmented ping",
			hello: true,
			send: func(t *testing.T, _ *badInputEnv, c *netcodetest.RawConn) {
				writeWSFrame(t, c, maskedFrame(ws.OpPing, false, []byte("p")))
			},
			wantClose: wire.CloseProtocolError,
		},
		{
			name:  "a close frame of one byte",
			hello: true,
			send: func(_ *testing.T, _ *badInputEnv, c *netcodetest.RawConn) {
				c.SendFrame(ws.OpClose, []byte{3})
			},
			wantClose: wire.CloseProtocolError,
		},
		{
			name:  "a fragmented message with a ping between fragments is fine",
			hello: true,
			send: func(t *testing.T, _ *badInputEnv, c *netcodetest.RawConn) {
				msg := c.Enc.Ping(wire.Ping{ClientTime: 7})
				writeWSFrame(t, c, maskedFrame(ws.OpBinary, false, msg[:1]))
				writeWSFrame(t, c, maskedFrame(ws.OpPing, true, []byte("between")))
				writeWSFrame(t, c, maskedFrame(ws.OpContinuation, true, msg[1:]))
			},
			check: func(t *testing.T, _ *badInputEnv, c *netcodetest.RawConn) {
				op, p, err := c.ReadFrame(5 * time.Second)
				require.NoError(t, err)
				require.Equal(t, ws.OpPong, op, "the ping between fragments is answered first")
				require.Equal(t, "between", string(p))
				require.Equal(t, int64(7), c.Expect(wire.TypePong).Pong.ClientTime)
				requireUsable(t, c)
			},
		},

		// Ends of connections.
		{
			name:  "a client close 1000 is echoed",
			hello: true,
			send: func(_ *testing.T, _ *badInputEnv, c *netcodetest.RawConn) {
				c.SendFrame(ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, "bye"))
			},
			wantClose: wire.CloseNormal,
		},
		{
			name:  "a client close without a code is answered with 1000",
			hello: true,
			send: func(_ *testing.T, _ *badInputEnv, c *netcodetest.RawConn) {
				c.SendFrame(ws.OpClose, nil)
			},
			wantClose: wire.CloseNormal,
		},
		{
			name:  "no frame within the heartbeat timeout",
			hello: true,
			check: func(t *testing.T, env *badInputEnv, c *netcodetest.RawConn) {
				start := time.Now()
				code, err := readCloseIgnoringPings(t, c, env.ncfg.HeartbeatTimeout+2*time.Second)
				require.NoError(t, err, "want a close frame")
				require.Equal(t, wire.CloseHeartbeatTimeout, code)
				require.GreaterOrEqual(t, time.Since(start), env.ncfg.HeartbeatTimeout/2,
					"closed long before the heartbeat timeout")
			},
		},
	}
}

// TestBadInputGetsClearAnswers sends every kind of bad input we know of, each
// on its own connection, to one server, and checks the exact error code or
// close code of each answer, and that a well-behaved player on the same
// server noticed none of it.
func TestBadInputGetsClearAnswers(t *testing.T) {
	t.Parallel()
	// Both ways a server reads: pollers (the default on Linux) and a reader
	// goroutine per connection (the fallback elsewhere).
	for _, pollers := range []int{netcode.DefaultServerConfig().Pollers, 0} {
		t.Run(fmt.Sprintf("pollers=%d", pollers), func(t *testing.T) {
			t.Parallel()
			testBadInput(t, pollers)
		})
	}
}

func testBadInput(t *testing.T, pollers int) {
	ncfg, rcfg := badInputConfig()
	ncfg.Pollers = pollers
	srv := roomstest.Start(t, ncfg, rcfg)
	env := &badInputEnv{srv: srv, ncfg: ncfg, rcfg: rcfg, bystander: newBystander(t, srv.URL)}

	t.Run("cases", func(t *testing.T) {
		for _, tc := range badInputCases() {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				var c *netcodetest.RawConn
				if tc.hello {
					c = netcodetest.DialHello(t, srv.URL)
				} else {
					c = netcodetest.Dial(t, srv.URL)
				}
				if tc.setup != nil {
					tc.setup(t, env, c)
				}
				if tc.send != nil {
					tc.send(t, env, c)
				}
				if tc.check != nil {
					tc.check(t, env, c)
					return
				}
				if tc.wantErr != 0 {
					e := c.ExpectError()
					require.Equal(t, tc.wantErr, e.Code, "error %q", e.Message)
					require.Equal(t, tc.wantReqID, e.ReqID, "the error must echo the request id")
					require.NotEmpty(t, e.Message, "errors explain themselves")
				}
				if tc.wantClose != 0 {
					c.ExpectClose(tc.wantClose)
					return
				}
				requireUsable(t, c, tc.tolerate...)
			})
		}
	})

	env.bystander.requireUnaffected(t)
}

// TestInputFloodStaysBounded has a player send 10,000 inputs as fast as it
// can without reading anything. The room keeps a bounded queue per player
// (the oldest inputs are dropped), so the server's memory stays flat, the
// newest input still wins, and the other player in the room plays on.
func TestInputFloodStaysBounded(t *testing.T) {
	t.Parallel()
	ncfg, rcfg := badInputConfig()
	ncfg.InputRate, ncfg.InputBurst = 1e6, 1e6 // let the flood through to the room
	srv := roomstest.Start(t, ncfg, rcfg)
	b := newBystander(t, srv.URL)

	flooder := netcodetest.DialHello(t, srv.URL)
	flooder.Send(flooder.Enc.Join(wire.Join{ReqID: 1, RoomID: b.seat.RoomID}))
	require.Equal(t, b.seat.RoomID, flooder.Expect(wire.TypeJoined).Joined.RoomID)

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	const inputs = 10_000
	var flood []byte
	enc := wire.NewEncoder()
	for seq := uint32(1); seq <= inputs; seq++ {
		msg := enc.Input(wire.Input{Seq: seq, Payload: []byte{byte(seq % 16)}})
		f, err := ws.CompileFrame(ws.MaskFrame(ws.NewBinaryFrame(msg)))
		require.NoError(t, err)
		flood = append(flood, f...)
	}
	require.NoError(t, flooder.NC.SetWriteDeadline(time.Now().Add(10*time.Second)))
	_, err := flooder.NC.Write(flood)
	require.NoError(t, err)

	// The bystander plays on while the flooder still reads nothing.
	b.requireUnaffected(t, client.EventPlayerJoined)

	// The room took the newest input: snapshots acknowledge the last seq.
	deadline := time.Now().Add(5 * time.Second)
	for {
		m := flooder.Expect(wire.TypeSnapshot)
		if m.Snapshot.Ack == inputs {
			break
		}
		require.True(t, time.Now().Before(deadline), "the flooder's last input is never acknowledged (ack %d)", m.Snapshot.Ack)
	}

	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	require.Less(t, growth, int64(50<<20), "heap grew by %d bytes during the flood", growth)
	b.requireUnaffected(t, client.EventPlayerJoined)
}

// TestShortHeartbeatKeepsActiveClients checks that a client that talks all
// the time (it answers every ping and sends inputs) is not dropped by a
// heartbeat timeout of a second, roomstest's default: the server must renew
// its read deadline well within the timeout, however short.
func TestShortHeartbeatKeepsActiveClients(t *testing.T) {
	t.Parallel()
	srv := roomstest.StartDefault(t)
	ncfg, _ := roomstest.Config()
	b := newBystander(t, srv.URL)
	require.Never(t, func() bool {
		_, _ = b.c.SendInput([]byte{sim.ArenaLeft})
		return b.c.Stats().Drops.Load() > 0 || b.c.Err() != nil
	}, 2*ncfg.HeartbeatTimeout, 20*time.Millisecond, "an active client was dropped")
	b.requireUnaffected(t)
}

// TestNothingIsSentBeforeTheUpgrade checks that the server writes nothing on
// a connection before it has answered the client's HTTP upgrade request: a
// WebSocket frame there would corrupt the HTTP response.
func TestNothingIsSentBeforeTheUpgrade(t *testing.T) {
	t.Parallel()
	ncfg, rcfg := badInputConfig()
	srv := roomstest.Start(t, ncfg, rcfg)
	addr := strings.TrimSuffix(strings.TrimPrefix(srv.URL, "ws://"), ncfg.Path)
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })

	// A slow client: its upgrade request comes after a few ping intervals.
	require.NoError(t, nc.SetReadDeadline(time.Now().Add(3*ncfg.PingInterval)))
	var buf [64]byte
	n, err := nc.Read(buf[:])
	require.ErrorIs(t, err, os.ErrDeadlineExceeded,
		"the server sent % x before the upgrade request", buf[:n])

	req := "GET " + ncfg.Path + " HTTP/1.1\r\nHost: " + addr + "\r\n" +
		"Upgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	_, err = nc.Write([]byte(req))
	require.NoError(t, err)
	require.NoError(t, nc.SetReadDeadline(time.Now().Add(5*time.Second)))
	n, err = io.ReadAtLeast(nc, buf[:], len("HTTP/1.1 101"))
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(buf[:n], []byte("HTTP/1.1 101")), "response starts with % x", buf[:n])
}
