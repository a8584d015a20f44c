package rooms_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tickroom/tickroom/netcode/client"
	"github.com/tickroom/tickroom/netcode/wire"
	"github.com/tickroom/tickroom/rooms/roomstest"
	"github.com/tickroom/tickroom/sim"
)

func dial(t *testing.T, url string, cfg client.Config) *client.Client {
	t.Helper()
	c, err := client.Dial(context.Background(), url, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func joinArena(t *testing.T, c *client.Client) *client.Joined {
	t.Helper()
	j, err := c.Join(context.Background(), client.JoinOptions{Mode: sim.ArenaMode})
	require.NoError(t, err)
	return j
}

func entity(s client.Snapshot, id uint32) (wire.Entity, bool) {
	for _, e := range s.Entities {
		if e.ID == id {
			return e, true
		}
	}
	return wire.Entity{}, false
}

func TestTwoClientsSeeEachOtherMove(t *testing.T) {
	srv := roomstest.StartDefault(t)
	alice := dial(t, srv.URL, client.DefaultConfig())
	bob := dial(t, srv.URL, client.DefaultConfig())
	ja := joinArena(t, alice)
	jb := joinArena(t, bob)
	require.Equal(t, ja.RoomID, jb.RoomID, "join-or-create fills the open room")
	require.NotEqual(t, ja.Player, jb.Player)

	// Bob sees Alice, and Alice's position as Bob sees it.
	var start wire.Entity
	require.Eventually(t, func() bool {
		var ok bool
		start, ok = entity(bob.State(), ja.Player)
		return ok
	}, 5*time.Second, 10*time.Millisecond)

	// Spawn points are random: move away from the nearer wall, so there
	// is room to go.
	dir, sign := byte(sim.ArenaRight), int32(1)
	if start.Fields[0] > sim.DefaultArenaConfig().Width/2 {
		dir, sign = sim.ArenaLeft, -1
	}
	seq, err := alice.SendInput([]byte{dir})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		e, ok := entity(bob.State(), ja.Player)
		return ok && sign*(e.Fields[0]-start.Fields[0]) > 100 && e.Fields[1] == start.Fields[1]
	}, 5*time.Second, 10*time.Millisecond, "Bob sees Alice move")
	require.Eventually(t, func() bool { return alice.State().Ack >= seq }, 5*time.Second, 10*time.Millisecond,
		"Alice's snapshots acknowledge her input")
}
