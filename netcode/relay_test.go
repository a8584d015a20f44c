package netcode_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tickroom/tickroom/netcode"
	"github.com/tickroom/tickroom/netcode/internal/wsframe"
	"github.com/tickroom/tickroom/netcode/netcodetest"
	"github.com/tickroom/tickroom/netcode/wire"
)

// These tests run two real servers on 127.0.0.1: a front node, A, whose
// Session answers a join with netcode.Relay to a host node, B, which seats
// the player. A then carries every message both ways unchanged (relay.go).

// relayWait bounds what should happen at once.
const relayWait = 5 * time.Second

// localRoom is the room the front node seats itself; it relays every other.
const localRoom = "local"

// frontSession is A's Session: it seats joins to localRoom and relays the
// rest to upstream. It records every call, so a test can check that A's
// Session sees nothing of a relayed connection after the join.
type frontSession struct {
	upstream string
	mu       sync.Mutex
	calls    []string
	closed   chan error // Closed's cause
}

func (s *frontSession) record(call string) {
	s.mu.Lock()
	s.calls = append(s.calls, call)
	s.mu.Unlock()
}

func (s *frontSession) Join(req wire.Join) (wire.Joined, error) {
	s.record("join " + req.RoomID)
	if req.RoomID == localRoom {
		return wire.Joined{RoomID: localRoom, Mode: req.Mode, Player: 1}, nil
	}
	return wire.Joined{}, netcode.Relay(s.upstream, "b")
}
func (s *frontSession) Leave() error { s.record("leave"); return nil }
func (s *frontSession) Input(in wire.Input) error {
	s.record(fmt.Sprintf("input %d", in.Seq))
	return nil
}
func (s *frontSession) Message([]byte) error { s.record("message"); return nil }
func (s *frontSession) Closed(cause error)   { s.closed <- cause }

func (s *frontSession) recorded() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

type frontHandler struct {
	upstream string
	sessions chan *frontSession
}

func (h frontHandler) Open(*netcode.Conn) netcode.Session {
	s := &frontSession{upstream: h.upstream, closed: make(chan error, 1)}
	h.sessions <- s
	return s
}

// hostSession is B's Session: it seats every join as player 7 and records
// what the client sent. Inputs are kept re-encoded: the encoding is
// deterministic, so they compare byte for byte with what the client wrote.
type hostSession struct {
	conn   *netcode.Conn
	enc    *wire.Encoder // the Session's calling goroutine only
	mu     sync.Mutex
	joins  []wire.Join
	calls  []string
	inputs [][]byte
	closed chan error // Closed's cause
}

func (s *hostSession) Join(req wire.Join) (wire.Joined, error) {
	s.mu.Lock()
	s.joins = append(s.joins, req)
	s.calls = append(s.calls, "join "+req.RoomID)
	s.mu.Unlock()
	return wire.Joined{RoomID: req.RoomID, Mode: req.Mode, Player: 7, Players: []uint32{7}}, nil
}

func (s *hostSession) Leave() error {
	s.mu.Lock()
	s.calls = append(s.calls, "leave")
	s.mu.Unlock()
	return nil
}

func (s *hostSession) Input(in wire.Input) error {
	msg := bytes.Clone(s.enc.Input(in)) // in.Payload aliases the read buffer
	s.mu.Lock()
	s.calls = append(s.calls, fmt.Sprintf("input %d", in.Seq))
	s.inputs = append(s.inputs, msg)
	s.mu.Unlock()
	return nil
}

func (s *hostSession) Message(p []byte) error {
	s.mu.Lock()
	s.calls = append(s.calls, fmt.Sprintf("message %x", p))
	s.mu.Unlock()
	return nil
}

func (s *hostSession) Closed(cause error) { s.closed <- cause }

func (s *hostSession) recorded() (joins []wire.Join, calls []string, inputs [][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]wire.Join(nil), s.joins...), append([]string(nil), s.calls...), append([][]byte(nil), s.inputs...)
}

