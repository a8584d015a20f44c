package rooms_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tickroom/tickroom/netcode/client"
	"github.com/tickroom/tickroom/netcode/wire"
	"github.com/tickroom/tickroom/rooms"
	"github.com/tickroom/tickroom/rooms/roomstest"
	"github.com/tickroom/tickroom/sim"
)

func TestRegistryCreateGetListClose(t *testing.T) {
	reg, err := rooms.NewRegistry(rooms.DefaultConfig())
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, reg.Close(context.Background())) })

	a, err := reg.Create(rooms.RoomOptions{Mode: sim.ArenaMode, MaxPlayers: 4, Private: true, Metadata: map[string]string{"map": "dust"}})
	require.NoError(t, err)
	b, err := reg.Create(rooms.RoomOptions{Mode: sim.ArenaMode})
	require.NoError(t, err)
	assert.NotEqual(t, a.ID(), b.ID())
	assert.Equal(t, 4, a.MaxPlayers())
	assert.True(t, a.Private())
	assert.Equal(t, rooms.DefaultConfig().MaxPlayers, b.MaxPlayers(), "0 means the configured default")

	got, ok := reg.Get(a.ID())
	require.True(t, ok)
	assert.Same(t, a, got)
	assert.Equal(t, []*rooms.Room{a, b}, reg.List())

	a.Close("test")
	_, ok = reg.Get(a.ID())
	assert.False(t, ok, "a closed room is gone from the registry")
	assert.Equal(t, []*rooms.Room{b}, reg.List())

	_, err = reg.Create(rooms.RoomOptions{Mode: "chess"})
	require.ErrorIs(t, err, rooms.ErrUnknownMode)
	_, err = reg.Create(rooms.RoomOptions{Mode: sim.ArenaMode, MaxPlayers: -1})
	require.Error(t, err)
}

func TestRegistryBoundsRooms(t *testing.T) {
	cfg := rooms.DefaultConfig()
	cfg.MaxRooms = 2
	reg, err := rooms.NewRegistry(cfg)
	require.NoError(t, err)
	for range 2 {
		_, err := reg.Create(rooms.RoomOptions{Mode: sim.ArenaMode})
		require.NoError(t, err)
	}
	_, err = reg.Create(rooms.RoomOptions{Mode: sim.ArenaMode})
	require.ErrorIs(t, err, rooms.ErrTooManyRooms)

	require.NoError(t, reg.Close(context.Background()))
	assert.Empty(t, reg.List(), "Close stops every room")
	_, err = reg.Create(rooms.RoomOptions{Mode: sim.ArenaMode})
	require.ErrorIs(t, err, rooms.ErrClosed)
}

func TestNewRegistryValidatesConfig(t *testing.T) {
	for name, mutate := range map[string]func(*rooms.Config){
		"tick rate":   func(c *rooms.Config) { c.TickRate = 0 },
		"max players": func(c *rooms.Config) { c.MaxPlayers = 0 },
		"history":     func(c *rooms.Config) { c.SnapshotHistory = 1 },
		"input size":  func(c *rooms.Config) { c.MaxInputSize = 1000 },
		"no modes":    func(c *rooms.Config) { c.Modes = nil },
		"nil factory": func(c *rooms.Config) { c.Modes = map[string]sim.Factory{"x": nil} },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := rooms.DefaultConfig()
			mutate(&cfg)
			_, err := rooms.NewRegistry(cfg)
			require.Error(t, err)
		})
	}
}

func TestEmptyRoomsCloseAfterTimeout(t *testing.T) {
	cfg := rooms.DefaultConfig()
	cfg.EmptyTimeout = 200 * time.Millisecond
	reg, err := rooms.NewRegistry(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, reg.Close(context.Background())) })

	r, err := reg.Create(rooms.RoomOptions{Mode: sim.ArenaMode})
	require.NoError(t, err)
	select {
	case <-r.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("an empty room did not close")
	}
	_, ok := reg.Get(r.ID())
	assert.False(t, ok)
}

// A room the last player left closes after the timeout, not before, and a
// closed room tells its members.
func TestRoomLifecycleWithPlayers(t *testing.T) {
	ncfg, rcfg := roomstest.Config()
	rcfg.EmptyTimeout = 300 * time.Millisecond
	srv := roomstest.Start(t, ncfg, rcfg)

	c := dial(t, srv.URL, client.DefaultConfig())
	j := joinArena(t, c)
	r, ok := srv.Registry.Get(j.RoomID)
	require.True(t, ok)
	require.Never(t, func() bool {
		select {
		case <-r.Done():
			return true
		default:
			return false
		}
	}, 3*rcfg.EmptyTimeout, 20*time.Millisecond, "a room with a player stays open")

	require.NoError(t, c.Leave(context.Background()))
	assert.Nil(t, c.Seat())
	<-r.Done()

	// Closing a room with players: they are told and lose their seats,
	// but keep their connections.
	j2 := joinArena(t, c)
	r2, ok := srv.Registry.Get(j2.RoomID)
	require.True(t, ok)
	r2.Close("maintenance")
	e := waitEvent(t, c, client.EventRoomClosed)
	assert.Equal(t, "maintenance", e.Reason)
	assert.Nil(t, c.Seat())
	_, err := c.Ping(context.Background())
	require.NoError(t, err, "the connection stays open")
	joinArena(t, c)
}

// Join-or-create with a room size groups players into rooms of exactly that
// many seats, apart from rooms of other sizes; sizes past MaxRoomSize are
// refused.
func TestJoinOrCreateByRoomSize(t *testing.T) {
	srv := roomstest.StartDefault(t)
	join := func(size int) *client.Joined {
		c := dial(t, srv.URL, client.DefaultConfig())
		j, err := c.Join(context.Background(), client.JoinOptions{Mode: sim.ArenaMode, MaxPlayers: size})
		require.NoError(t, err)
		return j
	}
	small := []*client.Joined{join(2), join(2), join(2)}
	any := join(0)
	assert.Equal(t, 2, small[0].MaxPlayers)
	assert.Equal(t, small[0].RoomID, small[1].RoomID, "two seats, filled together")
	assert.NotEqual(t, small[0].RoomID, small[2].RoomID, "the third opens another room of 2")
	assert.Equal(t, 2, small[2].MaxPlayers)
	assert.Equal(t, small[2].RoomID, any.RoomID, "no size: any room of the mode with a free seat")
	assert.Equal(t, rooms.DefaultConfig().MaxPlayers, join(0).MaxPlayers, "once all are full, a room of the default size")

	c := dial(t, srv.URL, client.DefaultConfig())
	_, err := c.Join(context.Background(), client.JoinOptions{Mode: sim.ArenaMode, MaxPlayers: 100_000})
	var er *wire.ErrorReply
	require.ErrorAs(t, err, &er)
	assert.Equal(t, wire.CodeBadRequest, er.Code)
}
