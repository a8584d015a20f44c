package wire_test

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/tickroom/tickroom/netcode/wire"
)

// mustMarshal encodes v with the msgpack library, independently of the
// package's Encoder.
func mustMarshal(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := msgpack.Marshal(v)
	require.NoError(tb, err)
	return b
}

// A few raw MessagePack payloads of the kinds games send, chosen to cover the
// value formats: fixint, fixmap with string keys, nested arrays, str8/str16,
// bin, floats, extensions (time.Time is ext -1) and every integer width.
var (
	payloadInt  = []byte{0x05}
	payloadMove = []byte{0x83, 0xa2, 'd', 'x', 0x01, 0xa2, 'd', 'y', 0xff, 0xa4, 'f', 'i', 'r', 'e', 0xc3}
)

func samplePayloads(tb testing.TB) map[string][]byte {
	tb.Helper()
	return map[string][]byte{
		"fixint":  payloadInt,
		"move":    payloadMove,
		"nested":  mustMarshal(tb, []any{1, []any{2, []any{3, map[string]any{"k": []any{nil, true, false}}}}}),
		"str8":    mustMarshal(tb, strings.Repeat("a", 200)),
		"str16":   mustMarshal(tb, strings.Repeat("b", 300)),
		"bin":     mustMarshal(tb, []byte{0, 1, 2, 3}),
		"floats":  mustMarshal(tb, []any{float32(1.5), 2.25}),
		"ext":     mustMarshal(tb, time.Unix(1764000000, 123)),
		"ints":    mustMarshal(tb, []any{int8(-100), int16(-30000), int32(-2e9), int64(math.MinInt64), uint8(200), uint16(60000), uint32(4e9), uint64(math.MaxUint64)}),
		"map16":   mustMarshal(tb, bigMap(20)),
		"array16": mustMarshal(tb, make([]any, 20)),
	}
}

func bigMap(n int) map[string]any {
	m := make(map[string]any, n)
	for i := range n {
		m[strings.Repeat("k", i+1)] = i
	}
	return m
}

// clientCases and serverCases are the round-trip tables, shared with the fuzz
// seed corpora and the benchmarks. Payloads are non-empty: an empty payload
// is sent as nil and comes back as the raw nil value (see
// TestEmptyPayloadEncodesAsNil).
var clientCases = []struct {
	name string
	msg  wire.ClientMessage
}{
	{"hello", wire.ClientMessage{Type: wire.TypeHello, Hello: wire.Hello{Version: wire.Version, Client: "tickroom-go/0.1"}}},
	{"hello empty client", wire.ClientMessage{Type: wire.TypeHello, Hello: wire.Hello{}}},
	{"hello longest client", wire.ClientMessage{Type: wire.TypeHello, Hello: wire.Hello{Version: math.MaxUint32, Client: strings.Repeat("c", wire.MaxIDLength)}}},
	{"join room", wire.ClientMessage{Type: wire.TypeJoin, Join: wire.Join{ReqID: 1, RoomID: "room-42"}}},
	{"join mode", wire.ClientMessage{Type: wire.TypeJoin, Join: wire.Join{ReqID: 2, Mode: "arena"}}},
	{"join resume", wire.ClientMessage{Type: wire.TypeJoin, Join: wire.Join{ReqID: math.MaxUint32, Token: "tok_0123456789abcdef"}}},
	{"join longest ids", wire.ClientMessage{Type: wire.TypeJoin, Join: wire.Join{ReqID: 300, RoomID: strings.Repeat("r", wire.MaxIDLength), Mode: strings.Repeat("m", wire.MaxIDLength), Token: strings.Repeat("t", wire.MaxIDLength)}}},
	{"join utf8", wire.ClientMessage{Type: wire.TypeJoin, Join: wire.Join{ReqID: 3, RoomID: "salle-été-🎮"}}},
	{"join redirected", wire.ClientMessage{Type: wire.TypeJoin, Join: wire.Join{ReqID: 4, Mode: "arena", MaxPlayers: 8, Hops: 1}}},
	{"leave", wire.ClientMessage{Type: wire.TypeLeave, Leave: wire.Leave{ReqID: 77}}},
	{"leave zero", wire.ClientMessage{Type: wire.TypeLeave, Leave: wire.Leave{}}},
	{"input fixint", wire.ClientMessage{Type: wire.TypeInput, Input: wire.Input{Seq: 1, Payload: payloadInt}}},
	{"input move", wire.ClientMessage{Type: wire.TypeInput, Input: wire.Input{Seq: 70000, Payload: payloadMove}}},
	{"input max seq", wire.ClientMessage{Type: wire.TypeInput, Input: wire.Input{Seq: math.MaxUint32, Payload: []byte{0xc0}}}},
	{"room message", wire.ClientMessage{Type: wire.TypeMessage, Message: wire.RoomMessage{ReqID: 9, Payload: []byte{0x81, 0xa3, 's', 'a', 'y', 0xa2, 'g', 'g'}}}},
	{"ping", wire.ClientMessage{Type: wire.TypePing, Ping: wire.Ping{ClientTime: 1764000000123}}},
	{"ping negative", wire.ClientMessage{Type: wire.TypePing, Ping: wire.Ping{ClientTime: -1}}},
	{"ping min", wire.ClientMessage{Type: wire.TypePing, Ping: wire.Ping{ClientTime: math.MinInt64}}},
	{"ping max", wire.ClientMessage{Type: wire.TypePing, Ping: wire.Ping{ClientTime: math.MaxInt64}}},
}

