package rooms

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tickroom/tickroom/sim"
)

func TestClockArithmetic(t *testing.T) {
	period := time.Second / 60
	c := newClock(period, 1, 10, fakeWaiter)
	at := func(k uint64, plus time.Duration) time.Time { return c.due(k).Add(plus) }

	assert.Equal(t, c.origin, c.due(0))
	assert.Equal(t, c.origin.Add(3*period), c.due(3))
	assert.Equal(t, uint64(0), c.tickAt(c.origin.Add(-time.Second)), "before the origin")
	assert.Equal(t, uint64(5), c.tickAt(at(5, 0)), "a tick is due at its instant")
	assert.Equal(t, uint64(5), c.tickAt(at(6, -1)))
	assert.Equal(t, uint64(6), c.tickAt(at(6, 0)))

	tests := []struct {
		name       string
		now        time.Time
		first      uint64
		wantBase   int64
		wantBefore uint64
	}{
		{"between node ticks: tick 1 at the next", at(10, period/2), 1, 10, 10},
		{"on a node tick: tick 1 at the one after", at(10, 0), 1, 10, 10},
		{"a room continuing at tick 500", at(10, period/2), 500, 11 - 500, 10},
		{"at the origin", at(0, 0), 1, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base, before := c.baseFor(tt.now, tt.first)
			assert.Equal(t, tt.wantBase, base)
			assert.Equal(t, tt.wantBefore, before)
			// Its first tick is due at the first node tick after now.
			first := c.due(uint64(base + int64(tt.first)))
			assert.True(t, first.After(tt.now) && !first.After(tt.now.Add(period)), "first tick due %v, now %v", first, tt.now)
		})
	}
}

// stepRecord is one Step a recordingGame saw.
type stepRecord struct {
	tick uint64
	at   time.Time
}

// recordingGame is an arena that records each step's tick number and time,
// can be made to block in one step, and checks that the room never calls it
// from two goroutines at once.
type recordingGame struct {
	sim.Game
	mu      sync.Mutex
	steps   []stepRecord
	blockAt uint64        // the step of this tick blocks for blockFor
	block   time.Duration // (fake time under synctest)
	inside  atomic.Int32
	overlap atomic.Bool
}

func (g *recordingGame) enter() {
	if g.inside.Add(1) != 1 {
		g.overlap.Store(true)
	}
}
func (g *recordingGame) leave() { g.inside.Add(-1) }

func (g *recordingGame) Step(t *sim.Tick) {
	g.enter()
	defer g.leave()
	g.mu.Lock()
	g.steps = append(g.steps, stepRecord{t.Number, time.Now()})
	block := g.blockAt == t.Number
	g.mu.Unlock()
	if block {
		time.Sleep(g.block)
	}
	g.Game.Step(t)
}

func (g *recordingGame) Join(p sim.PlayerID) error {
	g.enter()
	defer g.leave()
	return g.Game.Join(p)
}

func (g *recordingGame) Leave(p sim.PlayerID) {
	g.enter()
	defer g.leave()
	g.Game.Leave(p)
}

func (g *recordingGame) recorded() []stepRecord {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]stepRecord(nil), g.steps...)
}

// fakeWaiter has the clock wait on a Go timer, which the fake clock of a
// synctest bubble serves; the real precise wait is a timerfd the fake clock
// knows nothing of.
func fakeWaiter() (waiter, error) { return newTimerWaiter(), nil }

// stallingWaiter is a timer waiter whose next wait, once stall is sent
// on, oversleeps by extra: a stalled machine.
type stallingWaiter struct {
	*timerWaiter
	stall chan struct{}
	extra time.Duration
}

func (w *stallingWaiter) wait(d time.Duration) error {
	select {
	case <-w.stall:
		time.Sleep(d + w.extra)
		return nil
	default:
		return w.timerWaiter.wait(d)
	}
}

// clockNode is a registry whose rooms run recordingGames; with fake, its
// clock waits on fakeWaiter.
type clockNode struct {
	reg   *Registry
	mu    sync.Mutex
	games []*recordingGame
	next  func(g *recordingGame)
}

