package netcode_test

import (
	"context"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tickroom/tickroom/netcode"
	"github.com/tickroom/tickroom/netcode/client"
	"github.com/tickroom/tickroom/netcode/internal/wsframe"
	"github.com/tickroom/tickroom/netcode/netcodetest"
	"github.com/tickroom/tickroom/netcode/wire"
)

// idleSession accepts nothing and ignores everything: these tests are about
// connections, not rooms.
type idleSession struct{}

func (idleSession) Join(wire.Join) (wire.Joined, error) {
	return wire.Joined{}, netcode.Reply(wire.CodeRejected, "no rooms here")
}
func (idleSession) Leave() error           { return nil }
func (idleSession) Input(wire.Input) error { return nil }
func (idleSession) Message([]byte) error   { return nil }
func (idleSession) Closed(error)           {}

// connHandler hands each welcomed connection to the test.
type connHandler struct{ conns chan *netcode.Conn }

func (h connHandler) Open(c *netcode.Conn) netcode.Session {
	h.conns <- c
	return idleSession{}
}

// startConnServer runs a netcode server with cfg on 127.0.0.1 until the test
// ends, and returns it, its ws:// URL and the channel of its connections.
func startConnServer(t *testing.T, cfg netcode.ServerConfig) (*netcode.Server, string, <-chan *netcode.Conn) {
	t.Helper()
	h := connHandler{conns: make(chan *netcode.Conn, 16)}
	srv, url := startServer(t, cfg, h)
	return srv, url, h.conns
}

func nextConn(t *testing.T, conns <-chan *netcode.Conn) *netcode.Conn {
	t.Helper()
	select {
	case c := <-conns:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no connection reached the handler within 10s")
		return nil
	}
}

// Every way a connection ends is counted under its reason and kept in
// RecentDisconnects, newest first, with the label its handler gave it, the
// close code and the close reason.
func TestDisconnectReasonsAreRecorded(t *testing.T) {
	for _, mode := range readModes {
		t.Run(mode.name, func(t *testing.T) { testDisconnectReasons(t, mode) })
	}
}

func testDisconnectReasons(t *testing.T, mode readMode) {
	cfg := mode.config()
	cfg.PingInterval = 50 * time.Millisecond
	cfg.HeartbeatTimeout = 400 * time.Millisecond
	cfg.CloseGrace = 200 * time.Millisecond
	srv, url, conns := startConnServer(t, cfg)

	// echoClose answers the server's close frame and hangs up, as a client
	// should, so the server need not wait out CloseGrace.
	echoClose := func(c *netcodetest.RawConn, code wire.CloseCode) {
		c.SendFrame(ws.OpClose, wsframe.CloseBody(uint16(code), ""))
		_ = c.NC.Close()
	}
	cases := []struct {
		name   string
		end    func(t *testing.T, c *netcodetest.RawConn, conn *netcode.Conn)
		reason netcode.DisconnectReason
		code   wire.CloseCode
		detail string
	}{
		{
			name: "client closes with 1000",
			end: func(t *testing.T, c *netcodetest.RawConn, _ *netcode.Conn) {
				c.SendFrame(ws.OpClose, wsframe.CloseBody(uint16(wire.CloseNormal), "bye"))
				assert.Empty(t, c.ExpectClose(wire.CloseNormal), "the server echoes the code")
				_ = c.NC.Close()
			},
			reason: netcode.ReasonClientClosed, code: wire.CloseNormal, detail: "bye",
		},
		{
			name: "client goes away with 1001",
			end: func(t *testing.T, c *netcodetest.RawConn, _ *netcode.Conn) {
				c.SendFrame(ws.OpClose, wsframe.CloseBody(uint16(wire.CloseGoingAway), "tab closed"))
				c.ExpectClose(wire.CloseGoingAway)
				_ = c.NC.Close()
			},
			reason: netcode.ReasonClientClosed, code: wire.CloseGoingAway, detail: "tab closed",
		},
		{
			name: "client closes with its own code",
			end: func(t *testing.T, c *netcodetest.RawConn, _ *netcode.Conn) {
				c.SendFrame(ws.OpClose, wsframe.CloseBody(4100, "app error"))
				c.ExpectClose(4100)
				_ = c.NC.Close()
			},
			reason: netcode.ReasonClientError, code: 4100, detail: "app error",
		},
		{
			name: "TCP closed without a close frame",
			end: func(t *testing.T, c *netcodetest.RawConn, _ *netcode.Conn) {
				_ = c.NC.Close()
			},
			reason: netcode.ReasonLost, code: 1006, detail: "connection lost",
		},
		{
			name: "TCP reset without a close frame",
			end: func(t *testing.T, c *netcodetest.RawConn, _ *netcode.Conn) {
				require.NoError(t, c.NC.(*net.TCPConn).SetLinger(0))
				_ = c.NC.Close()
			},
			reason: netcode.ReasonLost,
		},
		{
			name: "heartbeat timeout",
			end: func(t *testing.T, c *netcodetest.RawConn, _ *netcode.Conn) {
				// Send nothing and read nothing (reading would answer the
				// server's pings): the server gives up on its own.
			},
			reason: netcode.ReasonHeartbeatTimeout, code: wire.CloseHeartbeatTimeout, detail: "no frame within the heartbeat timeout",
		},
		{
			name: "kicked",
			end: func(t *testing.T, c *netcodetest.RawConn, conn *netcode.Conn) {
				conn.Close(wire.CloseKicked, "cheating")
				assert.Equal(t, "cheating", c.ExpectClose(wire.CloseKicked))
				echoClose(c, wire.CloseKicked)
			},
			reason: netcode.ReasonKicked, code: wire.CloseKicked, detail: "cheating",
		},
		{
			name: "text frame",
			end: func(t *testing.T, c *netcodetest.RawConn, _ *netcode.Conn) {
				c.SendFrame(ws.OpText, []byte("hello"))
				c.ExpectClose(wire.CloseUnsupportedData)
				echoClose(c, wire.CloseUnsupportedData)
			},
			reason: netcode.ReasonProtocolError, code: wire.CloseUnsupportedData,
		},
	}

	var labels []string
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := srv.Stats().Disconnects(tc.reason)
			c := netcodetest.DialHello(t, url)
			conn := nextConn(t, conns)
			conn.SetLabel("case=" + tc.name)
			tc.end(t, c, conn)
			require.Eventually(t, func() bool { return srv.Stats().Disconnects(tc.reason) == before+1 },
				10*time.Second, 5*time.Millisecond, "counted as %s", tc.reason)
			recent := srv.RecentDisconnects()
			require.NotEmpty(t, recent)
			d := recent[0]
			assert.Equal(t, "case="+tc.name, d.Label)
			assert.Equal(t, tc.reason, d.Reason, "reason %s, detail %q", d.Reason, d.Detail)
			assert.Equal(t, conn.ID(), d.Conn)
			assert.Equal(t, "netcodetest", d.Client)
			assert.Equal(t, c.NC.LocalAddr().String(), d.Remote)
			if tc.code != 0 {
				assert.Equal(t, tc.code, d.Code)
			}
			if tc.detail != "" {
				assert.Equal(t, tc.detail, d.Detail)
			}
			assert.Positive(t, d.Duration)
			assert.False(t, d.Time.IsZero())
			labels = append(labels, d.Label)
		})
	}

	// Newest first, one entry per connection.
	recent := srv.RecentDisconnects()
	require.Len(t, recent, len(labels))
	for i, d := range recent {
		assert.Equal(t, labels[len(labels)-1-i], d.Label, "entry %d", i)
	}
	assert.Zero(t, srv.Conns())
}

