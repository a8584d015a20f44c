package netcode_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
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

// readModes are the ways a server reads its connections: pollers (epoll,
// the default on Linux) once per tick of a TickReader handler (the default)
// or on arrival, and a reader goroutine per connection (the fallback
// elsewhere). Tests of reading run under all three.
var readModes = []readMode{
	{"pollers on ticks", 2, netcode.ReadOnTick},
	{"pollers on arrival", 2, netcode.ReadOnArrival},
	{"reader goroutines", 0, netcode.ReadOnTick},
}

type readMode struct {
	name    string
	pollers int
	read    netcode.ReadMode
}

func (m readMode) config() netcode.ServerConfig {
	cfg := netcode.DefaultServerConfig()
	cfg.Pollers, cfg.ReadMode = m.pollers, m.read
	return cfg
}

// tickingHandler makes a test's handler a TickReader whose ticks come
// every 2 ms, as a node's rooms would call for reads at theirs.
type tickingHandler struct {
	netcode.Handler
	read func()
}

func (h *tickingHandler) ReadBeforeTicks(read func()) { h.read = read }

// run calls read every 2 ms until stop is called, which waits for it.
func (h *tickingHandler) run() (stop func()) {
	done, quit := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				h.read()
			}
		}
	}()
	return func() { close(quit); <-done }
}

// recordingSession records, in order, what its connection's client sent,
// and whether two of its methods ever ran at once. Join takes a while, as a
// join that waits for a room's tick does.
type recordingSession struct {
	mu         sync.Mutex
	calls      []string
	inFlight   atomic.Int32
	concurrent atomic.Bool
}

func (s *recordingSession) record(call string) func() {
	if s.inFlight.Add(1) > 1 {
		s.concurrent.Store(true)
	}
	s.mu.Lock()
	s.calls = append(s.calls, call)
	s.mu.Unlock()
	return func() { s.inFlight.Add(-1) }
}

func (s *recordingSession) Join(j wire.Join) (wire.Joined, error) {
	defer s.record("join " + j.RoomID)()
	time.Sleep(20 * time.Millisecond)
	return wire.Joined{RoomID: j.RoomID}, nil
}
func (s *recordingSession) Leave() error { defer s.record("leave")(); return nil }
func (s *recordingSession) Input(in wire.Input) error {
	defer s.record(fmt.Sprintf("input %d %x", in.Seq, in.Payload))()
	return nil
}
func (s *recordingSession) Message(p []byte) error {
	defer s.record(fmt.Sprintf("message %x", p))()
	return nil
}
func (s *recordingSession) Closed(error) {}

func (s *recordingSession) snapshot() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

type recordingHandler struct{ sessions chan *recordingSession }

func (h recordingHandler) Open(*netcode.Conn) netcode.Session {
	s := &recordingSession{}
	h.sessions <- s
	return s
}

// A client may send its whole opening at once, Hello and all, without
// waiting for any reply, and a slow network may deliver it a byte at a
// time. Either way the server handles every message, once and in order
// (inputs sent behind a join are not handled before it), answers each
// request in order, and never calls one connection's Session concurrently.
func TestPipelinedMessagesAreHandledInOrder(t *testing.T) {
	enc := wire.NewEncoder()
	var opening []byte
	frame := func(msg []byte) {
		mask := ws.NewMask()
		b := wsframe.AppendHeader(nil, ws.OpBinary, len(msg), &mask)
		n := len(b)
		b = append(b, msg...)
		wsframe.MaskPayload(b[n:], mask)
		opening = append(opening, b...)
	}
	frame(enc.Hello(wire.Hello{Version: wire.Version, Client: "pipeliner"}))
	frame(enc.Input(wire.Input{Seq: 1, Payload: []byte{1}}))
	frame(enc.Join(wire.Join{ReqID: 1, RoomID: "r1"}))
	frame(enc.Input(wire.Input{Seq: 2, Payload: []byte{2}}))
	frame(enc.Message(wire.RoomMessage{ReqID: 2, Payload: []byte{0x2a}}))
	frame(enc.Input(wire.Input{Seq: 3, Payload: []byte{3}}))
	frame(enc.Leave(wire.Leave{ReqID: 3}))
	frame(enc.Join(wire.Join{ReqID: 4, RoomID: "r2"}))
	frame(enc.Input(wire.Input{Seq: 4, Payload: []byte{4}}))
	want := []string{"input 1 01", "join r1", "input 2 02", "message 2a", "input 3 03", "leave", "join r2", "input 4 04"}

	for _, mode := range readModes {
		for _, chunk := range []int{len(opening), 1} {
			t.Run(fmt.Sprintf("%s/%d-byte writes", mode.name, chunk), func(t *testing.T) {
				cfg := mode.config()
				h := recordingHandler{sessions: make(chan *recordingSession, 1)}
				_, url := startServer(t, cfg, h)

				c := netcodetest.Dial(t, url)
				require.NoError(t, c.NC.(*net.TCPConn).SetNoDelay(true))
				for b := opening; len(b) > 0; {
					k := min(chunk, len(b))
					_, err := c.NC.Write(b[:k])
					require.NoError(t, err)
					b = b[k:]
				}
				c.Expect(wire.TypeWelcome)
				assert.Equal(t, uint32(1), c.Expect(wire.TypeJoined).Joined.ReqID)
				for _, id := range []uint32{2, 3} {
					assert.Equal(t, id, c.Expect(wire.TypeOK).OK.ReqID)
				}
				assert.Equal(t, uint32(4), c.Expect(wire.TypeJoined).Joined.ReqID)

				s := <-h.sessions
				require.Eventually(t, func() bool { return len(s.snapshot()) == len(want) }, 5*time.Second, time.Millisecond)
				assert.Equal(t, want, s.snapshot())
				assert.False(t, s.concurrent.Load(), "a connection's Session methods ran concurrently")

				// The connection reads on after all that.
				c.Send(c.Enc.Input(wire.Input{Seq: 5, Payload: []byte{5}}))
				require.Eventually(t, func() bool { return len(s.snapshot()) == len(want)+1 }, 5*time.Second, time.Millisecond)
				assert.Equal(t, "input 5 05", s.snapshot()[len(want)])
			})
		}
	}
}