func newClockNode(t *testing.T, workers int, fake bool) *clockNode {
	t.Helper()
	n := &clockNode{}
	cfg := DefaultConfig()
	cfg.Workers = workers
	cfg.EmptyTimeout = time.Hour
	arena := cfg.Modes[sim.ArenaMode]
	cfg.Modes = map[string]sim.Factory{"rec": func(sc sim.Config) (sim.Game, error) {
		inner, err := arena(sc)
		if err != nil {
			return nil, err
		}
		g := &recordingGame{Game: inner}
		n.mu.Lock()
		if n.next != nil {
			n.next(g)
			n.next = nil
		}
		n.games = append(n.games, g)
		n.mu.Unlock()
		return g, nil
	}}
	reg, err := NewRegistry(cfg)
	require.NoError(t, err)
	if fake {
		reg.clock.newWaiter = fakeWaiter
	}
	n.reg = reg
	return n
}

// room creates a ticking room (a seat taken) and returns it with its game;
// prepare, if not nil, sets the game up before the room first runs.
func (n *clockNode) room(t *testing.T, opts RoomOptions, prepare func(*recordingGame)) (*Room, *recordingGame) {
	t.Helper()
	opts.Mode = "rec"
	n.mu.Lock()
	n.next = prepare
	n.mu.Unlock()
	r, err := n.reg.Create(opts)
	require.NoError(t, err)
	require.NoError(t, SeatWithoutConn(r))
	n.mu.Lock()
	defer n.mu.Unlock()
	return r, n.games[len(n.games)-1]
}

func (n *clockNode) close(t *testing.T) {
	t.Helper()
	require.NoError(t, n.reg.Close(context.Background()))
}

// Rooms created at different moments tick in phase, on the node's ticks,
// each numbering its own ticks from 1, and a room can start at any tick
// number on the same schedule.
func TestRoomsTickInPhaseOnTheNodeClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newClockNode(t, 2, true)
		period := n.reg.clock.period
		a, ga := n.room(t, RoomOptions{}, nil)
		time.Sleep(5*period + period/3) // between node ticks
		b, gb := n.room(t, RoomOptions{}, nil)
		time.Sleep(period / 2)
		c, gc := n.room(t, RoomOptions{FirstTick: 1001}, nil)
		time.Sleep(20 * period)
		n.close(t)

		for name, g := range map[string]*recordingGame{"a": ga, "b": gb, "c": gc} {
			steps := g.recorded()
			require.NotEmpty(t, steps, name)
			for i, s := range steps {
				// Fake time: work takes none, so a tick starts exactly when
				// its node tick is due.
				off := s.at.Sub(n.reg.clock.origin)
				assert.Zero(t, off%period, "%s: step %d at %v is not on a node tick", name, i, off)
				if i > 0 {
					assert.Equal(t, steps[i-1].tick+1, s.tick, "%s: ticks run one after the other", name)
					assert.Equal(t, period, s.at.Sub(steps[i-1].at), "%s: a period apart", name)
				}
			}
		}
		assert.Equal(t, uint64(1), ga.recorded()[0].tick, "a room's first tick is 1")
		assert.Equal(t, uint64(1), gb.recorded()[0].tick)
		assert.Equal(t, uint64(1001), gc.recorded()[0].tick, "a room told to start at tick 1001 does")
		// In phase: b, created a third of a period after a's tick 5, first
		// ticked at the next node tick, together with a's tick 6.
		assert.Equal(t, ga.recorded()[5].at, gb.recorded()[0].at)
		for _, r := range []*Room{a, b, c} {
			st := r.Stats()
			assert.Zero(t, st.Overruns.Load())
			assert.Equal(t, time.Duration(0), st.Lateness.Max(), "fake time: no tick started late")
			// The schedule the room reports is the one it kept.
			first := r.Start().Add(time.Duration(r.firstTick) * period)
			assert.True(t, first.After(r.Created()) && !first.After(r.Created().Add(period)))
		}
	})
}