var serverCases = []struct {
	name string
	msg  wire.ServerMessage
}{
	{"welcome", wire.ServerMessage{Type: wire.TypeWelcome, Welcome: wire.Welcome{Version: wire.Version, TickRate: 30, ServerTime: 1764000000123, MaxMessage: 64 << 10, HeartbeatMs: 15000}}},
	{"welcome extremes", wire.ServerMessage{Type: wire.TypeWelcome, Welcome: wire.Welcome{Version: math.MaxUint32, TickRate: math.MaxUint32, ServerTime: math.MinInt64, MaxMessage: math.MaxUint32, HeartbeatMs: math.MaxUint32}}},
	{"joined", wire.ServerMessage{Type: wire.TypeJoined, Joined: wire.Joined{ReqID: 1, RoomID: "room-42", Mode: "arena", Player: 3, Token: "tok_abc", MaxPlayers: 16, Players: []uint32{1, 2, 3}}}},
	{"joined resumed", wire.ServerMessage{Type: wire.TypeJoined, Joined: wire.Joined{ReqID: math.MaxUint32, RoomID: strings.Repeat("r", wire.MaxIDLength), Mode: "m", Player: math.MaxUint32, Token: strings.Repeat("t", wire.MaxIDLength), Resumed: true, MaxPlayers: 2, Players: []uint32{0, 255, 256, 65535, 65536, math.MaxUint32}}}},
	{"joined no players", wire.ServerMessage{Type: wire.TypeJoined, Joined: wire.Joined{ReqID: 5, RoomID: "r"}}},
	{"ok", wire.ServerMessage{Type: wire.TypeOK, OK: wire.OK{ReqID: 12}}},
	{"error", wire.ServerMessage{Type: wire.TypeError, Error: wire.Error{ReqID: 3, Code: wire.CodeRoomFull, Message: "room is full"}}},
	{"error without request", wire.ServerMessage{Type: wire.TypeError, Error: wire.Error{Code: wire.CodeRateLimited}}},
	{"error long", wire.ServerMessage{Type: wire.TypeError, Error: wire.Error{ReqID: 4, Code: math.MaxUint16, Message: strings.Repeat("e", 1000)}}},
	{"player joined", wire.ServerMessage{Type: wire.TypePlayerJoined, PlayerJoined: wire.PlayerJoined{Player: 7}}},
	{"player left", wire.ServerMessage{Type: wire.TypePlayerLeft, PlayerLeft: wire.PlayerLeft{Player: 7, Reason: "timeout"}}},
	{"room event from game", wire.ServerMessage{Type: wire.TypeRoomEvent, RoomEvent: wire.RoomEvent{From: 0, Payload: payloadMove}}},
	{"room event from player", wire.ServerMessage{Type: wire.TypeRoomEvent, RoomEvent: wire.RoomEvent{From: 70000, Payload: []byte{0x92, 0x01, 0xa2, 'h', 'i'}}}},
	{"room closed", wire.ServerMessage{Type: wire.TypeRoomClosed, RoomClosed: wire.RoomClosed{RoomID: "room-42", Reason: "game over"}}},
	{"room closed empty", wire.ServerMessage{Type: wire.TypeRoomClosed}},
	{"pong", wire.ServerMessage{Type: wire.TypePong, Pong: wire.Pong{ClientTime: 1764000000123, ServerTime: 1764000000150}}},
	{"pong extremes", wire.ServerMessage{Type: wire.TypePong, Pong: wire.Pong{ClientTime: math.MinInt64, ServerTime: math.MaxInt64}}},
	{"redirect", wire.ServerMessage{Type: wire.TypeRedirect, Redirect: wire.Redirect{ReqID: 9, URL: "ws://10.0.0.2:8080/ws", Node: "n2"}}},
	{"room moved", wire.ServerMessage{Type: wire.TypeRoomMoved, RoomMoved: wire.RoomMoved{RoomID: "r1", URL: "ws://10.0.0.3:8080/ws", Node: "n3", Token: "r1.tok", Epoch: 2}}},
	{"room moved to seeds", wire.ServerMessage{Type: wire.TypeRoomMoved, RoomMoved: wire.RoomMoved{RoomID: "r1", Token: "r1.tok", Epoch: math.MaxUint64}}},
	{"redirect longest", wire.ServerMessage{Type: wire.TypeRedirect, Redirect: wire.Redirect{ReqID: math.MaxUint32, URL: strings.Repeat("u", wire.MaxURLLength), Node: strings.Repeat("n", wire.MaxIDLength)}}},
}