type hostHandler struct{ sessions chan *hostSession }

func (h hostHandler) Open(c *netcode.Conn) netcode.Session {
	s := &hostSession{conn: c, enc: wire.NewEncoder(), closed: make(chan error, 1)}
	h.sessions <- s
	return s
}

// relayPair is a front node relaying to a host node.
type relayPair struct {
	front, host       *netcode.Server
	frontURL, hostURL string
	fronts            chan *frontSession
	hosts             chan *hostSession
}

// relayConfigs returns the two nodes' configurations for mode, with a close
// grace short enough for tests whose clients do not answer a close.
func relayConfigs(mode readMode) (front, host netcode.ServerConfig) {
	front = mode.config()
	front.CloseGrace = 200 * time.Millisecond
	host = front
	host.ControlQueue = 256 // the tests send bursts of events larger than the default queue
	return front, host
}

// startRelayPair starts the host node and a front node relaying to it, at
// upstream(hostURL) if upstream is not nil (a proxy, an unreachable
// address), until the test ends.
func startRelayPair(t *testing.T, frontCfg, hostCfg netcode.ServerConfig, upstream func(hostURL string) string) *relayPair {
	t.Helper()
	p := &relayPair{fronts: make(chan *frontSession, 4), hosts: make(chan *hostSession, 4)}
	p.host, p.hostURL = startServer(t, hostCfg, hostHandler{sessions: p.hosts})
	to := p.hostURL
	if upstream != nil {
		to = upstream(p.hostURL)
	}
	p.front, p.frontURL = startServer(t, frontCfg, frontHandler{upstream: to, sessions: p.fronts})
	return p
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(relayWait):
		t.Fatalf("no %s within %v", what, relayWait)
		var zero T
		return zero
	}
}

// joinRelayed has c join room through the front node, and returns the host
// node's Session of the relayed connection.
func (p *relayPair) joinRelayed(t *testing.T, c *netcodetest.RawConn, reqID uint32, room string) *hostSession {
	t.Helper()
	c.Send(c.Enc.Join(wire.Join{ReqID: reqID, RoomID: room}))
	j := c.Expect(wire.TypeJoined).Joined
	require.Equal(t, reqID, j.ReqID)
	require.Equal(t, uint32(7), j.Player, "the host node seats the player")
	return recv(t, p.hosts, "host session")
}

// requireCloseError requires that cause is a *netcode.CloseError with code,
// sent by the peer if byPeer, and returns it.
func requireCloseError(t *testing.T, cause error, code wire.CloseCode, byPeer bool) *netcode.CloseError {
	t.Helper()
	var ce *netcode.CloseError
	require.ErrorAs(t, cause, &ce, "got %v", cause)
	assert.Equal(t, code, ce.Code, "cause %v", ce)
	assert.Equal(t, byPeer, ce.ByPeer, "cause %v", ce)
	return ce
}

// requireConnsGone waits until neither node has a connection left.
func (p *relayPair) requireConnsGone(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool { return p.front.Conns() == 0 && p.host.Conns() == 0 },
		relayWait, time.Millisecond, "connections left: front %d, host %d", p.front.Conns(), p.host.Conns())
}

// echoClose answers the server's close frame with code and hangs up, as a
// client should, so that the server need not wait out CloseGrace.
func echoClose(c *netcodetest.RawConn, code wire.CloseCode) {
	c.SendFrame(ws.OpClose, wsframe.CloseBody(uint16(code), ""))
	_ = c.NC.Close()
}

// snapshotSource hands out one full snapshot, encoded once: an offer's
// bytes are immutable, so each offer gets a source of its own.
type snapshotSource struct {
	tick uint64
	body []byte
}

func (s snapshotSource) SnapshotFrame(uint64) *netcode.SnapshotFrame {
	return &netcode.SnapshotFrame{Tick: s.tick, Body: s.body}
}