// A slow game step delays only its own room: it skips the ticks whose slots
// passed whole (counted as overruns, not run back to back) and runs the one
// due, late; the other rooms keep their schedule, even with one worker,
// which the slow room holds.
func TestASlowRoomDelaysOnlyItself(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newClockNode(t, 1, true)
		period := n.reg.clock.period
		slow, gs := n.room(t, RoomOptions{}, func(g *recordingGame) {
			g.blockAt, g.block = 5, 4*period+period/2
		})
		var others []*Room
		var games []*recordingGame
		for range 3 {
			r, g := n.room(t, RoomOptions{}, nil)
			others = append(others, r)
			games = append(games, g)
		}
		time.Sleep(30 * period)
		n.close(t)

		steps := gs.recorded()
		var ticks []uint64
		for i, s := range steps {
			ticks = append(ticks, s.tick)
			if i > 0 {
				assert.GreaterOrEqual(t, s.at.Sub(steps[i-1].at), period/2, "no burst: tick %d came %v after the one before",
					s.tick, s.at.Sub(steps[i-1].at))
			}
		}
		require.GreaterOrEqual(t, len(ticks), 7)
		assert.Equal(t, []uint64{1, 2, 3, 4, 5, 9, 10}, ticks[:7],
			"the step of tick 5 took 4.5 periods: ticks 6-8 are skipped, tick 9 runs half a period late")
		assert.Equal(t, uint64(3), slow.Stats().Overruns.Load())
		assert.InDelta(t, float64(period/2), float64(slow.Stats().Lateness.Max()), float64(histogramStep))
		for i, r := range others {
			st := r.Stats()
			assert.Zero(t, st.Overruns.Load(), "room %d lost no tick", i)
			assert.Less(t, st.Lateness.Max(), time.Millisecond, "room %d started every tick within a millisecond", i)
			assert.Len(t, games[i].recorded(), int(st.Ticks.Load()))
		}
		assert.Positive(t, n.reg.clock.stats.Helpers.Load(), "a helper ran the other rooms")
	})
}

// The clock itself waking late (a stalled machine) skips the node ticks
// whose slots passed and counts them once; rooms count them as overruns.
func TestAStalledClockSkipsTicks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newClockNode(t, 2, true)
		period := n.reg.clock.period
		stall := make(chan struct{}, 1)
		n.reg.clock.newWaiter = func() (waiter, error) {
			return &stallingWaiter{timerWaiter: newTimerWaiter(), stall: stall, extra: 3 * period}, nil
		}
		r, g := n.room(t, RoomOptions{}, nil)
		time.Sleep(5 * period)
		stall <- struct{}{}
		time.Sleep(10 * period)
		n.close(t)

		steps := g.recorded()
		for i := 1; i < len(steps); i++ {
			assert.GreaterOrEqual(t, steps[i].at.Sub(steps[i-1].at), period, "no burst after the stall")
		}
		assert.Equal(t, uint64(3), n.reg.clock.stats.Overruns.Load())
		assert.Equal(t, uint64(3), r.Stats().Overruns.Load())
		elapsed := uint64(time.Since(r.Start()) / period)
		st := r.Stats()
		assert.InDelta(t, float64(elapsed), float64(st.Ticks.Load()+st.Overruns.Load()), 1,
			"ticks run plus slots skipped match elapsed time x rate")
	})
}

