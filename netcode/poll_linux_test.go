//go:build linux

package netcode_test

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tickroom/tickroom/netcode"
	"github.com/tickroom/tickroom/netcode/netcodetest"
	"github.com/tickroom/tickroom/netcode/wire"
)

// blockingSession's Join waits until release is closed.
type blockingSession struct {
	joining chan struct{}
	release chan struct{}
}

func (s blockingSession) Join(wire.Join) (wire.Joined, error) {
	close(s.joining)
	<-s.release
	return wire.Joined{}, netcode.Reply(wire.CodeRejected, "no")
}
func (blockingSession) Leave() error           { return nil }
func (blockingSession) Input(wire.Input) error { return nil }
func (blockingSession) Message([]byte) error   { return nil }
func (blockingSession) Closed(error)           {}

type blockingHandler struct{ s blockingSession }

func (h blockingHandler) Open(*netcode.Conn) netcode.Session { return h.s }

// A client that resets its connection while its join is being answered
// leaves a socket that reports an error and a hang-up for as long as it is
// in an epoll set. The poller must not see it again until the join is
// answered, or it wakes up at once, again and again: a core spent spinning.
//
// Reading on arrival: on ticks a poller wakes once a tick whatever its
// sockets report, and this window would count those.
func TestPollerDoesNotSpinOnAHungUpSocketDuringARequest(t *testing.T) {
	cfg := netcode.DefaultServerConfig()
	cfg.Pollers, cfg.ReadMode = 1, netcode.ReadOnArrival
	h := blockingHandler{blockingSession{joining: make(chan struct{}), release: make(chan struct{})}}
	srv, url := startServer(t, cfg, h)

	c := netcodetest.DialHello(t, url)
	c.Send(c.Enc.Join(wire.Join{ReqID: 1, RoomID: "r"}))
	<-h.s.joining
	require.NoError(t, c.NC.(*net.TCPConn).SetLinger(0))
	require.NoError(t, c.NC.Close()) // a reset
	// A window, not a wait for a condition: a healthy poller wakes about
	// never in it, a spinning one tens of thousands of times.
	before := netcode.PollerWakeups(srv)
	time.Sleep(200 * time.Millisecond)
	woken := netcode.PollerWakeups(srv) - before
	close(h.s.release)
	assert.Less(t, woken, uint64(20), "the poller woke %d times while the join was pending", woken)
	require.Eventually(t, func() bool { return srv.Conns() == 0 }, 10*time.Second, 5*time.Millisecond,
		"the connection finishes once the join is answered")
}

// bigSource hands out one large snapshot: more than the kernel's buffers
// hold, so writing it waits until the client reads.
type bigSource struct{ body []byte }

func (s bigSource) SnapshotFrame(uint64) *netcode.SnapshotFrame {
	return &netcode.SnapshotFrame{Tick: 1, Body: s.body}
}

// countingSession counts the inputs it gets.
type countingSession struct{ inputs *atomic.Int32 }

func (countingSession) Join(wire.Join) (wire.Joined, error) { return wire.Joined{}, nil }
func (countingSession) Leave() error                        { return nil }
func (s countingSession) Input(wire.Input) error            { s.inputs.Add(1); return nil }
func (countingSession) Message([]byte) error                { return nil }
func (countingSession) Closed(error)                        {}

// offerOnOpen offers a large snapshot as the connection opens, before a
// poller has it, so that the writer goroutine is waiting in a write, owning
// the socket, when the poller is to take the socket over.
type offerOnOpen struct {
	inputs *atomic.Int32
	body   []byte
}

func (h offerOnOpen) Open(c *netcode.Conn) netcode.Session {
	c.OfferSnapshot(bigSource{body: h.body}, 1, 0)
	// Opening may take a while (a pipelined join answered at once waits
	// for its room's tick): the writer starts on the snapshot meanwhile.
	time.Sleep(50 * time.Millisecond)
	return countingSession{inputs: h.inputs}
}

// A client slow to drain a large snapshot is still read: its input reaches
// the Session while the server's write waits, rather than after the write
// gives up (WriteTimeout). The poller does not wait for the socket's writer
// to take the socket out of the Go runtime's poller.
func TestInputsAreReadWhileAWriteWaits(t *testing.T) {
	cfg := netcode.DefaultServerConfig()
	cfg.Pollers = 1
	cfg.WriteTimeout = 5 * time.Second
	var inputs atomic.Int32
	_, url := startServer(t, cfg, offerOnOpen{inputs: &inputs, body: make([]byte, 32<<20)})

	c := netcodetest.DialHello(t, url) // reads the Welcome, not the snapshot
	time.Sleep(100 * time.Millisecond) // the writer waits on the snapshot by now
	c.Send(c.Enc.Input(wire.Input{Seq: 1, Payload: []byte{1}}))
	require.Eventually(t, func() bool { return inputs.Load() == 1 }, 2*time.Second, 5*time.Millisecond,
		"the input was not read while the server's write waited")
}