// encodeClient encodes m with the Encoder method for its type.
func encodeClient(tb testing.TB, e *wire.Encoder, m *wire.ClientMessage) []byte {
	tb.Helper()
	switch m.Type {
	case wire.TypeHello:
		return e.Hello(m.Hello)
	case wire.TypeJoin:
		return e.Join(m.Join)
	case wire.TypeLeave:
		return e.Leave(m.Leave)
	case wire.TypeInput:
		return e.Input(m.Input)
	case wire.TypeMessage:
		return e.Message(m.Message)
	case wire.TypePing:
		return e.Ping(m.Ping)
	}
	tb.Fatalf("no encoder for client message type %d", m.Type)
	return nil
}

// encodeServer encodes m with the Encoder method for its type. Snapshots are
// encoded by AppendSnapshotHead and SnapshotBody instead.
func encodeServer(tb testing.TB, e *wire.Encoder, m *wire.ServerMessage) []byte {
	tb.Helper()
	switch m.Type {
	case wire.TypeWelcome:
		return e.Welcome(m.Welcome)
	case wire.TypeJoined:
		return e.Joined(m.Joined)
	case wire.TypeOK:
		return e.OK(m.OK)
	case wire.TypeError:
		return e.Error(m.Error)
	case wire.TypePlayerJoined:
		return e.PlayerJoined(m.PlayerJoined)
	case wire.TypePlayerLeft:
		return e.PlayerLeft(m.PlayerLeft)
	case wire.TypeRoomEvent:
		return e.RoomEvent(m.RoomEvent)
	case wire.TypeRoomClosed:
		return e.RoomClosed(m.RoomClosed)
	case wire.TypePong:
		return e.Pong(m.Pong)
	case wire.TypeRedirect:
		return e.Redirect(m.Redirect)
	case wire.TypeRoomMoved:
		return e.RoomMoved(m.RoomMoved)
	}
	tb.Fatalf("no encoder for server message type %d", m.Type)
	return nil
}

// clientBody and serverBody return the struct that m.Type selects.
func clientBody(m *wire.ClientMessage) any {
	return map[wire.Type]any{
		wire.TypeHello: m.Hello, wire.TypeJoin: m.Join, wire.TypeLeave: m.Leave,
		wire.TypeInput: m.Input, wire.TypeMessage: m.Message, wire.TypePing: m.Ping,
	}[m.Type]
}

func serverBody(m *wire.ServerMessage) any {
	return map[wire.Type]any{
		wire.TypeWelcome: m.Welcome, wire.TypeJoined: m.Joined, wire.TypeOK: m.OK,
		wire.TypeError: m.Error, wire.TypeSnapshot: m.Snapshot, wire.TypePlayerJoined: m.PlayerJoined,
		wire.TypePlayerLeft: m.PlayerLeft, wire.TypeRoomEvent: m.RoomEvent,
		wire.TypeRoomClosed: m.RoomClosed, wire.TypePong: m.Pong, wire.TypeRedirect: m.Redirect,
		wire.TypeRoomMoved: m.RoomMoved,
	}[m.Type]
}

// wireFields lists what the msgpack library should find after the type in
// the array of a message: the body struct's fields in declaration order,
// which is the documented wire order, with raw payloads decoded.
func wireFields(tb testing.TB, body any) []any {
	tb.Helper()
	v := reflect.ValueOf(body)
	var out []any
	for i := range v.NumField() {
		f := v.Field(i)
		switch {
		case f.Type() == reflect.TypeFor[[]byte]():
			var p any
			require.NoError(tb, msgpack.Unmarshal(f.Bytes(), &p))
			out = append(out, normalize(p))
		case f.Kind() == reflect.Slice:
			list := []any{}
			for j := range f.Len() {
				list = append(list, normalize(f.Index(j).Interface()))
			}
			out = append(out, list)
		default:
			out = append(out, normalize(f.Interface()))
		}
	}
	return out
}

// normalize maps every integer to int64 (no field of ours needs more) and
// recurses into arrays and maps, so values decoded by msgpack compare equal
// to Go values whatever width the encoder chose.
func normalize(v any) any {
	rv := reflect.ValueOf(v)
	switch {
	case v == nil:
		return nil
	case rv.CanInt():
		return rv.Int()
	case rv.CanUint():
		return int64(rv.Uint())
	}
	switch v := v.(type) {
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = normalize(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = normalize(e)
		}
		return out
	}
	return v
}

// checkWithLibrary decodes frame with the msgpack library: one array whose
// first element is the type, then the body's fields in order.
func checkWithLibrary(t *testing.T, frame []byte, typ wire.Type, body any) {
	t.Helper()
	var arr []any
	require.NoError(t, msgpack.Unmarshal(frame, &arr))
	require.NotEmpty(t, arr)
	assert.Equal(t, int64(typ), normalize(arr[0]), "first element is the type")
	want := wireFields(t, body)
	if j, ok := body.(wire.Join); ok && j.Hops == 0 {
		want = want[:len(want)-1] // a first try leaves hops out
	}
	assert.Equal(t, want, normalize(arr[1:]), "fields in wire order")
}

func TestClientRoundTrip(t *testing.T) {
	e, d := wire.NewEncoder(), wire.NewDecoder() // reused across cases, as a connection does
	for _, tc := range clientCases {
		t.Run(tc.name, func(t *testing.T) {
			frame := encodeClient(t, e, &tc.msg)
			checkWithLibrary(t, frame, tc.msg.Type, clientBody(&tc.msg))

			var got wire.ClientMessage
			require.NoError(t, d.DecodeClient(frame, &got))
			assert.Equal(t, tc.msg, got)
		})
	}
}

