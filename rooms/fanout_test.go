package rooms_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tickroom/tickroom/netcode/client"
	"github.com/tickroom/tickroom/netcode/netcodetest"
	"github.com/tickroom/tickroom/netcode/wire"
	"github.com/tickroom/tickroom/rooms"
	"github.com/tickroom/tickroom/rooms/roomstest"
	"github.com/tickroom/tickroom/sim"
)

// Many clients in several rooms each get a snapshot for (nearly) every tick
// of their room and see every other member of their room move.
func TestManyClientsInSeveralRooms(t *testing.T) {
	const roomCount, perRoom = 4, 6
	ncfg, rcfg := roomstest.Config()
	rcfg.MaxPlayers = perRoom
	srv := roomstest.Start(t, ncfg, rcfg)

	type player struct {
		c *client.Client
		j *client.Joined
	}
	byRoom := map[string][]player{}
	for range roomCount * perRoom {
		c := dial(t, srv.URL, client.DefaultConfig())
		j := joinArena(t, c)
		byRoom[j.RoomID] = append(byRoom[j.RoomID], player{c, j})
	}
	require.Len(t, byRoom, roomCount, "join-or-create fills rooms of %d before opening another", perRoom)

	// Everyone starts moving right.
	for _, ps := range byRoom {
		require.Len(t, ps, perRoom)
		for _, p := range ps {
			_, err := p.c.SendInput([]byte{sim.ArenaRight})
			require.NoError(t, err)
		}
	}

	// Over a window, count snapshots per client against the room's ticks.
	rs := map[string]*rooms.Room{}
	ticks0, snaps0 := map[string]uint64{}, map[*client.Client]uint64{}
	for id, ps := range byRoom {
		r, ok := srv.Registry.Get(id)
		require.True(t, ok)
		rs[id] = r
		ticks0[id] = r.Stats().Ticks.Load()
		for _, p := range ps {
			snaps0[p.c] = p.c.Stats().Snapshots.Load()
		}
	}
	start := time.Now()
	require.Eventually(t, func() bool { return rs[firstKey(rs)].Stats().Ticks.Load() >= ticks0[firstKey(rs)]+120 },
		10*time.Second, 10*time.Millisecond)
	elapsed := time.Since(start)
	for id, ps := range byRoom {
		ticks := rs[id].Stats().Ticks.Load() - ticks0[id]
		for _, p := range ps {
			got := p.c.Stats().Snapshots.Load() - snaps0[p.c]
			rate := float64(got) / elapsed.Seconds()
			t.Logf("room %s player %d: %d snapshots for %d ticks (%.0f/s)", id, p.j.Player, got, ticks, rate)
			// A snapshot per tick, allowing for the window's edges and for
			// the odd snapshot replaced in the mailbox on a loaded machine.
			assert.GreaterOrEqual(t, float64(got), 0.8*float64(ticks), "snapshots per tick, player %d", p.j.Player)
		}
	}

	// Each client sees all members of its room, all of them moving.
	for _, ps := range byRoom {
		for _, p := range ps {
			before := p.c.State()
			require.Len(t, before.Entities, perRoom)
			require.Eventually(t, func() bool {
				now := p.c.State()
				if len(now.Entities) != perRoom {
					return false
				}
				for i, e := range now.Entities {
					if e.Fields[0] <= before.Entities[i].Fields[0] && e.Fields[0] < 100_00 {
						return false
					}
				}
				return true
			}, 5*time.Second, 10*time.Millisecond, "player %d sees everyone move right", p.j.Player)
		}
	}
}

func firstKey[V any](m map[string]V) string {
	for k := range m {
		return k
	}
	return ""
}

