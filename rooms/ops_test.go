package rooms_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tickroom/tickroom/netcode/client"
	"github.com/tickroom/tickroom/netcode/netcodetest"
	"github.com/tickroom/tickroom/rooms"
	"github.com/tickroom/tickroom/rooms/roomstest"
	"github.com/tickroom/tickroom/sim"
)

// newOpsRegistry returns a registry of arena rooms that stay open while
// empty for longer than any of these tests.
func newOpsRegistry(t *testing.T, mutate func(*rooms.Config)) *rooms.Registry {
	t.Helper()
	cfg := rooms.DefaultConfig()
	cfg.EmptyTimeout = time.Minute
	if mutate != nil {
		mutate(&cfg)
	}
	reg, err := rooms.NewRegistry(cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, reg.Close(ctx))
	})
	return reg
}

func createArena(t *testing.T, reg *rooms.Registry) *rooms.Room {
	t.Helper()
	r, err := reg.Create(rooms.RoomOptions{Mode: sim.ArenaMode})
	require.NoError(t, err)
	return r
}

// createTicking creates an arena room with a seat taken, so that it ticks:
// an empty room sleeps.
func createTicking(t *testing.T, reg *rooms.Registry) *rooms.Room {
	t.Helper()
	r := createArena(t, reg)
	require.NoError(t, rooms.SeatWithoutConn(r))
	return r
}

func gameTick(t *testing.T, r *rooms.Room) uint64 {
	t.Helper()
	in, err := r.Inspect()
	require.NoError(t, err)
	return in.GameTick
}

// startStep runs Step in the background and waits until its steps are under
// way (the game ticks again), so that the test can act while it waits.
func startStep(t *testing.T, ctx context.Context, r *rooms.Room, n int) <-chan stepResult {
	t.Helper()
	paused := gameTick(t, r)
	res := make(chan stepResult, 1)
	go func() {
		tick, err := r.Step(ctx, n)
		res <- stepResult{tick, err}
	}()
	require.Eventually(t, func() bool { return gameTick(t, r) > paused }, 10*time.Second, time.Millisecond,
		"the step is under way")
	return res
}

type stepResult struct {
	tick uint64
	err  error
}

func awaitStep(t *testing.T, res <-chan stepResult) stepResult {
	t.Helper()
	select {
	case r := <-res:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("Step did not return within 10s")
		return stepResult{}
	}
}

func isDone(r *rooms.Room) bool {
	select {
	case <-r.Done():
		return true
	default:
		return false
	}
}

func TestPauseResumeStepRefuseWhatDoesNotFit(t *testing.T) {
	t.Parallel()
	r := createArena(t, newOpsRegistry(t, nil))
	ctx := context.Background()

	_, err := r.Step(ctx, 1)
	require.ErrorIs(t, err, rooms.ErrNotPaused, "a running room does not step")
	require.ErrorIs(t, r.Resume(), rooms.ErrNotPaused)

	require.NoError(t, r.Pause())
	assert.True(t, r.Paused())
	require.ErrorIs(t, r.Pause(), rooms.ErrAlreadyPaused)
	for _, n := range []int{0, -1} {
		_, err = r.Step(ctx, n)
		require.ErrorIs(t, err, rooms.ErrInvalidOptions, "%d steps", n)
	}

	res := startStep(t, ctx, r, 600)
	_, err = r.Step(ctx, 1)
	require.ErrorIs(t, err, rooms.ErrStepping, "one step at a time")
	require.NoError(t, r.Resume())
	require.NoError(t, awaitStep(t, res).err)
	assert.False(t, r.Paused())
}