func TestServerRoundTrip(t *testing.T) {
	e, d := wire.NewEncoder(), wire.NewDecoder()
	for _, tc := range serverCases {
		t.Run(tc.name, func(t *testing.T) {
			frame := encodeServer(t, e, &tc.msg)
			checkWithLibrary(t, frame, tc.msg.Type, serverBody(&tc.msg))

			var got wire.ServerMessage
			require.NoError(t, d.DecodeServer(frame, &got))
			assert.Equal(t, tc.msg, got)
		})
	}
}

// A Decoder may decode every frame of a connection into one ServerMessage:
// the body that Type selects is then as the frame says, whatever earlier
// frames left in it. A reused Players slice comes back empty rather than nil.
func TestDecodeIntoReusedMessage(t *testing.T) {
	e, d := wire.NewEncoder(), wire.NewDecoder()
	var got wire.ServerMessage
	for range 2 {
		for _, tc := range serverCases {
			require.NoError(t, d.DecodeServer(encodeServer(t, e, &tc.msg), &got), tc.name)
			assert.Equal(t, tc.msg.Type, got.Type, tc.name)
			want := tc.msg
			if got.Type == wire.TypeJoined && len(want.Joined.Players) == 0 {
				assert.Empty(t, got.Joined.Players, tc.name)
				want.Joined.Players = got.Joined.Players
			}
			assert.Equal(t, serverBody(&want), serverBody(&got), tc.name)
		}
	}
}

func TestPayloadRoundTrip(t *testing.T) {
	e, d := wire.NewEncoder(), wire.NewDecoder()
	for name, p := range samplePayloads(t) {
		t.Run(name, func(t *testing.T) {
			var want any
			require.NoError(t, msgpack.Unmarshal(p, &want))

			frame := bytes.Clone(e.Input(wire.Input{Seq: 8, Payload: p}))
			var m wire.ClientMessage
			require.NoError(t, d.DecodeClient(frame, &m))
			got := m.Input.Payload
			require.Equal(t, p, got)

			// The payload aliases the frame and cannot grow into it.
			require.NotEmpty(t, got)
			assert.Same(t, &frame[len(frame)-len(got)], &got[0], "payload aliases the frame")
			assert.Equal(t, len(got), cap(got), "payload capped at its end")

			var v any
			require.NoError(t, msgpack.Unmarshal(got, &v))
			assert.Equal(t, want, v)

			// Room messages and room events carry payloads the same way.
			require.NoError(t, d.DecodeClient(e.Message(wire.RoomMessage{ReqID: 1, Payload: p}), &m))
			assert.Equal(t, p, m.Message.Payload)
			var sm wire.ServerMessage
			require.NoError(t, d.DecodeServer(e.RoomEvent(wire.RoomEvent{From: 2, Payload: p}), &sm))
			assert.Equal(t, p, sm.RoomEvent.Payload)
		})
	}
}

func TestEmptyPayloadEncodesAsNil(t *testing.T) {
	e, d := wire.NewEncoder(), wire.NewDecoder()
	for _, p := range [][]byte{nil, {}} {
		frame := e.Input(wire.Input{Seq: 1, Payload: p})
		assert.Equal(t, []byte{0x93, byte(wire.TypeInput), 0x01, 0xc0}, frame)

		var m wire.ClientMessage
		require.NoError(t, d.DecodeClient(frame, &m))
		assert.Equal(t, []byte{0xc0}, m.Input.Payload, "the raw nil value")

		require.NoError(t, d.DecodeClient(e.Message(wire.RoomMessage{ReqID: 2, Payload: p}), &m))
		assert.Equal(t, []byte{0xc0}, m.Message.Payload)

		var sm wire.ServerMessage
		require.NoError(t, d.DecodeServer(e.RoomEvent(wire.RoomEvent{From: 3, Payload: p}), &sm))
		assert.Equal(t, []byte{0xc0}, sm.RoomEvent.Payload)
	}
}

// Fields a newer peer appends are skipped, whatever their type.
func TestExtraElementsIgnored(t *testing.T) {
	d := wire.NewDecoder()
	extra := []any{42, "future", map[string]any{"x": []any{1, 2.5, nil}}, []byte{1, 2}, time.Unix(1, 0)}

	var cm wire.ClientMessage
	frame := mustMarshal(t, append([]any{wire.TypeHello, 1, "c"}, extra...))
	require.NoError(t, d.DecodeClient(frame, &cm))
	assert.Equal(t, wire.Hello{Version: 1, Client: "c"}, cm.Hello)

	frame = mustMarshal(t, append([]any{wire.TypeInput, 5, 7}, extra...))
	require.NoError(t, d.DecodeClient(frame, &cm))
	assert.Equal(t, wire.Input{Seq: 5, Payload: []byte{0x07}}, cm.Input)

	var sm wire.ServerMessage
	frame = mustMarshal(t, append([]any{wire.TypeOK, 12}, extra...))
	require.NoError(t, d.DecodeServer(frame, &sm))
	assert.Equal(t, wire.OK{ReqID: 12}, sm.OK)
}