// A client whose connection drops reconnects on its own and resumes its
// seat: same player, same entity, a full snapshot first; the others see no
// one leave.
func TestDroppedClientResumesSeat(t *testing.T) {
	srv := roomstest.StartDefault(t)
	proxy, viaProxy := netcodetest.NewProxyURL(t, srv.URL)

	cfg := client.DefaultConfig()
	cfg.Reconnect.Base = 20 * time.Millisecond
	cfg.Reconnect.Cap = 200 * time.Millisecond
	alice := dial(t, viaProxy, cfg)
	bob := dial(t, srv.URL, client.DefaultConfig())
	ja := joinArena(t, alice)
	joinArena(t, bob)

	seq, err := alice.SendInput([]byte{sim.ArenaDown})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return alice.State().Ack == seq }, 5*time.Second, 5*time.Millisecond)

	proxy.CutAll()

	waitEvent(t, alice, client.EventDisconnected)
	resumed := waitEvent(t, alice, client.EventResumed)
	assert.Equal(t, ja.Player, resumed.Player)
	seat := alice.Seat()
	require.NotNil(t, seat)
	assert.True(t, seat.Resumed)
	assert.Equal(t, ja.Player, seat.Player)
	assert.Equal(t, ja.RoomID, seat.RoomID)
	assert.Equal(t, uint64(1), alice.Stats().Resumes.Load())

	// The resumed seat starts with a full snapshot that has Alice in it,
	// and her input sequence carries on where it was.
	require.Eventually(t, func() bool {
		s := alice.State()
		_, ok := entity(s, ja.Player)
		return s.Tick > 0 && ok
	}, 5*time.Second, 5*time.Millisecond)
	next, err := alice.SendInput([]byte{sim.ArenaUp})
	require.NoError(t, err)
	assert.Equal(t, seq+1, next)
	require.Eventually(t, func() bool { return alice.State().Ack == next }, 5*time.Second, 5*time.Millisecond)

	for {
		select {
		case e := <-bob.Events():
			assert.NotEqual(t, client.EventPlayerLeft, e.Kind, "bob saw %+v", e)
			continue
		default:
		}
		break
	}
}

// A player who drops and does not come back loses the seat after the grace
// period, and the others are told.
func TestSeatExpiresAfterGrace(t *testing.T) {
	srv := roomstest.StartDefault(t)
	proxy, viaProxy := netcodetest.NewProxyURL(t, srv.URL)
	cfg := client.DefaultConfig()
	cfg.Reconnect.Attempts = 0
	alice := dial(t, viaProxy, cfg)
	bob := dial(t, srv.URL, client.DefaultConfig())
	ja := joinArena(t, alice)
	jb := joinArena(t, bob)
	require.Equal(t, ja.RoomID, jb.RoomID)

	dropped := time.Now()
	proxy.CutAll()
	left := waitEvent(t, bob, client.EventPlayerLeft)
	assert.Equal(t, ja.Player, left.Player)
	assert.Equal(t, "disconnected", left.Reason)
	_, rcfg := roomstest.Config()
	assert.GreaterOrEqual(t, time.Since(dropped), rcfg.SeatGrace-100*time.Millisecond, "not before the grace period")
	require.Eventually(t, func() bool {
		_, ok := entity(bob.State(), ja.Player)
		return !ok
	}, 5*time.Second, 5*time.Millisecond, "the entity goes with the seat")
}

// A client that never reads does not delay anyone: the others keep getting
// a snapshot a tick, and the server drops the stalled client once its socket
// has not drained for WriteTimeout.
func TestStalledClientDoesNotDelayOthers(t *testing.T) {
	ncfg, rcfg := roomstest.Config()
	// Heartbeats must not be what drops it: only its undrained socket.
	ncfg.PingInterval, ncfg.HeartbeatTimeout = time.Minute, 2*time.Minute
	ncfg.WriteBuffer = 4096
	srv := roomstest.Start(t, ncfg, rcfg)
	bob := dial(t, srv.URL, client.DefaultConfig())
	jb := joinArena(t, bob)
	room, ok := srv.Registry.Get(jb.RoomID)
	require.True(t, ok)

	// The stalled client: a tiny receive buffer, joins, then never reads.
	raw := netcodetest.DialHello(t, srv.URL)
	require.NoError(t, raw.NC.(*net.TCPConn).SetReadBuffer(1024))
	raw.Send(raw.Enc.Join(wire.Join{ReqID: 1, RoomID: jb.RoomID}))
	require.Equal(t, uint32(1), raw.Expect(wire.TypeJoined).Joined.ReqID)
	require.Equal(t, 2, room.Players())

	// Watch Bob's snapshots against the room's ticks until the server has
	// given up on the stalled client.
	ticks0, snaps0 := room.Stats().Ticks.Load(), bob.Stats().Snapshots.Load()
	require.Eventually(t, func() bool { return srv.Net.Conns() == 1 }, 30*time.Second, 20*time.Millisecond,
		"the server drops the client that stopped reading")
	ticks := room.Stats().Ticks.Load() - ticks0
	snaps := bob.Stats().Snapshots.Load() - snaps0
	t.Logf("while the stalled client was connected: %d ticks, Bob got %d snapshots", ticks, snaps)
	assert.GreaterOrEqual(t, float64(snaps), 0.9*float64(ticks))
	assert.Zero(t, bob.Stats().Drops.Load())
}