// roomSnapshot encodes a full snapshot of tick with a tick's worth of
// moving entities.
func roomSnapshot(enc *wire.Encoder, tick uint64) snapshotSource {
	ents := make([]wire.Entity, 1+tick%50)
	for i := range ents {
		ents[i] = wire.Entity{ID: uint32(i + 1), Kind: 2, Fields: [wire.MaxFields]int32{int32(tick), -int32(i)}}
	}
	body := enc.SnapshotBody(tick, time.Now().UnixMilli(), 0, 0, nil, ents)
	return snapshotSource{tick: tick, body: bytes.Clone(body)}
}

// payload returns one MessagePack value, a bin of n bytes that differ from
// message to message, as inputs, room messages and events carry.
func payload(n, salt int) []byte {
	b := binary.BigEndian.AppendUint32([]byte{0xc6}, uint32(n)) // bin 32
	for i := range n {
		b = append(b, byte(i*31+salt))
	}
	return b
}

// A join relayed to the host node reaches it with Hops 1 and the client's
// request id, and the client gets the host's Joined. From then on every
// message goes through unchanged and in order both ways: inputs sent right
// behind the join (before its reply) reach the host after the join, room
// events of every size and snapshots reach the client byte for byte, a Leave
// and a second Join go to the host too, and the front node's Session sees
// nothing after the join it relayed.
func TestRelayCarriesMessagesUnchangedBothWays(t *testing.T) {
	for _, mode := range readModes {
		t.Run(mode.name, func(t *testing.T) {
			frontCfg, hostCfg := relayConfigs(mode)
			p := startRelayPair(t, frontCfg, hostCfg, nil)
			c := netcodetest.DialHello(t, p.frontURL)
			fs := recv(t, p.fronts, "front session")

			// Client to host: the join, and inputs behind it without
			// waiting for its reply.
			var inputs [][]byte
			sendInput := func(seq uint32) {
				msg := bytes.Clone(c.Enc.Input(wire.Input{Seq: seq, Payload: payload(int(seq)*13%300, int(seq))}))
				inputs = append(inputs, msg)
				c.Send(msg)
			}
			c.Send(c.Enc.Join(wire.Join{ReqID: 41, RoomID: "r", Mode: "arena"}))
			for seq := uint32(1); seq <= 20; seq++ {
				sendInput(seq)
			}
			j := c.Expect(wire.TypeJoined).Joined
			assert.Equal(t, uint32(41), j.ReqID, "the host's Joined carries the client's request id")
			assert.Equal(t, uint32(7), j.Player, "the host seats the player")
			assert.Equal(t, "r", j.RoomID)
			hs := recv(t, p.hosts, "host session")
			for seq := uint32(21); seq <= 50; seq++ {
				sendInput(seq)
			}
			c.Send(c.Enc.Message(wire.RoomMessage{ReqID: 42, Payload: []byte{0xa2, 'g', 'g'}})) // "gg"
			assert.Equal(t, uint32(42), c.Expect(wire.TypeOK).OK.ReqID, "the host answers the room message")

			joins, calls, got := hs.recorded()
			require.Len(t, joins, 1)
			assert.Equal(t, wire.Join{ReqID: 41, RoomID: "r", Mode: "arena", Hops: 1}, joins[0])
			require.Len(t, got, len(inputs), "inputs the host got")
			for i := range inputs {
				assert.Equal(t, inputs[i], got[i], "input %d", i+1)
			}
			require.NotEmpty(t, calls)
			assert.Equal(t, "join r", calls[0], "the join reaches the host before the inputs sent behind it")
			assert.Equal(t, "message a26767", calls[len(calls)-1])

			// Host to client: events of every size, and bytes the relay
			// does not need to understand.
			enc := wire.NewEncoder()
			var events [][]byte
			for i, n := range []int{0, 1, 100, 4 << 10, 64 << 10, 300 << 10, 7} {
				events = append(events, bytes.Clone(enc.RoomEvent(wire.RoomEvent{From: uint32(i), Payload: payload(n, i)})))
			}
			events = append(events,
				bytes.Clone(enc.PlayerJoined(wire.PlayerJoined{Player: 8})),
				[]byte("not MessagePack: the relay does not decode what it carries"))
			for _, m := range events {
				hs.conn.Send(m)
			}
			for i, want := range events {
				op, got, err := c.ReadFrame(relayWait)
				require.NoError(t, err, "event %d", i)
				require.Equal(t, ws.OpBinary, op, "event %d", i)
				require.True(t, bytes.Equal(want, got), "event %d: %d bytes, want %d, not the same", i, len(got), len(want))
			}

			// Snapshots: the newest wins at the host, so some may be
			// replaced, but those that come are whole and in tick order.
			const ticks, ack = 30, 50
			frames := make(map[uint64][]byte)
			for tick := uint64(1); tick <= ticks; tick++ {
				src := roomSnapshot(enc, tick)
				frames[tick] = append(wire.AppendSnapshotHead(nil, ack), src.body...)
				hs.conn.OfferSnapshot(src, tick, ack)
			}
			dec := wire.NewDecoder()
			var m wire.ServerMessage
			for last := uint64(0); last < ticks; {
				op, got, err := c.ReadFrame(relayWait)
				require.NoError(t, err, "after tick %d", last)
				require.Equal(t, ws.OpBinary, op)
				require.NoError(t, dec.DecodeServer(got, &m))
				require.Equal(t, wire.TypeSnapshot, m.Type)
				require.Greater(t, m.Snapshot.Tick, last, "snapshots in tick order")
				require.True(t, bytes.Equal(frames[m.Snapshot.Tick], got), "snapshot of tick %d not the host's bytes", m.Snapshot.Tick)
				last = m.Snapshot.Tick
			}

			// A Leave and a second Join go to the host as well.
			c.Send(c.Enc.Leave(wire.Leave{ReqID: 43}))
			assert.Equal(t, uint32(43), c.Expect(wire.TypeOK).OK.ReqID)
			c.Send(c.Enc.Join(wire.Join{ReqID: 44, RoomID: "r2"}))
			j = c.Expect(wire.TypeJoined).Joined
			assert.Equal(t, uint32(44), j.ReqID)
			assert.Equal(t, "r2", j.RoomID)
			joins, calls, _ = hs.recorded()
			require.Len(t, joins, 2)
			assert.Equal(t, []string{"leave", "join r2"}, calls[len(calls)-2:])

			assert.Equal(t, []string{"join r"}, fs.recorded(), "the front's Session sees nothing after the join it relayed")
			assert.Equal(t, uint64(1), p.front.Stats().Relayed.Load())
		})
	}
}