// Strings may arrive as MessagePack str or bin, and nil reads as "".
func TestStringForms(t *testing.T) {
	d := wire.NewDecoder()
	var m wire.ClientMessage
	require.NoError(t, d.DecodeClient(mustMarshal(t, []any{wire.TypeJoin, 1, []byte("room-1"), nil, "tok"}), &m))
	assert.Equal(t, wire.Join{ReqID: 1, RoomID: "room-1", Token: "tok"}, m.Join)
}

type decodeErrorCase struct {
	name  string
	frame []byte
	kind  error     // ErrMalformed, ErrUnknownType or ErrBadField
	typ   wire.Type // DecodeError.Type
	reqID uint32    // DecodeError.ReqID
}

func checkDecodeError(t *testing.T, tc decodeErrorCase, err error) {
	t.Helper()
	require.Error(t, err)
	assert.ErrorIs(t, err, tc.kind)
	for _, other := range []error{wire.ErrMalformed, wire.ErrUnknownType, wire.ErrBadField} {
		if other != tc.kind {
			assert.NotErrorIs(t, err, other)
		}
	}
	var de *wire.DecodeError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, tc.kind, de.Kind)
	assert.Equal(t, tc.typ, de.Type, "DecodeError.Type")
	assert.Equal(t, tc.reqID, de.ReqID, "DecodeError.ReqID")
	assert.NotEmpty(t, de.Error())
}

// malformedCases fail before the message type is known, for either decoder.
func malformedCases(tb testing.TB) []decodeErrorCase {
	tb.Helper()
	hello := wire.NewEncoder().Hello(wire.Hello{Version: 1, Client: "c"})
	return []decodeErrorCase{
		{name: "empty", frame: nil},
		{name: "int", frame: []byte{0x05}},
		{name: "nil", frame: []byte{0xc0}},
		{name: "string", frame: mustMarshal(tb, "hello")},
		{name: "map", frame: mustMarshal(tb, map[string]any{"type": 1})},
		{name: "empty map", frame: []byte{0x80}},
		{name: "empty array", frame: []byte{0x90}},
		{name: "array16 cut in its length", frame: []byte{0xdc, 0x00}},
		{name: "array32 cut in its length", frame: []byte{0xdd, 0x00, 0x00, 0x01}},
		{name: "array without elements", frame: []byte{0x92}},
		{name: "type cut short", frame: []byte{0x91, 0xcd, 0x00}},
		{name: "type not a number", frame: mustMarshal(tb, []any{"hello"})},
		{name: "type negative", frame: mustMarshal(tb, []any{-1})},
		{name: "type beyond 255", frame: mustMarshal(tb, []any{256})},
		{name: "type float", frame: mustMarshal(tb, []any{1.0})},
		{name: "reserved code", frame: []byte{0xc1}},
		{name: "hello cut to its header", frame: hello[:1]},
	}
}