// An empty room sleeps: it does not tick, and the clock does not wake for
// it. A join wakes it at the next node tick, with its tick numbers kept to
// the clock; it still closes after its empty timeout.
func TestAnEmptyRoomSleeps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newClockNode(t, 2, true)
		period := n.reg.clock.period
		r, err := n.reg.Create(RoomOptions{Mode: "rec"})
		require.NoError(t, err)
		time.Sleep(30 * period)
		assert.Zero(t, r.Stats().Ticks.Load(), "an empty room does not tick")
		assert.Zero(t, n.reg.clock.stats.Ticks.Load(), "a node with only empty rooms does not tick")

		require.NoError(t, SeatWithoutConn(r))
		time.Sleep(10 * period)
		st := r.Stats()
		assert.InDelta(t, 10, st.Ticks.Load(), 1)
		n.mu.Lock()
		g := n.games[0]
		n.mu.Unlock()
		assert.Equal(t, uint64(1), g.recorded()[0].tick, "a room that never ticked starts at tick 1 when it wakes")

		in, err := r.Inspect()
		require.NoError(t, err)
		require.NoError(t, r.Kick(in.Players[0].ID, "test"))
		time.Sleep(30 * period)
		ticks := st.Ticks.Load()
		time.Sleep(30 * period)
		assert.Equal(t, ticks, st.Ticks.Load(), "empty again, it sleeps")

		require.NoError(t, SeatWithoutConn(r))
		time.Sleep(10 * period)
		synctest.Wait() // the node tick due now has run
		steps := g.recorded()
		last := steps[len(steps)-1]
		assert.Equal(t, uint64(time.Since(r.Start())/period), last.tick, "tick numbers keep to the node clock")
		assert.Positive(t, st.Slept.Load())
		assert.Zero(t, st.Overruns.Load(), "slots slept through are not overruns")
		assert.InDelta(t, float64(last.tick), float64(st.Ticks.Load()+st.Overruns.Load()+st.Slept.Load()), 1)
		n.close(t)
	})
}

func TestASleepingRoomClosesAfterItsEmptyTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newClockNode(t, 1, true)
		n.reg.cfg.EmptyTimeout = 3 * time.Second
		r, err := n.reg.Create(RoomOptions{Mode: "rec"})
		require.NoError(t, err)
		time.Sleep(3*time.Second - time.Millisecond)
		synctest.Wait()
		assert.False(t, isClosed(r), "open until its timeout")
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		assert.True(t, isClosed(r), "closed at its timeout")
		_, ok := n.reg.Get(r.ID())
		assert.False(t, ok)
		assert.Zero(t, r.Stats().Ticks.Load())

		// Paused, an empty room sleeps with no timeout.
		p, err := n.reg.Create(RoomOptions{Mode: "rec"})
		require.NoError(t, err)
		require.NoError(t, p.Pause())
		time.Sleep(time.Minute)
		assert.False(t, isClosed(p))
		// Stepping wakes it for the steps.
		tick, err := p.Step(context.Background(), 3)
		require.NoError(t, err)
		assert.Positive(t, tick)
		n.mu.Lock()
		g := n.games[1]
		n.mu.Unlock()
		assert.Len(t, g.recorded(), 3)
		require.NoError(t, p.Resume())
		time.Sleep(3*time.Second + time.Millisecond)
		synctest.Wait()
		assert.True(t, isClosed(p), "resumed, it closes after a full empty timeout")
		n.close(t)
	})
}

func isClosed(r *Room) bool {
	select {
	case <-r.Done():
		return true
	default:
		return false
	}
}

// A room's operations stay serialised with its ticks: many goroutines
// joining, inspecting, pausing and kicking while rooms tick on several
// workers never enter a game twice at once (and the race detector sees no
// unsynchronised access to a room's state).
func TestOpsAreSerialisedWithTicks(t *testing.T) {
	n := newClockNode(t, 4, false)
	t.Cleanup(func() { n.close(t) })
	var all []*Room
	var games []*recordingGame
	for range 6 {
		r, g := n.room(t, RoomOptions{MaxPlayers: 64}, nil)
		all = append(all, r)
		games = append(games, g)
	}
	var wg sync.WaitGroup
	for i := range 12 {
		r := all[i%len(all)]
		wg.Go(func() {
			for k := range 40 {
				switch k % 5 {
				case 0:
					assert.NoError(t, SeatWithoutConn(r))
				case 1:
					in, err := r.Inspect()
					if assert.NoError(t, err) && len(in.Players) > 1 {
						_ = r.Kick(in.Players[len(in.Players)-1].ID, "test") // another goroutine may kick it first
					}
				case 2:
					if r.Pause() == nil {
						_ = r.Resume()
					}
				case 3:
					_, err := r.Frame()
					assert.NoError(t, err)
				case 4:
					_, _, err := r.State()
					assert.NoError(t, err)
				}
			}
		})
	}
	wg.Wait()
	for i, r := range all {
		require.Eventually(t, func() bool { return r.Stats().Ticks.Load() > 10 }, 10*time.Second, time.Millisecond)
		assert.False(t, games[i].overlap.Load(), "room %d's game was entered twice at once", i)
	}
}

