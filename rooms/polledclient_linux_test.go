package rooms_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tickroom/tickroom/netcode/client"
	"github.com/tickroom/tickroom/netcode/netcodetest"
	"github.com/tickroom/tickroom/rooms/roomstest"
	"github.com/tickroom/tickroom/sim"
)

func newPoller(t *testing.T) *client.Poller {
	t.Helper()
	p, err := client.NewPoller()
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() }) // after the clients' own cleanups
	return p
}

// Clients read by one poller play like clients that read for themselves:
// replies reach their requests, inputs are acknowledged, events arrive, and
// each client gets about a snapshot per tick with everyone in it.
func TestPolledClientsPlay(t *testing.T) {
	srv := roomstest.StartDefault(t)
	cfg := client.DefaultConfig()
	cfg.Poller = newPoller(t)
	const players = 6
	var cs []*client.Client
	var room string
	for i := range players {
		c := dial(t, srv.URL, cfg)
		j := joinArena(t, c)
		if i == 0 {
			room = j.RoomID
		}
		require.Equal(t, room, j.RoomID)
		cs = append(cs, c)
	}
	joined := waitEvent(t, cs[0], client.EventPlayerJoined)
	assert.NotZero(t, joined.Player)
	rtt, err := cs[0].Ping(context.Background())
	require.NoError(t, err)
	assert.Positive(t, rtt)

	for _, c := range cs {
		seq, err := c.SendInput([]byte{sim.ArenaRight})
		require.NoError(t, err)
		require.Eventually(t, func() bool { return c.State().Ack == seq }, 5*time.Second, 5*time.Millisecond)
	}
	r, ok := srv.Registry.Get(room)
	require.True(t, ok)
	ticks0, snaps0 := r.Stats().Ticks.Load(), cs[players-1].Stats().Snapshots.Load()
	require.Eventually(t, func() bool { return r.Stats().Ticks.Load() >= ticks0+60 }, 10*time.Second, 10*time.Millisecond)
	got := cs[players-1].Stats().Snapshots.Load() - snaps0
	assert.GreaterOrEqual(t, float64(got), 0.8*60, "snapshots over 60 ticks")
	for _, c := range cs {
		assert.Len(t, c.State().Entities, players)
		assert.Zero(t, c.Stats().Drops.Load())
	}

	// A leave and a join on the same connection, both answered through
	// the poller.
	require.NoError(t, cs[0].Leave(context.Background()))
	again := joinArena(t, cs[0])
	assert.Equal(t, room, again.RoomID)
}

// A polled client whose connection drops reconnects and resumes its seat;
// what the server sent right behind the resumed Joined (the full snapshot)
// is not lost between the client's reading and the poller's.
func TestPolledClientResumesSeat(t *testing.T) {
	srv := roomstest.StartDefault(t)
	proxy, viaProxy := netcodetest.NewProxyURL(t, srv.URL)
	cfg := client.DefaultConfig()
	cfg.Poller = newPoller(t)
	cfg.Reconnect.Base = 20 * time.Millisecond
	cfg.Reconnect.Cap = 200 * time.Millisecond
	alice := dial(t, viaProxy, cfg)
	ja := joinArena(t, alice)
	seq, err := alice.SendInput([]byte{sim.ArenaDown})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return alice.State().Ack == seq }, 5*time.Second, 5*time.Millisecond)

	for round := range 3 {
		tick := alice.State().Tick
		proxy.CutAll()
		waitEvent(t, alice, client.EventDisconnected)
		resumed := waitEvent(t, alice, client.EventResumed)
		assert.Equal(t, ja.Player, resumed.Player, "round %d", round)
		require.Eventually(t, func() bool {
			s := alice.State()
			_, ok := entity(s, ja.Player)
			return s.Tick > tick && ok
		}, 5*time.Second, 5*time.Millisecond, "round %d: snapshots again after the resume", round)
		next, err := alice.SendInput([]byte{sim.ArenaUp})
		require.NoError(t, err)
		require.Eventually(t, func() bool { return alice.State().Ack == next }, 5*time.Second, 5*time.Millisecond)
	}
	assert.Equal(t, uint64(3), alice.Stats().Resumes.Load())
}

// Closing a polled client closes it normally; closing the poller ends the
// clients it still reads, for good, with ErrPollerClosed.
func TestPollerCloseEndsItsClients(t *testing.T) {
	srv := roomstest.StartDefault(t)
	p, err := client.NewPoller()
	require.NoError(t, err)
	cfg := client.DefaultConfig()
	cfg.Poller = p
	a := dial(t, srv.URL, cfg)
	b := dial(t, srv.URL, cfg)
	joinArena(t, a)
	joinArena(t, b)

	require.NoError(t, a.Close())
	assert.ErrorIs(t, a.Err(), client.ErrClosed)
	require.Eventually(t, func() bool { return srv.Net.Conns() == 1 }, 5*time.Second, 5*time.Millisecond)

	require.NoError(t, p.Close())
	select {
	case <-b.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a client of a closed poller is still running")
	}
	assert.True(t, errors.Is(b.Err(), client.ErrPollerClosed), "got %v", b.Err())
	assert.Zero(t, b.Stats().Resumes.Load(), "no reconnect through a closed poller")
}