func TestDecodeClientErrors(t *testing.T) {
	long := strings.Repeat("x", wire.MaxIDLength+1)
	ping := wire.NewEncoder().Ping(wire.Ping{ClientTime: 1})
	cases := append(malformedCases(t), []decodeErrorCase{
		{name: "trailing bytes", frame: append(bytes.Clone(ping), 0x00), kind: wire.ErrMalformed, typ: wire.TypePing},
		{name: "trailing array", frame: append(bytes.Clone(ping), ping...), kind: wire.ErrMalformed, typ: wire.TypePing},
		{name: "extra element cut short", frame: []byte{0x93, byte(wire.TypePing), 0x01, 0xa5, 'a'}, kind: wire.ErrMalformed, typ: wire.TypePing},
		{name: "extra element missing", frame: []byte{0x93, byte(wire.TypePing), 0x01}, kind: wire.ErrMalformed, typ: wire.TypePing},
		{name: "extra element declares a huge string", frame: []byte{0x93, byte(wire.TypePing), 0x01, 0xdb, 0xff, 0xff, 0xff, 0xff}, kind: wire.ErrMalformed, typ: wire.TypePing},

		{name: "unknown type", frame: mustMarshal(t, []any{99}), kind: wire.ErrUnknownType, typ: 99},
		{name: "unknown type 0", frame: mustMarshal(t, []any{0, 1, 2}), kind: wire.ErrUnknownType},
		{name: "unknown type 255", frame: mustMarshal(t, []any{255}), kind: wire.ErrUnknownType, typ: 255},
		{name: "server type", frame: wire.NewEncoder().OK(wire.OK{ReqID: 1}), kind: wire.ErrUnknownType, typ: wire.TypeOK},

		{name: "hello without fields", frame: mustMarshal(t, []any{wire.TypeHello}), kind: wire.ErrBadField, typ: wire.TypeHello},
		{name: "hello string version", frame: mustMarshal(t, []any{wire.TypeHello, "1", "c"}), kind: wire.ErrBadField, typ: wire.TypeHello},
		{name: "hello int client", frame: mustMarshal(t, []any{wire.TypeHello, 1, 2}), kind: wire.ErrBadField, typ: wire.TypeHello},
		{name: "hello client too long", frame: mustMarshal(t, []any{wire.TypeHello, 1, long}), kind: wire.ErrBadField, typ: wire.TypeHello},
		{name: "join string req id", frame: mustMarshal(t, []any{wire.TypeJoin, "7", "r", "", ""}), kind: wire.ErrBadField, typ: wire.TypeJoin},
		{name: "join negative req id", frame: mustMarshal(t, []any{wire.TypeJoin, -7, "r", "", ""}), kind: wire.ErrBadField, typ: wire.TypeJoin},
		{name: "join int room id", frame: mustMarshal(t, []any{wire.TypeJoin, 7, 123, "", ""}), kind: wire.ErrBadField, typ: wire.TypeJoin, reqID: 7},
		{name: "join array mode", frame: mustMarshal(t, []any{wire.TypeJoin, 7, "", []any{"arena"}, ""}), kind: wire.ErrBadField, typ: wire.TypeJoin, reqID: 7},
		{name: "join room id too long", frame: mustMarshal(t, []any{wire.TypeJoin, 8, long, "", ""}), kind: wire.ErrBadField, typ: wire.TypeJoin, reqID: 8},
		{name: "join mode too long", frame: mustMarshal(t, []any{wire.TypeJoin, 8, "", long, ""}), kind: wire.ErrBadField, typ: wire.TypeJoin, reqID: 8},
		{name: "join token too long", frame: mustMarshal(t, []any{wire.TypeJoin, 8, "", "", long}), kind: wire.ErrBadField, typ: wire.TypeJoin, reqID: 8},
		{name: "join without token", frame: mustMarshal(t, []any{wire.TypeJoin, 9, "r", "m"}), kind: wire.ErrBadField, typ: wire.TypeJoin, reqID: 9},
		{name: "join without fields", frame: mustMarshal(t, []any{wire.TypeJoin}), kind: wire.ErrBadField, typ: wire.TypeJoin},
		{name: "join room id cut short", frame: []byte{0x95, byte(wire.TypeJoin), 0x07, 0xa5, 'r', 'o'}, kind: wire.ErrBadField, typ: wire.TypeJoin, reqID: 7},
		{name: "leave without req id", frame: mustMarshal(t, []any{wire.TypeLeave}), kind: wire.ErrBadField, typ: wire.TypeLeave},
		{name: "leave req id beyond 32 bits", frame: mustMarshal(t, []any{wire.TypeLeave, uint64(1) << 32}), kind: wire.ErrBadField, typ: wire.TypeLeave},
		{name: "input string seq", frame: mustMarshal(t, []any{wire.TypeInput, "1", 5}), kind: wire.ErrBadField, typ: wire.TypeInput},
		{name: "input seq 2^32", frame: mustMarshal(t, []any{wire.TypeInput, uint64(1) << 32, 5}), kind: wire.ErrBadField, typ: wire.TypeInput},
		{name: "input seq max uint64", frame: mustMarshal(t, []any{wire.TypeInput, uint64(math.MaxUint64), 5}), kind: wire.ErrBadField, typ: wire.TypeInput},
		{name: "input negative seq", frame: mustMarshal(t, []any{wire.TypeInput, -1, 5}), kind: wire.ErrBadField, typ: wire.TypeInput},
		{name: "input float seq", frame: mustMarshal(t, []any{wire.TypeInput, 1.5, 5}), kind: wire.ErrBadField, typ: wire.TypeInput},
		{name: "input without payload", frame: mustMarshal(t, []any{wire.TypeInput, 1}), kind: wire.ErrBadField, typ: wire.TypeInput},
		{name: "input payload cut short", frame: []byte{0x93, byte(wire.TypeInput), 0x01, 0x92, 0x01}, kind: wire.ErrBadField, typ: wire.TypeInput},
		{name: "input payload reserved code", frame: []byte{0x93, byte(wire.TypeInput), 0x01, 0xc1}, kind: wire.ErrBadField, typ: wire.TypeInput},
		{name: "input payload declares a huge string", frame: []byte{0x93, byte(wire.TypeInput), 0x01, 0xdb, 0xff, 0xff, 0xff, 0xff, 'a'}, kind: wire.ErrBadField, typ: wire.TypeInput},
		{name: "input payload declares a huge map", frame: []byte{0x93, byte(wire.TypeInput), 0x01, 0xdf, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02}, kind: wire.ErrBadField, typ: wire.TypeInput},
		{name: "input payload declares a huge ext", frame: []byte{0x93, byte(wire.TypeInput), 0x01, 0xc9, 0x7f, 0xff, 0xff, 0xff, 0x01}, kind: wire.ErrBadField, typ: wire.TypeInput},
		{name: "message without payload", frame: mustMarshal(t, []any{wire.TypeMessage, 9}), kind: wire.ErrBadField, typ: wire.TypeMessage, reqID: 9},
		{name: "message payload cut short", frame: []byte{0x93, byte(wire.TypeMessage), 0x09, 0xa3, 's'}, kind: wire.ErrBadField, typ: wire.TypeMessage, reqID: 9},
		{name: "ping string time", frame: mustMarshal(t, []any{wire.TypePing, "now"}), kind: wire.ErrBadField, typ: wire.TypePing},
		{name: "ping float time", frame: mustMarshal(t, []any{wire.TypePing, 1.5}), kind: wire.ErrBadField, typ: wire.TypePing},
	}...)

	d := wire.NewDecoder()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.kind == nil {
				tc.kind = wire.ErrMalformed
			}
			var m wire.ClientMessage
			checkDecodeError(t, tc, d.DecodeClient(tc.frame, &m))
		})
	}
}