// While paused the game does not step, though the room keeps ticking;
// Step(n) runs exactly n game steps.
func TestStepRunsExactlyNGameSteps(t *testing.T) {
	t.Parallel()
	srv := roomstest.StartDefault(t)
	r, err := srv.Registry.Create(rooms.RoomOptions{Mode: sim.ArenaMode, Private: true})
	require.NoError(t, err)
	c := dial(t, srv.URL, client.DefaultConfig())
	j, err := c.Join(context.Background(), client.JoinOptions{RoomID: r.ID()})
	require.NoError(t, err)

	find := func() (x, y int32, ok bool) {
		f, err := r.Frame()
		require.NoError(t, err)
		for _, e := range f.Entities {
			if e.ID == j.Player {
				return e.Fields[0], e.Fields[1], true
			}
		}
		return 0, 0, false
	}
	position := func() (x, y int32) {
		t.Helper()
		x, y, ok := find()
		require.True(t, ok, "player %d in the frame", j.Player)
		return x, y
	}
	require.Eventually(t, func() bool { _, _, ok := find(); return ok }, 10*time.Second, time.Millisecond,
		"the player shows from the tick after the join")

	// Move horizontally, away from the nearer wall.
	x0, _ := position()
	dir, sign := byte(sim.ArenaRight), int32(1)
	if x0 > sim.DefaultArenaConfig().Width/2 {
		dir, sign = sim.ArenaLeft, -1
	}
	seq, err := c.SendInput([]byte{dir})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		in, err := r.Inspect()
		return err == nil && len(in.Players) == 1 && in.Players[0].LastInputSeq == seq
	}, 10*time.Second, time.Millisecond, "the game applied the input")

	require.NoError(t, r.Pause())
	paused := gameTick(t, r)
	px, py := position()
	tick0 := r.Stats().Ticks.Load()
	require.Eventually(t, func() bool { return r.Stats().Ticks.Load() >= tick0+10 }, 10*time.Second, time.Millisecond,
		"a paused room keeps ticking")
	x, y := position()
	assert.Equal(t, [2]int32{px, py}, [2]int32{x, y}, "nothing moves while paused")
	assert.Equal(t, paused, gameTick(t, r), "the game does not step while paused")
	f, err := r.Frame()
	require.NoError(t, err)
	assert.True(t, f.Paused)
	assert.Greater(t, f.Tick, paused, "the room's tick goes on")

	tick, err := r.Step(context.Background(), 5)
	require.NoError(t, err)
	assert.Greater(t, tick, paused)
	assert.Equal(t, tick, gameTick(t, r))
	x, y = position()
	perTick := int32(12) // 7.2 units a second at 60 Hz, in centi-units
	assert.Equal(t, px+sign*5*perTick, x, "five steps, five moves")
	assert.Equal(t, py, y)
	stateTick, _, err := r.State()
	require.NoError(t, err)
	assert.Equal(t, tick, stateTick)

	// And no more than five.
	tick0 = r.Stats().Ticks.Load()
	require.Eventually(t, func() bool { return r.Stats().Ticks.Load() >= tick0+10 }, 10*time.Second, time.Millisecond)
	x2, _ := position()
	assert.Equal(t, x, x2)
	assert.True(t, r.Paused())
}

func TestStepOnAClosedRoom(t *testing.T) {
	t.Parallel()
	r := createArena(t, newOpsRegistry(t, nil))
	require.NoError(t, r.Pause())
	r.Close("test")
	_, err := r.Step(context.Background(), 1)
	require.ErrorIs(t, err, rooms.ErrRoomClosed)
	require.ErrorIs(t, r.Pause(), rooms.ErrRoomClosed)
	require.ErrorIs(t, r.Resume(), rooms.ErrRoomClosed)
}

// A Step waiting for its steps returns when the room closes.
func TestCloseEndsAWaitingStep(t *testing.T) {
	t.Parallel()
	r := createArena(t, newOpsRegistry(t, nil))
	require.NoError(t, r.Pause())
	res := startStep(t, context.Background(), r, 600)
	r.Close("test")
	require.ErrorIs(t, awaitStep(t, res).err, rooms.ErrRoomClosed)
}

// Resume cancels the steps still to run; the waiting Step returns at once,
// without an error, and the game runs on.
func TestResumeEndsAWaitingStep(t *testing.T) {
	t.Parallel()
	r := createTicking(t, newOpsRegistry(t, nil))
	require.NoError(t, r.Pause())
	res := startStep(t, context.Background(), r, 600)
	require.NoError(t, r.Resume())
	got := awaitStep(t, res)
	require.NoError(t, got.err)
	assert.Positive(t, got.tick)
	assert.False(t, r.Paused())
	resumed := gameTick(t, r)
	require.Eventually(t, func() bool { return gameTick(t, r) > resumed }, 10*time.Second, time.Millisecond,
		"the game steps again")
}

