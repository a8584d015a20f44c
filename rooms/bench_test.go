package rooms

import (
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tickroom/tickroom/netcode"
	"github.com/tickroom/tickroom/netcode/netcodetest"
	"github.com/tickroom/tickroom/netcode/wire"
	"github.com/tickroom/tickroom/sim"
)

// captureHandler hands the server's connections to the benchmark, which
// seats them itself.
type captureHandler struct{ conns chan *netcode.Conn }

func (h captureHandler) Open(c *netcode.Conn) netcode.Session {
	h.conns <- c
	return nopSession{}
}

type nopSession struct{}

func (nopSession) Join(wire.Join) (wire.Joined, error) { return wire.Joined{}, nil }
func (nopSession) Leave() error                        { return nil }
func (nopSession) Input(wire.Input) error              { return nil }
func (nopSession) Message([]byte) error                { return nil }
func (nopSession) Closed(error)                        {}

// benchRoom is a room with players connected over real loopback sockets,
// driven tick by tick by the benchmark instead of its own goroutine.
type benchRoom struct {
	room  *Room
	conns []*netcode.Conn
	moves [][]byte
}

func newBenchRoom(b *testing.B, players int) *benchRoom {
	b.Helper()
	cfg := DefaultConfig()
	cfg.MaxPlayers = players
	reg, err := NewRegistry(cfg)
	require.NoError(b, err)
	ncfg := netcode.DefaultServerConfig()
	ncfg.PingInterval, ncfg.HeartbeatTimeout = time.Hour, 2*time.Hour // no pings inside the measurement
	h := captureHandler{conns: make(chan *netcode.Conn, players)}
	srv, err := netcode.NewServer(ncfg, h)
	require.NoError(b, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	go func() { _ = srv.Serve(ln) }()

	r, err := newRoom(reg, "bench", RoomOptions{Mode: sim.ArenaMode, MaxPlayers: players}, cfg.Modes[sim.ArenaMode], 1)
	require.NoError(b, err)
	br := &benchRoom{room: r}
	var drains sync.WaitGroup
	url := fmt.Sprintf("ws://%s/ws", ln.Addr())
	for range players {
		raw := netcodetest.DialHello(b, url)
		drains.Add(1)
		go func() { // the client side: read and discard, as fast as it comes
			defer drains.Done()
			_, _ = io.Copy(io.Discard, raw.NC)
		}()
		c := <-h.conns
		_, err := r.join(&session{reg: reg, conn: c})
		require.NoError(b, err)
		br.conns = append(br.conns, c)
	}
	dirs := []byte{sim.ArenaRight | sim.ArenaDown, sim.ArenaLeft | sim.ArenaUp}
	for _, d := range dirs {
		br.moves = append(br.moves, []byte{d})
	}
	b.Cleanup(func() {
		_ = srv.Shutdown(b.Context(), "benchmark over")
		drains.Wait()
	})
	return br
}

// tick runs one tick with every player sending a move, then waits until
// every connection's writer has written the snapshot.
func (br *benchRoom) tick(n uint64) {
	for i, m := range br.room.members {
		m.inputs.push(uint32(n), br.moves[(int(n)/120+i)%len(br.moves)])
	}
	want := make([]uint64, 0, 64)
	for _, c := range br.conns {
		want = append(want, c.Stats().MessagesOut.Load()+1)
	}
	br.room.step(n, time.Now())
	for i, c := range br.conns {
		for c.Stats().MessagesOut.Load() < want[i] {
			runtime.Gosched()
		}
	}
}

// settle runs ticks until control messages (join events) are flushed and
// buffers have grown to their steady size.
func (br *benchRoom) settle() uint64 {
	n := uint64(1)
	for ; n < 200; n++ {
		for _, c := range br.conns {
			c.Stats().MessagesOut.Store(0)
		}
		br.tick(n)
	}
	return n
}

// BenchmarkRoomTick measures one arena tick end to end: drain inputs, step
// the game, encode the snapshot once, offer it to every player, and every
// connection's writer writing it to its socket. allocs/op stays the same
// from 16 to 64 players: nothing is allocated per player per tick.
func BenchmarkRoomTick(b *testing.B) {
	for _, players := range []int{16, 64} {
		b.Run(fmt.Sprintf("players=%d", players), func(b *testing.B) {
			br := newBenchRoom(b, players)
			n := br.settle()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				br.tick(n)
				n++
			}
			b.StopTimer()
			perTick := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(perTick/float64(players), "ns/player-tick")
			if len(br.room.frames) > 0 {
				f := br.room.frames[0]
				b.ReportMetric(float64(len(f.Body)+len(wire.AppendSnapshotHead(nil, uint32(n)))+2), "wire-bytes/snapshot")
			}
		})
	}
}

// BenchmarkRoomStep16 is the room goroutine's share of a tick (no sockets):
// drain 16 inputs, step, encode the delta once and the per-tick bookkeeping.
func BenchmarkRoomStep16(b *testing.B) {
	r := arenaRoomWithoutConns(b, 16)
	moves := [][]byte{{sim.ArenaRight | sim.ArenaDown}, {sim.ArenaLeft | sim.ArenaUp}}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		n := uint64(i + 1)
		for j, m := range r.members {
			m.inputs.push(uint32(n), moves[(i/120+j)%2])
		}
		r.step(n, time.Now())
		r.SnapshotFrame(n - 1)
	}
}

// arenaRoomWithoutConns seats players with no connection, for tests of the
// tick itself.
func arenaRoomWithoutConns(t testing.TB, players int) *Room {
	t.Helper()
	cfg := DefaultConfig()
	reg, err := NewRegistry(cfg)
	require.NoError(t, err)
	r, err := newRoom(reg, "test", RoomOptions{Mode: sim.ArenaMode, MaxPlayers: players}, cfg.Modes[sim.ArenaMode], 1)
	require.NoError(t, err)
	for p := sim.PlayerID(1); p <= sim.PlayerID(players); p++ {
		require.NoError(t, r.game.Join(p))
		r.members = append(r.members, &member{id: p, inputs: newInputQueue(cfg.InputQueue, cfg.MaxInputSize)})
	}
	r.nextPlayer = sim.PlayerID(players + 1)
	return r
}