// joinedWithPlayersHeader is a Joined frame whose players field is the given
// raw bytes.
func joinedWithPlayersHeader(tb testing.TB, players ...byte) []byte {
	tb.Helper()
	frame := mustMarshal(tb, []any{wire.TypeJoined, 3, "r", "m", 1, "t", false, 4})
	require.Equal(tb, byte(0x98), frame[0])
	frame[0] = 0x99
	return append(frame, players...)
}

func TestDecodeServerErrors(t *testing.T) {
	long := strings.Repeat("x", wire.MaxIDLength+1)
	cases := append(malformedCases(t), []decodeErrorCase{
		{name: "unknown type", frame: mustMarshal(t, []any{99}), kind: wire.ErrUnknownType, typ: 99},
		{name: "client type", frame: wire.NewEncoder().Hello(wire.Hello{Version: 1}), kind: wire.ErrUnknownType, typ: wire.TypeHello},
		{name: "trailing bytes", frame: append(wire.NewEncoder().OK(wire.OK{ReqID: 4}), 0xc0), kind: wire.ErrMalformed, typ: wire.TypeOK, reqID: 4},

		{name: "welcome without heartbeat", frame: mustMarshal(t, []any{wire.TypeWelcome, 1, 30, 0, 1024}), kind: wire.ErrBadField, typ: wire.TypeWelcome},
		{name: "welcome string tick rate", frame: mustMarshal(t, []any{wire.TypeWelcome, 1, "30", 0, 1024, 1000}), kind: wire.ErrBadField, typ: wire.TypeWelcome},
		{name: "joined int resumed", frame: mustMarshal(t, []any{wire.TypeJoined, 3, "r", "m", 1, "t", 1, 4, []any{1}}), kind: wire.ErrBadField, typ: wire.TypeJoined, reqID: 3},
		{name: "joined room id too long", frame: mustMarshal(t, []any{wire.TypeJoined, 3, long, "m", 1, "t", false, 4, []any{1}}), kind: wire.ErrBadField, typ: wire.TypeJoined, reqID: 3},
		{name: "joined string player", frame: mustMarshal(t, []any{wire.TypeJoined, 3, "r", "m", 1, "t", false, 4, []any{1, "2"}}), kind: wire.ErrBadField, typ: wire.TypeJoined, reqID: 3},
		{name: "joined player beyond 32 bits", frame: mustMarshal(t, []any{wire.TypeJoined, 3, "r", "m", 1, "t", false, 4, []any{uint64(1) << 32}}), kind: wire.ErrBadField, typ: wire.TypeJoined, reqID: 3},
		{name: "joined players not an array", frame: mustMarshal(t, []any{wire.TypeJoined, 3, "r", "m", 1, "t", false, 4, 1}), kind: wire.ErrBadField, typ: wire.TypeJoined, reqID: 3},
		{name: "joined players longer than the frame", frame: joinedWithPlayersHeader(t, 0xdd, 0x10, 0x00, 0x00, 0x00, 0x01), kind: wire.ErrBadField, typ: wire.TypeJoined, reqID: 3},
		{name: "joined without players", frame: mustMarshal(t, []any{wire.TypeJoined, 3, "r", "m", 1, "t", false, 4}), kind: wire.ErrBadField, typ: wire.TypeJoined, reqID: 3},
		{name: "ok string req id", frame: mustMarshal(t, []any{wire.TypeOK, "1"}), kind: wire.ErrBadField, typ: wire.TypeOK},
		{name: "error code beyond 16 bits", frame: mustMarshal(t, []any{wire.TypeError, 3, 70000, "m"}), kind: wire.ErrBadField, typ: wire.TypeError, reqID: 3},
		{name: "error int message", frame: mustMarshal(t, []any{wire.TypeError, 3, 1, 5}), kind: wire.ErrBadField, typ: wire.TypeError, reqID: 3},
		{name: "error message too long", frame: mustMarshal(t, []any{wire.TypeError, 3, 1, strings.Repeat("m", 1<<16+1)}), kind: wire.ErrBadField, typ: wire.TypeError, reqID: 3},
		{name: "player joined negative", frame: mustMarshal(t, []any{wire.TypePlayerJoined, -1}), kind: wire.ErrBadField, typ: wire.TypePlayerJoined},
		{name: "player left without reason", frame: mustMarshal(t, []any{wire.TypePlayerLeft, 1}), kind: wire.ErrBadField, typ: wire.TypePlayerLeft},
		{name: "room event without payload", frame: mustMarshal(t, []any{wire.TypeRoomEvent, 1}), kind: wire.ErrBadField, typ: wire.TypeRoomEvent},
		{name: "room closed room id too long", frame: mustMarshal(t, []any{wire.TypeRoomClosed, long, ""}), kind: wire.ErrBadField, typ: wire.TypeRoomClosed},
		{name: "pong without server time", frame: mustMarshal(t, []any{wire.TypePong, 1}), kind: wire.ErrBadField, typ: wire.TypePong},
	}...)

	d := wire.NewDecoder()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.kind == nil {
				tc.kind = wire.ErrMalformed
			}
			var m wire.ServerMessage
			checkDecodeError(t, tc, d.DecodeServer(tc.frame, &m))
		})
	}
}