// relayGoroutines counts the goroutines running a relay's code.
func relayGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			count := 0 // goroutines, not frames: one stack may show several relay methods
			for _, g := range strings.Split(string(buf[:n]), "\n\n") {
				if strings.Contains(g, "netcode.(*relay).") {
					count++
				}
			}
			return count
		}
		buf = make([]byte, 2*len(buf))
	}
}

// settledGoroutines returns the number of goroutines once it holds still:
// those that end (a handshake's, a writer's) may take a moment to be gone.
func settledGoroutines(t *testing.T) int {
	t.Helper()
	n := runtime.NumGoroutine()
	require.Eventually(t, func() bool {
		m := runtime.NumGoroutine()
		if m == n {
			return true
		}
		n = m
		return false
	}, relayWait, 20*time.Millisecond)
	return n
}

// A client that closes its relayed connection has its close passed to the
// host: its code (1000 for a close frame without one) and reason reach the
// host's Session as the client's graceful close. Both nodes then let the
// connection go, and no goroutine of the relay is left.
func TestRelayPassesTheClientsCloseToTheHost(t *testing.T) {
	cases := []struct {
		name     string
		body     []byte // the client's close frame
		echo     wire.CloseCode
		code     wire.CloseCode // what the host sees
		reason   string
		graceful bool
	}{
		{"normal", wsframe.CloseBody(uint16(wire.CloseNormal), "bye"), wire.CloseNormal, wire.CloseNormal, "bye", true},
		{"no status code", nil, wire.CloseNormal, wire.CloseNormal, "", true},
		{"going away", wsframe.CloseBody(uint16(wire.CloseGoingAway), "tab closed"), wire.CloseGoingAway, wire.CloseGoingAway, "tab closed", true},
		{"application code", wsframe.CloseBody(4100, "app error"), 4100, 4100, "app error", false},
	}
	for _, mode := range readModes {
		for _, tc := range cases {
			t.Run(mode.name+"/"+tc.name, func(t *testing.T) {
				frontCfg, hostCfg := relayConfigs(mode)
				p := startRelayPair(t, frontCfg, hostCfg, nil)

				// Warm up: the servers' pollers and pingers run once a
				// handshake is through.
				for _, url := range []string{p.frontURL, p.hostURL} {
					w := netcodetest.DialHello(t, url)
					w.SendFrame(ws.OpClose, wsframe.CloseBody(uint16(wire.CloseNormal), ""))
					w.ExpectClose(wire.CloseNormal)
					_ = w.NC.Close()
				}
				recv(t, p.fronts, "warm-up session")
				recv(t, p.hosts, "warm-up session")
				p.requireConnsGone(t)
				before := settledGoroutines(t)

				c := netcodetest.DialHello(t, p.frontURL)
				fs := recv(t, p.fronts, "front session")
				hs := p.joinRelayed(t, c, 1, "r")
				c.Send(c.Enc.Input(wire.Input{Seq: 1, Payload: []byte{1}})) // the fixint 1
				hs.conn.Send(wire.NewEncoder().RoomEvent(wire.RoomEvent{From: 7, Payload: payload(2, 0)}))
				assert.Equal(t, wire.TypeRoomEvent, c.Next(true).Type)
				assert.Equal(t, 2, relayGoroutines(), "a relay's reader and writer")

				c.SendFrame(ws.OpClose, tc.body)
				c.ExpectClose(tc.echo)
				_ = c.NC.Close()

				ce := requireCloseError(t, recv(t, hs.closed, "host's Closed"), tc.code, true)
				assert.Equal(t, tc.reason, ce.Reason)
				assert.Equal(t, tc.graceful, netcode.Graceful(ce))
				requireCloseError(t, recv(t, fs.closed, "front's Closed"), wire.CloseCode(closeCodeOf(tc.body)), true)
				_, calls, _ := hs.recorded()
				assert.Equal(t, []string{"join r", "input 1"}, calls)
				p.requireConnsGone(t)
				require.Eventually(t, func() bool { return runtime.NumGoroutine() <= before && relayGoroutines() == 0 },
					relayWait, 5*time.Millisecond, "goroutines: %d, %d before; relay's: %d", runtime.NumGoroutine(), before, relayGoroutines())
			})
		}
	}
}

