//go:build linux

package netcode_test

import (
	"net"
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
func TestPollerDoesNotSpinOnAHungUpSocketDuringARequest(t *testing.T) {
	cfg := netcode.DefaultServerConfig()
	cfg.Pollers = 1
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
