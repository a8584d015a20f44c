package netcode_test

import (
	"context"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tickroom/tickroom/netcode"
	"github.com/tickroom/tickroom/netcode/netcodetest"
	"github.com/tickroom/tickroom/netcode/wire"
)

// emptySource hands out an empty full snapshot of its current tick.
type emptySource struct {
	enc  *wire.Encoder
	tick uint64
}

func (s *emptySource) SnapshotFrame(uint64) *netcode.SnapshotFrame {
	b := s.enc.SnapshotBody(s.tick, 0, 0, 0, nil, nil)
	return &netcode.SnapshotFrame{Tick: s.tick, Body: slices.Clone(b)}
}

// joinSession accepts every join and publishes the latest join's request id,
// which the fake room stamps on snapshots as their ack.
type joinSession struct{ seat *atomic.Uint64 }

func (s joinSession) Join(req wire.Join) (wire.Joined, error) {
	s.seat.Store(uint64(req.ReqID))
	return wire.Joined{RoomID: "r", Mode: "m", Player: 1}, nil
}
func (joinSession) Leave() error           { return nil }
func (joinSession) Input(wire.Input) error { return nil }
func (joinSession) Message([]byte) error   { return nil }
func (joinSession) Closed(error)           {}

type joinHandler struct {
	conns chan *netcode.Conn
	seat  *atomic.Uint64
}

func (h joinHandler) Open(c *netcode.Conn) netcode.Session {
	h.conns <- c
	return joinSession{seat: h.seat}
}

// A seat's first snapshot never reaches the client before its Joined, even
// with a room offering snapshots as fast as it can, so that the direct-write
// fast path races every join's reply. (Found in review: the fast path once
// took an empty control channel for "nothing queued" while the writer held
// the Joined it had taken but not yet written.)
func TestJoinedPrecedesTheSeatsSnapshotsUnderRacingOffers(t *testing.T) {
	for _, mode := range readModes {
		t.Run(mode.name, func(t *testing.T) { testJoinedPrecedesSnapshots(t, mode) })
	}
}

func testJoinedPrecedesSnapshots(t *testing.T, mode readMode) {
	cfg := mode.config()
	cfg.RequestRate = 1e6
	var seat atomic.Uint64
	h := joinHandler{conns: make(chan *netcode.Conn, 1), seat: &seat}
	srv, err := netcode.NewServer(cfg, h)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background(), "test over") })

	client := netcodetest.DialHello(t, "ws://"+ln.Addr().String()+cfg.Path)
	conn := <-h.conns

	stop := make(chan struct{})
	roomDone := make(chan struct{})
	go func() { // the room: offers much faster than 60 Hz, stamping the seat as the ack
		defer close(roomDone)
		src := &emptySource{enc: wire.NewEncoder()}
		tick := time.NewTicker(50 * time.Microsecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if s := seat.Load(); s > 0 {
				src.tick++
				conn.OfferSnapshot(src, src.tick, uint32(s))
			}
		}
	}()
	defer func() {
		close(stop)
		<-roomDone
	}()

	const joins = 1000
	early := 0
	for k := uint32(1); k <= joins; k++ {
		client.Send(client.Enc.Join(wire.Join{ReqID: k, RoomID: "r"}))
		for {
			m := client.Next(false)
			if m.Type == wire.TypeSnapshot && m.Snapshot.Ack == k {
				early++
				continue
			}
			if m.Type == wire.TypeJoined && m.Joined.ReqID == k {
				break
			}
		}
	}
	assert.Zero(t, early, "joins whose seat's snapshot arrived before the Joined, of %d", joins)
}
