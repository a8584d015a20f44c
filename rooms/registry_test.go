package rooms_test

import (
	"context"
	"fmt"
	"sync"
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

// The node's counters sum its rooms, open and closed: a room closing takes
// nothing away from them, and its own counts stay in.
func TestNodeStatsKeepClosedRooms(t *testing.T) {
	t.Parallel()
	reg := newOpsRegistry(t, nil)
	closing := createTicking(t, reg)
	staying := createTicking(t, reg)
	require.Eventually(t, func() bool { return closing.Stats().Ticks.Load() >= 5 }, 10*time.Second, time.Millisecond,
		"the room ticks")

	before := reg.Stats()
	closing.Close("test")
	stayingTicks, stayingDurations := staying.Stats().Ticks.Load(), staying.Stats().Duration.Count()
	after := reg.Stats()

	assert.Equal(t, before.RoomsCreated, after.RoomsCreated)
	assert.Equal(t, uint64(2), after.RoomsCreated)
	assert.Equal(t, before.RoomsClosed+1, after.RoomsClosed)
	assert.GreaterOrEqual(t, after.Ticks, before.Ticks)
	assert.GreaterOrEqual(t, after.Duration.Count(), before.Duration.Count())
	assert.GreaterOrEqual(t, after.Lateness.Count(), before.Lateness.Count())
	// Every tick of the closed room counts, with the open room's.
	assert.GreaterOrEqual(t, after.Ticks, closing.Stats().Ticks.Load()+stayingTicks)
	assert.GreaterOrEqual(t, after.Duration.Count(), closing.Stats().Duration.Count()+stayingDurations)
}

// Stats read while rooms close never go down.
func TestNodeStatsNeverDecrease(t *testing.T) {
	t.Parallel()
	reg := newOpsRegistry(t, nil)
	stop := make(chan struct{})
	problems := make(chan string, 1)
	scraped := make(chan struct{})
	go func() {
		defer close(scraped)
		var ticks, durations, closed uint64
		for {
			select {
			case <-stop:
				return
			default:
			}
			s := reg.Stats()
			if s.Ticks < ticks || s.Duration.Count() < durations || s.RoomsClosed < closed {
				select {
				case problems <- fmt.Sprintf("went down: ticks %d→%d, durations %d→%d, rooms closed %d→%d",
					ticks, s.Ticks, durations, s.Duration.Count(), closed, s.RoomsClosed):
				default:
				}
			}
			ticks, durations, closed = s.Ticks, s.Duration.Count(), s.RoomsClosed
		}
	}()
	for range 4 {
		batch := make([]*rooms.Room, 8)
		for i := range batch {
			batch[i] = createTicking(t, reg)
		}
		require.Eventually(t, func() bool {
			for _, r := range batch {
				if r.Stats().Ticks.Load() == 0 {
					return false
				}
			}
			return true
		}, 10*time.Second, time.Millisecond)
		var wg sync.WaitGroup
		for _, r := range batch {
			wg.Go(func() { r.Close("test") })
		}
		wg.Wait()
	}
	close(stop)
	<-scraped
	select {
	case p := <-problems:
		t.Fatal(p)
	default:
	}
	assert.Equal(t, uint64(32), reg.Stats().RoomsClosed)
}