// closeCodeOf is the code of a close frame's body, 1005 for none.
func closeCodeOf(body []byte) uint16 {
	code, _, _ := wsframe.ParseClose(body)
	return code
}

// The host's close of a relayed connection reaches the client with its
// code and reason, and both nodes let the connection go.
func TestRelayPassesTheHostsCloseToTheClient(t *testing.T) {
	cases := []struct {
		code   wire.CloseCode
		reason string
	}{
		{wire.CloseKicked, "kicked by an operator"},
		{wire.CloseGoingAway, "node draining"},
		{wire.CloseNormal, "room over"},
		{wire.CloseSessionReplaced, "resumed elsewhere"},
	}
	for _, mode := range readModes {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/%d", mode.name, tc.code), func(t *testing.T) {
				frontCfg, hostCfg := relayConfigs(mode)
				p := startRelayPair(t, frontCfg, hostCfg, nil)
				c := netcodetest.DialHello(t, p.frontURL)
				fs := recv(t, p.fronts, "front session")
				hs := p.joinRelayed(t, c, 1, "r")

				hs.conn.Close(tc.code, tc.reason)
				assert.Equal(t, tc.reason, c.ExpectClose(tc.code))
				echoClose(c, tc.code)

				requireCloseError(t, recv(t, fs.closed, "front's Closed"), tc.code, false)
				requireCloseError(t, recv(t, hs.closed, "host's Closed"), tc.code, false)
				p.requireConnsGone(t)
			})
		}
	}
}