// A Step whose context ends returns the context's error, and its steps not
// yet run are cancelled: the room stays paused and takes a new Step.
func TestStepCancelledByContext(t *testing.T) {
	t.Parallel()
	r := createArena(t, newOpsRegistry(t, nil))
	require.NoError(t, r.Pause())

	ctx, cancel := context.WithCancel(context.Background())
	res := startStep(t, ctx, r, 600)
	cancel()
	got := awaitStep(t, res)
	require.ErrorIs(t, got.err, context.Canceled)
	assert.True(t, r.Paused())

	stopped := gameTick(t, r)
	tick, err := r.Step(context.Background(), 1)
	require.NoError(t, err, "no steps are left over from the cancelled Step")
	assert.Greater(t, tick, stopped)

	// A context that has already ended steps nothing.
	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	_, err = r.Step(done, 600)
	require.ErrorIs(t, err, context.Canceled)
	_, err = r.Step(context.Background(), 1)
	require.NoError(t, err)
}

// An empty room closes after EmptyTimeout, unless an operator paused it;
// resumed, it gets its full timeout and then closes.
func TestPausedEmptyRoomStaysOpen(t *testing.T) {
	t.Parallel()
	const timeout = 200 * time.Millisecond
	reg := newOpsRegistry(t, func(c *rooms.Config) { c.EmptyTimeout = timeout })
	paused := createArena(t, reg)
	running := createArena(t, reg)
	require.NoError(t, paused.Pause())

	select {
	case <-running.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the running empty room did not close")
	}
	assert.False(t, isDone(paused), "the paused room outlived the running one")
	require.Never(t, func() bool { return isDone(paused) }, 3*timeout, 10*time.Millisecond,
		"a paused empty room stays open")
	_, ok := reg.Get(paused.ID())
	assert.True(t, ok)

	require.NoError(t, paused.Resume())
	select {
	case <-paused.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the resumed empty room did not close")
	}
	_, ok = reg.Get(paused.ID())
	assert.False(t, ok)
}

// An operator may kick a player whose seat is held for a resume: the seat
// goes and the others are told.
func TestKickAHeldSeat(t *testing.T) {
	t.Parallel()
	srv := roomstest.StartDefault(t)
	r, err := srv.Registry.Create(rooms.RoomOptions{Mode: sim.ArenaMode, Private: true})
	require.NoError(t, err)
	proxy, viaProxy := netcodetest.NewProxyURL(t, srv.URL)
	cfg := client.DefaultConfig()
	cfg.Reconnect.Attempts = 0
	alice := dial(t, viaProxy, cfg)
	bob := dial(t, srv.URL, client.DefaultConfig())
	ja, err := alice.Join(context.Background(), client.JoinOptions{RoomID: r.ID()})
	require.NoError(t, err)
	_, err = bob.Join(context.Background(), client.JoinOptions{RoomID: r.ID()})
	require.NoError(t, err)

	proxy.CutAll()
	require.Eventually(t, func() bool {
		in, err := r.Inspect()
		return err == nil && len(in.Players) == 2 && !in.Players[0].Connected
	}, 10*time.Second, 5*time.Millisecond, "alice's seat is held")

	require.ErrorIs(t, r.Kick(sim.PlayerID(99), "nobody"), rooms.ErrPlayerNotFound)
	require.NoError(t, r.Kick(sim.PlayerID(ja.Player), "gone too long"))
	left := waitEvent(t, bob, client.EventPlayerLeft)
	assert.Equal(t, ja.Player, left.Player)
	assert.Equal(t, "kicked", left.Reason)
	assert.Equal(t, 1, r.Players())
	require.ErrorIs(t, r.Kick(sim.PlayerID(ja.Player), "again"), rooms.ErrPlayerNotFound)
}