func waitEvent(t *testing.T, c *client.Client, kind client.EventKind) client.Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e := <-c.Events():
			if e.Kind == kind {
				return e
			}
		case <-timeout:
			t.Fatalf("no event of kind %d within 10s", kind)
		}
	}
}

// Requests are matched to their replies by id, even when many are in flight
// at once on one connection.
func TestConcurrentRequestsGetTheirOwnReplies(t *testing.T) {
	ncfg, rcfg := roomstest.Config()
	ncfg.RequestBurst, ncfg.ControlQueue = 100, 128
	srv := roomstest.Start(t, ncfg, rcfg)
	c := dial(t, srv.URL, client.DefaultConfig())
	other := dial(t, srv.URL, client.DefaultConfig())

	// Not in a room yet: every message fails with not_in_room.
	errs := make(chan error, 20)
	for i := range 20 {
		go func() { errs <- c.SendMessage(context.Background(), []byte{byte(i)}) }()
	}
	for range 20 {
		var er *wire.ErrorReply
		require.ErrorAs(t, <-errs, &er)
		assert.Equal(t, wire.CodeNotInRoom, er.Code)
	}

	j := joinArena(t, c)
	joinArena(t, other)
	const n = 30
	for i := range n {
		go func() { errs <- c.SendMessage(context.Background(), fmt.Appendf([]byte{0xa5}, "msg%02d", i)) }()
	}
	for range n {
		require.NoError(t, <-errs)
	}
	rtt, err := c.Ping(context.Background())
	require.NoError(t, err)
	assert.Positive(t, rtt)

	// The arena relays every message to everyone, in order, from c.
	seen := map[string]bool{}
	for len(seen) < n {
		e := waitEvent(t, other, client.EventRoomMessage)
		assert.Equal(t, j.Player, e.From)
		seen[strings.TrimPrefix(string(e.Payload), "\xa5")] = true
	}
}

// A client that leaves one room and joins another on the same connection
// gets the new room's world, not deltas against the old room's ticks.
func TestChangingRoomsOnOneConnection(t *testing.T) {
	srv := roomstest.StartDefault(t)
	a, err := srv.Registry.Create(rooms.RoomOptions{Mode: sim.ArenaMode})
	require.NoError(t, err)
	b, err := srv.Registry.Create(rooms.RoomOptions{Mode: sim.ArenaMode})
	require.NoError(t, err)
	// Room b has two players, so its entity list differs from a's.
	for range 2 {
		other := dial(t, srv.URL, client.DefaultConfig())
		_, err := other.Join(context.Background(), client.JoinOptions{RoomID: b.ID()})
		require.NoError(t, err)
	}

	c := dial(t, srv.URL, client.DefaultConfig())
	for round := range 3 {
		for _, r := range []*rooms.Room{a, b} {
			j, err := c.Join(context.Background(), client.JoinOptions{RoomID: r.ID()})
			require.NoError(t, err, "round %d room %s", round, r.ID())
			require.Eventually(t, func() bool {
				s := c.State()
				_, me := entity(s, j.Player)
				return me && len(s.Entities) == r.Players()
			}, 5*time.Second, 5*time.Millisecond, "the client sees room %s", r.ID())
			require.NoError(t, c.Leave(context.Background()))
		}
	}
	assert.Zero(t, c.Stats().Drops.Load(), "no broken delta stream")
}

// The Joined reply always comes before the seat's first snapshot.
func TestJoinedComesBeforeTheFirstSnapshot(t *testing.T) {
	srv := roomstest.StartDefault(t)
	r, err := srv.Registry.Create(rooms.RoomOptions{Mode: sim.ArenaMode, MaxPlayers: 100})
	require.NoError(t, err)
	for i := range 40 {
		raw := netcodetest.DialHello(t, srv.URL)
		raw.Send(raw.Enc.Join(wire.Join{ReqID: uint32(i + 1), RoomID: r.ID()}))
		m := raw.Next(false)
		require.Equal(t, wire.TypeJoined, m.Type, "attempt %d: first message after Join", i)
		m = raw.Next(false)
		require.Equal(t, wire.TypeSnapshot, m.Type)
		assert.True(t, m.Snapshot.Full(), "a new seat starts with a full snapshot")
		raw.NC.Close()
	}
}