// An empty room past its EmptyTimeout closes even while operations keep
// coming: a seat reservation held across the timeout moves the deadline on,
// and each later turn (an operator watching the room, say) looks at the
// timeout again instead of moving it on once more. (Found in review: the
// room stayed open for good.)
func TestAnEmptyRoomClosesWhileOperatorsWatchIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newClockNode(t, 1, true)
		n.reg.cfg.EmptyTimeout = 3 * time.Second
		r, err := n.reg.Create(RoomOptions{Mode: "rec"})
		require.NoError(t, err)
		time.Sleep(2 * time.Second)
		reserved, err := n.reg.reserveSeat("rec", 0) // a join-or-create on its way at the timeout
		require.NoError(t, err)
		require.Same(t, r, reserved)
		time.Sleep(1500 * time.Millisecond)
		require.NoError(t, r.do(func() { r.reserved.Add(-1) }, time.Second)) // the join gave up
		for range 30 {
			time.Sleep(time.Second)
			if isClosed(r) {
				break
			}
			_, _ = r.Frame()
		}
		synctest.Wait()
		assert.True(t, isClosed(r), "empty and unreserved, %v past its timeout", time.Since(r.Created())-3*time.Second)
		n.close(t)
	})
}

// With no room awake, no node tick looks for stuck workers: the clock still
// does, so a slow operation in one sleeping room (a slow game call) does
// not hold up the others' operations. (Found in review.)
func TestASlowOperationWithNoRoomAwakeDelaysOnlyItsRoom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newClockNode(t, 1, true)
		a, err := n.reg.Create(RoomOptions{Mode: "rec"})
		require.NoError(t, err)
		b, err := n.reg.Create(RoomOptions{Mode: "rec"})
		require.NoError(t, err)
		synctest.Wait()
		slow := make(chan error, 1)
		go func() { slow <- a.do(func() { time.Sleep(2 * time.Second) }, time.Second) }()
		time.Sleep(time.Millisecond)
		start := time.Now()
		_, err = b.Inspect()
		require.NoError(t, err)
		assert.Less(t, time.Since(start), 10*time.Millisecond, "fake time: b's operation waited for a's slow turn")
		require.NoError(t, <-slow)
		n.close(t)
	})
}

func TestFirstTickIsBounded(t *testing.T) {
	n := newClockNode(t, 1, false)
	t.Cleanup(func() { n.close(t) })
	_, err := n.reg.Create(RoomOptions{Mode: "rec", FirstTick: 1<<63 + 5})
	require.ErrorIs(t, err, ErrInvalidOptions)
}

// A read before the node tick (netcode.TickReader) longer than stuckAfter
// does not use up the clock's look for stuck workers: the other rooms still
// get a helper in time. (Found in review: they lost a tick each.)
func TestASlowRoomDelaysOnlyItselfBehindALongRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newClockNode(t, 1, true)
		n.reg.ReadBeforeTicks(func() { time.Sleep(time.Millisecond) })
		period := n.reg.clock.period
		n.room(t, RoomOptions{}, func(g *recordingGame) { g.blockAt, g.block = 5, 4*period+period/2 })
		var others []*Room
		for range 3 {
			r, _ := n.room(t, RoomOptions{}, nil)
			others = append(others, r)
		}
		time.Sleep(30 * period)
		n.close(t)
		for i, r := range others {
			assert.Zero(t, r.Stats().Overruns.Load(), "room %d lost ticks to another room's slow step", i)
		}
	})
}
