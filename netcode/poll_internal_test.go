//go:build linux

package netcode

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
	return wire.Joined{}, Reply(wire.CodeRejected, "no")
}
func (blockingSession) Leave() error           { return nil }
func (blockingSession) Input(wire.Input) error { return nil }
func (blockingSession) Message([]byte) error   { return nil }
func (blockingSession) Closed(error)           {}

type blockingHandler struct{ s blockingSession }

func (h blockingHandler) Open(*Conn) Session { return h.s }

// A client that resets its connection while its join is being answered
// leaves a socket that reports an error and a hang-up for as long as it is
// in an epoll set. The poller must not see it again until the join is
// answered, or it wakes up at once, again and again: a core spent spinning.
func TestPollerDoesNotSpinOnAHungUpSocketDuringARequest(t *testing.T) {
	cfg := DefaultServerConfig()
	cfg.Pollers = 1
	h := blockingHandler{blockingSession{joining: make(chan struct{}), release: make(chan struct{})}}
	srv, err := NewServer(cfg, h)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx, "test over"))
		require.ErrorIs(t, <-served, ErrServerClosed)
	})

	c := netcodetest.DialHello(t, "ws://"+ln.Addr().String()+cfg.Path)
	c.Send(c.Enc.Join(wire.Join{ReqID: 1, RoomID: "r"}))
	<-h.s.joining
	require.NoError(t, c.NC.(*net.TCPConn).SetLinger(0))
	require.NoError(t, c.NC.Close()) // a reset
	p := srv.pollers[0]
	before := p.wakeups.Load()
	time.Sleep(200 * time.Millisecond)
	woken := p.wakeups.Load() - before
	close(h.s.release)
	assert.Less(t, woken, uint64(20), "the poller woke %d times while the join was pending", woken)
	require.Eventually(t, func() bool { return srv.Conns() == 0 }, 10*time.Second, 5*time.Millisecond,
		"the connection finishes once the join is answered")
}

// What a read leaves unparsed is at most a frame's start; the buffer that
// holds it must not stay as large as the largest read before it.
func TestPendingBytesDoNotPinALargeBuffer(t *testing.T) {
	c := &Conn{pend: make([]byte, 0, pollReadBuffer)}
	c.keepPending([]byte("0123456789"))
	assert.Equal(t, "0123456789", string(c.pend))
	assert.LessOrEqual(t, cap(c.pend), releaseAbove)
	c.keepPending(nil)
	assert.Empty(t, c.pend)
}