// Join-or-create seats no one in a paused room: an operator is looking at
// it. A join by the room's id still gets in, and once resumed the room
// fills again, oldest first.
func TestJoinOrCreateSkipsPausedRooms(t *testing.T) {
	t.Parallel()
	srv := roomstest.StartDefault(t)
	first := joinArena(t, dial(t, srv.URL, client.DefaultConfig()))
	r, ok := srv.Registry.Get(first.RoomID)
	require.True(t, ok)
	require.NoError(t, r.Pause())

	second := joinArena(t, dial(t, srv.URL, client.DefaultConfig()))
	assert.NotEqual(t, first.RoomID, second.RoomID, "join-or-create opened a new room rather than join the paused one")
	assert.Equal(t, 1, r.Players())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	byID, err := dial(t, srv.URL, client.DefaultConfig()).Join(ctx, client.JoinOptions{RoomID: first.RoomID})
	require.NoError(t, err, "a join by id into a paused room")
	assert.Equal(t, first.RoomID, byID.RoomID)
	assert.Equal(t, 2, r.Players())

	require.NoError(t, r.Resume())
	third := joinArena(t, dial(t, srv.URL, client.DefaultConfig()))
	assert.Equal(t, first.RoomID, third.RoomID, "resumed, the older room fills first")
}