// A host node that goes away, shutting down (its close frame says 1001) or
// cut off without a close frame, closes the relayed client with 1001, on
// which clients reconnect.
func TestRelayClosesTheClientWhenTheHostGoesAway(t *testing.T) {
	cases := []struct {
		name   string
		reason string
		goAway func(t *testing.T, p *relayPair, proxy *netcodetest.Proxy) (wait func())
	}{
		{
			name:   "host shuts down",
			reason: "node draining",
			goAway: func(t *testing.T, p *relayPair, _ *netcodetest.Proxy) func() {
				// Shutdown waits for the host's connection, which waits for
				// the relay's answer to its close.
				done := make(chan error, 1)
				go func() { done <- p.host.Shutdown(context.Background(), "node draining") }()
				return func() { require.NoError(t, recv(t, done, "host's shutdown")) }
			},
		},
		{
			name:   "link cut",
			reason: "the room's node went away",
			goAway: func(t *testing.T, _ *relayPair, proxy *netcodetest.Proxy) func() {
				proxy.CutAll()
				return func() {}
			},
		},
	}
	for _, mode := range readModes {
		for _, tc := range cases {
			t.Run(mode.name+"/"+tc.name, func(t *testing.T) {
				frontCfg, hostCfg := relayConfigs(mode)
				var proxy *netcodetest.Proxy
				p := startRelayPair(t, frontCfg, hostCfg, func(hostURL string) string {
					var url string
					proxy, url = netcodetest.NewProxyURL(t, hostURL)
					return url
				})
				c := netcodetest.DialHello(t, p.frontURL)
				fs := recv(t, p.fronts, "front session")
				hs := p.joinRelayed(t, c, 1, "r")

				wait := tc.goAway(t, p, proxy)
				assert.Equal(t, tc.reason, c.ExpectClose(wire.CloseGoingAway))
				echoClose(c, wire.CloseGoingAway)
				wait()

				requireCloseError(t, recv(t, fs.closed, "front's Closed"), wire.CloseGoingAway, false)
				recv(t, hs.closed, "host's Closed")
				p.requireConnsGone(t)
			})
		}
	}
}