// startServer runs a netcode server with cfg and h on 127.0.0.1 until the
// test ends and returns it and its ws:// URL.
//
// With pollers reading on ticks (the default), h is made a TickReader
// ticking every 2 ms (tickingHandler).
func startServer(t *testing.T, cfg netcode.ServerConfig, h netcode.Handler) (*netcode.Server, string) {
	t.Helper()
	var ticking *tickingHandler
	if cfg.ReadMode == netcode.ReadOnTick && cfg.Pollers > 0 {
		ticking = &tickingHandler{Handler: h}
		h = ticking
	}
	srv, err := netcode.NewServer(cfg, h)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx, "test over"))
		require.ErrorIs(t, <-served, netcode.ErrServerClosed)
	})
	if ticking != nil {
		t.Cleanup(ticking.run()) // stops before the server shuts down
	}
	return srv, "ws://" + ln.Addr().String() + cfg.Path
}

// With pollers, a welcomed connection that sends and receives nothing has
// no goroutine of its own: that is what lets one node hold ten thousand
// idle players in a few kilobytes each. With a reader goroutine per
// connection, the same count shows one each, which is what the check would
// catch.
func TestIdleConnectionsNeedNoGoroutine(t *testing.T) {
	const conns = 40
	for _, mode := range readModes {
		t.Run(mode.name, func(t *testing.T) {
			cfg := mode.config()
			connsCh := make(chan *netcode.Conn, conns)
			_, url := startServer(t, cfg, connHandler{conns: connsCh})
			netcodetest.DialHello(t, url) // the pollers and the pinger are running
			<-connsCh
			settle := func() int {
				// Goroutines that end (a handshake's, a writer's) may take a
				// moment to be gone.
				var n int
				for range 50 {
					n = runtime.NumGoroutine()
					time.Sleep(10 * time.Millisecond)
					if runtime.NumGoroutine() == n {
						break
					}
				}
				return n
			}
			before := settle()
			for range conns {
				netcodetest.DialHello(t, url)
				<-connsCh
			}
			growth := settle() - before
			t.Logf("%d idle connections: %d more goroutines", conns, growth)
			if mode.pollers > 0 {
				assert.Less(t, growth, conns/4)
			} else {
				assert.GreaterOrEqual(t, growth, conns)
			}
		})
	}
}

// A close sent during the handshake, before a poller has the connection,
// still gives the client only CloseGrace to answer, not what is left of
// the handshake timeout.
func TestCloseDuringTheHandshakeKeepsItsGrace(t *testing.T) {
	for _, mode := range readModes {
		t.Run(mode.name, func(t *testing.T) {
			cfg := mode.config()
			cfg.HandshakeTimeout = time.Minute
			cfg.CloseGrace = 100 * time.Millisecond
			srv, url := startServer(t, cfg, connHandler{conns: make(chan *netcode.Conn, 1)})
			c := netcodetest.Dial(t, url)
			c.Send(c.Enc.Hello(wire.Hello{Version: wire.Version + 1, Client: "from the future"}))
			c.ExpectClose(wire.CloseUnsupportedVersion)
			// The client never closes its end.
			require.Eventually(t, func() bool { return srv.Conns() == 0 }, 20*time.Second, 5*time.Millisecond,
				"the server lets go after CloseGrace, not after the handshake timeout")
		})
	}
}

// A connection the server closes gets the close frame and then, at once,
// an EOF: the server half-closes its side rather than leave the client to
// wait out the close grace (or see a reset). This holds after a poller has
// taken the socket over from the Go runtime.
func TestServerCloseIsFollowedByAnEOF(t *testing.T) {
	for _, mode := range readModes {
		t.Run(mode.name, func(t *testing.T) {
			cfg := mode.config()
			cfg.CloseGrace = time.Minute // the EOF must not be the grace running out
			_, url, conns := startConnServer(t, cfg)

			c := netcodetest.DialHello(t, url)
			conn := <-conns
			// A round trip, so the poller has the socket.
			c.Send(c.Enc.Message(wire.RoomMessage{ReqID: 1, Payload: []byte{0xc0}}))
			c.Expect(wire.TypeOK)

			conn.Close(wire.CloseKicked, "kicked")
			c.ExpectClose(wire.CloseKicked)
			_, _, err := c.ReadFrame(10 * time.Second)
			assert.ErrorIs(t, err, io.EOF, "an EOF after the close frame, not a reset or a timeout")
		})
	}
}