// RecentDisconnects keeps the last DisconnectLog entries, newest first; a
// connection that never completed the handshake is counted but not listed.
func TestRecentDisconnectsIsBounded(t *testing.T) {
	cfg := netcode.DefaultServerConfig()
	cfg.DisconnectLog = 3
	srv, url, conns := startConnServer(t, cfg)

	for i := range 5 {
		c := netcodetest.DialHello(t, url)
		nextConn(t, conns).SetLabel(string(rune('a' + i)))
		_ = c.NC.Close()
		require.Eventually(t, func() bool { return srv.Stats().Disconnects(netcode.ReasonLost) == uint64(i+1) },
			10*time.Second, 5*time.Millisecond)
	}
	// Not welcomed: a TCP connection that never says hello.
	nc, err := net.Dial("tcp", url[len("ws://"):len(url)-len(cfg.Path)])
	require.NoError(t, err)
	require.NoError(t, nc.Close())
	require.Eventually(t, func() bool { return srv.Stats().Disconnects(netcode.ReasonHandshakeFailed) == 1 },
		10*time.Second, 5*time.Millisecond)

	var got []string
	for _, d := range srv.RecentDisconnects() {
		got = append(got, d.Label)
	}
	assert.Equal(t, []string{"e", "d", "c"}, got)
}

// The server's pings carry their send time; the pong that echoes it gives
// the connection's RTT.
func TestConnRTTFromPings(t *testing.T) {
	cfg := netcode.DefaultServerConfig()
	cfg.PingInterval = 50 * time.Millisecond
	_, url, conns := startConnServer(t, cfg)

	c, err := client.Dial(context.Background(), url, client.DefaultConfig())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	conn := nextConn(t, conns)
	assert.Zero(t, conn.RTT(), "no RTT before the first pong")
	require.Eventually(t, func() bool { return conn.RTT() > 0 }, 10*time.Second, 5*time.Millisecond,
		"the client answers pings, which gives an RTT")
	assert.Less(t, conn.RTT(), time.Minute)
}

// Only a pong that echoes the server's latest ping gives an RTT: a client
// may send any pong, and a forged stamp (zero, "before the epoch", or any
// made-up time) must not show as its RTT.
func TestForgedPongsGiveNoRTT(t *testing.T) {
	cfg := netcode.DefaultServerConfig()
	cfg.PingInterval = time.Hour // no pings of the server's own
	cfg.HeartbeatTimeout = 2 * time.Hour
	srv, url, conns := startConnServer(t, cfg)

	c := netcodetest.DialHello(t, url)
	conn := nextConn(t, conns)
	stamp := func(ns uint64) []byte { return binary.BigEndian.AppendUint64(nil, ns) }
	for _, p := range [][]byte{
		[]byte("not a timestamp"),
		stamp(0),
		stamp(1),
		stamp(1<<64 - 1), // -1 ns as a signed duration
		stamp(uint64(time.Millisecond)),
	} {
		c.SendFrame(ws.OpPong, p)
	}
	// The pong to this ping comes back after the server read the pongs
	// above.
	c.SendFrame(ws.OpPing, []byte("sync"))
	op, p, err := c.ReadFrame(5 * time.Second)
	require.NoError(t, err)
	require.Equal(t, ws.OpPong, op)
	require.Equal(t, "sync", string(p))
	assert.Zero(t, conn.RTT())
	assert.Equal(t, 1, srv.Conns(), "the connection stays open")
}