// twoInPausableRoom starts a node whose seats are held for grace, and seats
// Alice (through a proxy the test can cut, never reconnecting) and then Bob
// in a private arena.
func twoInPausableRoom(t *testing.T, grace time.Duration) (r *rooms.Room, proxy *netcodetest.Proxy, alice uint32, bob *client.Client) {
	t.Helper()
	ncfg, rcfg := roomstest.Config()
	rcfg.SeatGrace = grace
	rcfg.EmptyTimeout = time.Minute
	srv := roomstest.Start(t, ncfg, rcfg)
	r, err := srv.Registry.Create(rooms.RoomOptions{Mode: sim.ArenaMode, Private: true})
	require.NoError(t, err)
	proxy, viaProxy := netcodetest.NewProxyURL(t, srv.URL)
	cfg := client.DefaultConfig()
	cfg.Reconnect.Attempts = 0
	a := dial(t, viaProxy, cfg)
	bob = dial(t, srv.URL, client.DefaultConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ja, err := a.Join(ctx, client.JoinOptions{RoomID: r.ID()})
	require.NoError(t, err)
	_, err = bob.Join(ctx, client.JoinOptions{RoomID: r.ID()})
	require.NoError(t, err)
	return r, proxy, ja.Player, bob
}

// seatOf returns player p's seat in r, if r has it. It fails no test, so
// conditions polled by require.Eventually and require.Never may call it.
func seatOf(r *rooms.Room, p uint32) (info rooms.PlayerInfo, found, ok bool) {
	in, err := r.Inspect()
	if err != nil {
		return rooms.PlayerInfo{}, false, false
	}
	for _, pl := range in.Players {
		if uint32(pl.ID) == p {
			return pl, true, true
		}
	}
	return rooms.PlayerInfo{}, false, true
}

// A seat held for a player who dropped keeps its grace while the room is
// paused: nothing in the game changes under an operator's eyes. Resumed,
// the grace runs out and the others are told.
func TestHeldSeatGraceStandsStillWhilePaused(t *testing.T) {
	t.Parallel()
	const grace = 300 * time.Millisecond
	r, proxy, alice, bob := twoInPausableRoom(t, grace)
	require.NoError(t, r.Pause())

	proxy.CutAll()
	require.Eventually(t, func() bool {
		p, found, ok := seatOf(r, alice)
		return ok && found && !p.Connected
	}, 10*time.Second, 5*time.Millisecond, "alice's seat is held")
	require.Never(t, func() bool {
		p, found, ok := seatOf(r, alice)
		return ok && (!found || p.Connected)
	}, 3*grace, 10*time.Millisecond, "the held seat outlasts its grace while the room is paused")

	require.NoError(t, r.Resume())
	left := waitEvent(t, bob, client.EventPlayerLeft)
	assert.Equal(t, alice, left.Player)
	assert.Equal(t, "disconnected", left.Reason)
	require.Eventually(t, func() bool {
		_, found, ok := seatOf(r, alice)
		return ok && !found
	}, 10*time.Second, 5*time.Millisecond, "the seat is released after the resume")
}

// A player who drops while the room is paused gets the whole grace from the
// resume, no more: the pause before the drop froze nothing of it. Inspect
// never reports a seat held since a time still to come.
func TestSeatDroppedWhilePausedGetsItsGraceFromTheResume(t *testing.T) {
	t.Parallel()
	const grace = 300 * time.Millisecond
	r, proxy, alice, bob := twoInPausableRoom(t, grace)
	require.NoError(t, r.Pause())
	require.Never(t, func() bool { return r.Players() != 2 || !r.Paused() }, 3*grace, 10*time.Millisecond,
		"the paused room stands still")

	proxy.CutAll()
	require.Eventually(t, func() bool {
		p, found, ok := seatOf(r, alice)
		return ok && found && !p.Connected
	}, 10*time.Second, 5*time.Millisecond, "alice's seat is held")
	resumed := time.Now()
	require.NoError(t, r.Resume())
	if p, found, ok := seatOf(r, alice); ok && found {
		// The grace runs from HeldSince.
		assert.False(t, p.HeldSince.Before(resumed), "held since %v, before the resume: the grace ran while paused", p.HeldSince)
		assert.False(t, p.HeldSince.After(time.Now()),
			"held since %v, later than now: the pause before the drop was added to the grace", p.HeldSince)
	}
	left := waitEvent(t, bob, client.EventPlayerLeft)
	assert.Equal(t, alice, left.Player)
	assert.Equal(t, "disconnected", left.Reason)
}

// holdableGame is a game whose Step the test can hold, to keep its room's
// goroutine busy: a channel sent on hold is received by the next Step, which
// then waits until it is closed.
type holdableGame struct {
	sim.Game
	hold chan chan struct{}
}

func (g *holdableGame) Step(tk *sim.Tick) {
	select {
	case release := <-g.hold:
		<-release
	default:
	}
	g.Game.Step(tk)
}

// CloseContext returns nil once the room has closed, and the context's
// error if the context ends first; the room closes all the same.
func TestCloseContext(t *testing.T) {
	t.Parallel()
	hold := make(chan chan struct{})
	arena, err := sim.NewArenaFactory(sim.DefaultArenaConfig())
	require.NoError(t, err)
	reg := newOpsRegistry(t, func(c *rooms.Config) {
		c.Modes["holdable"] = func(cfg sim.Config) (sim.Game, error) {
			g, err := arena(cfg)
			if err != nil {
				return nil, err
			}
			return &holdableGame{Game: g, hold: hold}, nil
		}
	})
	create := func() *rooms.Room {
		t.Helper()
		r, err := reg.Create(rooms.RoomOptions{Mode: "holdable"})
		require.NoError(t, err)
		require.NoError(t, rooms.SeatWithoutConn(r)) // an empty room sleeps: the test needs it ticking
		return r
	}

	r := create()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, r.CloseContext(ctx, "test"))
	assert.True(t, isDone(r), "CloseContext returned nil: the room is closed")
	_, ok := reg.Get(r.ID())
	assert.False(t, ok)
	require.NoError(t, r.CloseContext(ctx, "again"), "closing a closed room")

	// A room held in its tick cannot close yet.
	busy := create()
	release := make(chan struct{})
	unhold := sync.OnceFunc(func() { close(release) })
	t.Cleanup(unhold)
	select {
	case hold <- release:
	case <-time.After(10 * time.Second):
		t.Fatal("the room did not tick")
	}
	cancelled, cancelNow := context.WithCancel(context.Background())
	cancelNow()
	require.ErrorIs(t, busy.CloseContext(cancelled, "test"), context.Canceled)
	short, cancelShort := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancelShort()
	require.ErrorIs(t, busy.CloseContext(short, "test"), context.DeadlineExceeded)
	assert.False(t, isDone(busy))

	unhold()
	select {
	case <-busy.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the room did not close once its tick ended")
	}
	_, ok = reg.Get(busy.ID())
	assert.False(t, ok)
	require.NoError(t, busy.CloseContext(ctx, "again"))
}