// Every strict prefix of a valid frame is refused: cut inside the array
// header or the type it is malformed, cut later it is a bad field (or
// malformed when the cut falls in elements the decoder skips).
func TestTruncatedFrames(t *testing.T) {
	e, d := wire.NewEncoder(), wire.NewDecoder()
	check := func(t *testing.T, frame []byte, decode func([]byte) error) {
		for n := range len(frame) {
			err := decode(frame[:n])
			require.Error(t, err, "prefix of %d bytes", n)
			var de *wire.DecodeError
			require.ErrorAs(t, err, &de)
			assert.True(t, errors.Is(err, wire.ErrMalformed) || errors.Is(err, wire.ErrBadField), "prefix of %d bytes: %v", n, err)
			if n < 2 {
				assert.ErrorIs(t, err, wire.ErrMalformed, "prefix of %d bytes", n)
			}
		}
	}
	for _, tc := range clientCases {
		t.Run(tc.name, func(t *testing.T) {
			var m wire.ClientMessage
			check(t, bytes.Clone(encodeClient(t, e, &tc.msg)), func(b []byte) error { return d.DecodeClient(b, &m) })
		})
	}
	for _, tc := range serverCases {
		t.Run(tc.name, func(t *testing.T) {
			var m wire.ServerMessage
			check(t, bytes.Clone(encodeServer(t, e, &tc.msg)), func(b []byte) error { return d.DecodeServer(b, &m) })
		})
	}
}

// A frame of a few bytes that declares a string of 4 GiB must be refused
// without allocating for it. msgpack's own Skip allocates a megabyte more per
// such frame than the last and keeps the buffer in the decoder.
func TestHugeDeclaredLengthDoesNotAllocate(t *testing.T) {
	d := wire.NewDecoder()
	frames := [][]byte{
		{0x93, byte(wire.TypeInput), 0x01, 0xdb, 0xff, 0xff, 0xff, 0xff},                 // payload str32
		{0x93, byte(wire.TypeInput), 0x01, 0x91, 0xc6, 0xff, 0xff, 0xff, 0xff},           // bin32 inside an array
		{0x93, byte(wire.TypeInput), 0x01, 0xc9, 0xff, 0xff, 0xff, 0xff, 0x01},           // ext32
		{0x93, byte(wire.TypePing), 0x01, 0x81, 0xa1, 'k', 0xdb, 0xff, 0xff, 0xff, 0xff}, // skipped extra element
	}
	var m wire.ClientMessage
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 5 {
		for _, f := range frames {
			require.Error(t, d.DecodeClient(f, &m))
		}
	}
	runtime.ReadMemStats(&after)
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(256<<10), "bytes allocated for 20 tiny frames")
}

// Deeply nested payloads are skipped without recursion.
func TestDeeplyNestedPayload(t *testing.T) {
	frame := []byte{0x93, byte(wire.TypeInput), 0x01}
	for range 100000 {
		frame = append(frame, 0x91)
	}
	frame = append(frame, 0x01)
	var m wire.ClientMessage
	require.NoError(t, wire.NewDecoder().DecodeClient(frame, &m))
	assert.Len(t, m.Input.Payload, 100001)
}

func TestDecodeInputZeroAlloc(t *testing.T) {
	frame := bytes.Clone(wire.NewEncoder().Input(wire.Input{Seq: 123456, Payload: payloadMove}))
	d := wire.NewDecoder()
	var m wire.ClientMessage
	allocs := testing.AllocsPerRun(200, func() {
		if err := d.DecodeClient(frame, &m); err != nil {
			panic(err)
		}
	})
	assert.Zero(t, allocs)
	assert.Equal(t, wire.Input{Seq: 123456, Payload: payloadMove}, m.Input)
}

func TestAppendSnapshotHeadZeroAlloc(t *testing.T) {
	buf := make([]byte, 0, 64)
	allocs := testing.AllocsPerRun(200, func() {
		buf = wire.AppendSnapshotHead(buf[:0], 70000)
	})
	assert.Zero(t, allocs)
	assert.Len(t, buf, 7)
}

// AppendSnapshotHead writes the ack in the shortest form, as the msgpack
// encoder does.
func TestAppendSnapshotHeadForms(t *testing.T) {
	for _, ack := range []uint32{0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, math.MaxUint32} {
		var want bytes.Buffer
		require.NoError(t, msgpack.NewEncoder(&want).EncodeUint(uint64(ack)))
		head := wire.AppendSnapshotHead([]byte{0xaa}, ack)
		assert.Equal(t, []byte{0xaa, 0x90 | wire.SnapshotFields, byte(wire.TypeSnapshot)}, head[:3], "ack %d", ack)
		assert.Equal(t, want.Bytes(), head[3:], "ack %d", ack)
	}
}