// A join whose node cannot be reached (nothing listens, no WebSocket
// endpoint there, no answer to the Hello) gets an Error room_moving with
// its request id, and the connection stays the front node's: a join there
// is seated, and inputs reach the front's Session.
func TestRelayToAnUnreachableNodeAnswersRoomMoving(t *testing.T) {
	cases := []struct {
		name     string
		upstream func(t *testing.T, hostURL string) string
	}{
		{"nothing listens", func(t *testing.T, _ string) string {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			addr := ln.Addr().String()
			require.NoError(t, ln.Close())
			return "ws://" + addr + "/ws"
		}},
		{"no WebSocket endpoint", func(t *testing.T, hostURL string) string {
			return strings.TrimSuffix(hostURL, "/ws") + "/elsewhere"
		}},
		{"no answer to the Hello", func(t *testing.T, _ string) string {
			return silentListener(t)
		}},
	}
	for _, mode := range readModes {
		for _, tc := range cases {
			t.Run(mode.name+"/"+tc.name, func(t *testing.T) {
				frontCfg, hostCfg := relayConfigs(mode)
				frontCfg.HandshakeTimeout = 300 * time.Millisecond // the silent node's Hello times out
				p := startRelayPair(t, frontCfg, hostCfg, func(hostURL string) string { return tc.upstream(t, hostURL) })
				c := netcodetest.DialHello(t, p.frontURL)
				fs := recv(t, p.fronts, "front session")

				c.Send(c.Enc.Join(wire.Join{ReqID: 5, RoomID: "r"}))
				e := c.ExpectError()
				assert.Equal(t, wire.CodeRoomMoving, e.Code, "%s", e.Message)
				assert.Equal(t, uint32(5), e.ReqID)

				c.Send(c.Enc.Join(wire.Join{ReqID: 6, RoomID: localRoom}))
				j := c.Expect(wire.TypeJoined).Joined
				assert.Equal(t, uint32(6), j.ReqID)
				assert.Equal(t, uint32(1), j.Player, "the front node seats it")
				c.Send(c.Enc.Input(wire.Input{Seq: 1}))
				require.Eventually(t, func() bool { return len(fs.recorded()) == 3 }, relayWait, time.Millisecond)
				assert.Equal(t, []string{"join r", "join " + localRoom, "input 1"}, fs.recorded())
				assert.Zero(t, p.front.Stats().Relayed.Load())
				assert.Zero(t, p.host.Conns(), "no connection reached the host")
			})
		}
	}
}

// silentListener accepts TCP connections and never answers, until the test
// ends; it returns its ws:// URL.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		for _, nc := range conns {
			_ = nc.Close()
		}
	})
	return "ws://" + ln.Addr().String() + "/ws"
}

// A relayed client that stops reading while the host floods it with large
// snapshots is closed as a slow consumer (4001) within about the front
// node's WriteTimeout: the front does not buffer the host's messages
// without bound. The host's connection to the front ends with the
// client's. (Whether the host's own sends back up before that, its newest
// snapshot replacing the unsent one, depends on the kernel's buffers and
// the machine's load: it is logged, not required.)
func TestRelayClosesAClientThatDoesNotRead(t *testing.T) {
	for _, mode := range readModes {
		t.Run(mode.name, func(t *testing.T) {
			frontCfg, hostCfg := relayConfigs(mode)
			frontCfg.WriteTimeout = 200 * time.Millisecond
			frontCfg.WriteBuffer = 4 << 10
			p := startRelayPair(t, frontCfg, hostCfg, nil)
			c := netcodetest.DialHello(t, p.frontURL)
			require.NoError(t, c.NC.(*net.TCPConn).SetReadBuffer(4<<10))
			fs := recv(t, p.fronts, "front session")
			hs := p.joinRelayed(t, c, 1, "r")
			// From here on the client reads nothing.

			body := payload(256<<10, 0) // not a snapshot body: the relay does not decode it
			roomDone := make(chan struct{})
			go func() { // the host's room, offering snapshots faster than the client could take them
				defer close(roomDone)
				tick := time.NewTicker(time.Millisecond)
				defer tick.Stop()
				for n := uint64(1); ; n++ {
					select {
					case <-hs.conn.Done():
						return
					case <-time.After(2 * relayWait):
						return
					case <-tick.C:
					}
					hs.conn.OfferSnapshot(snapshotSource{tick: n, body: body}, n, 0)
				}
			}()
			start := time.Now()

			ce := requireCloseError(t, recv(t, fs.closed, "front's Closed"), wire.CloseSlowConsumer, false)
			elapsed := time.Since(start)
			t.Logf("closed after %v (%s); the host wrote %d KiB, %d snapshots replaced",
				elapsed.Round(time.Millisecond), ce.Reason, hs.conn.Stats().BytesOut.Load()>>10, hs.conn.Stats().SnapshotsReplaced.Load())
			recv(t, hs.closed, "host's Closed") // the relay went with the client
			<-roomDone
			p.requireConnsGone(t)
		})
	}
}
