package sim_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tickroom/tickroom/sim"
)

const dt = time.Second / 60

func newArena(t testing.TB, seed uint64) *sim.Arena {
	t.Helper()
	a, err := sim.NewArena(sim.DefaultArenaConfig(), seed)
	require.NoError(t, err)
	return a
}

func dirInput(p sim.PlayerID, seq uint32, dir uint8) sim.Input {
	return sim.Input{Player: p, Seq: seq, Data: []byte{dir}}
}

// randomRun drives an arena through n ticks of random joins, leaves and
// inputs drawn from rng, and returns its state after every tick.
func randomRun(t *testing.T, a *sim.Arena, rng *rand.Rand, n int) [][]byte {
	t.Helper()
	var tick sim.Tick
	var seated []sim.PlayerID
	next := sim.PlayerID(1)
	seq := map[sim.PlayerID]uint32{}
	var states [][]byte
	for i := 1; i <= n; i++ {
		if rng.IntN(10) == 0 || len(seated) == 0 {
			require.NoError(t, a.Join(next))
			seated = append(seated, next)
			next++
		}
		if rng.IntN(40) == 0 && len(seated) > 1 {
			k := rng.IntN(len(seated))
			a.Leave(seated[k])
			seated = append(seated[:k], seated[k+1:]...)
		}
		tick.Reset(uint64(i), dt)
		for _, p := range seated {
			for range rng.IntN(3) {
				seq[p]++
				tick.Inputs = append(tick.Inputs, dirInput(p, seq[p], uint8(rng.IntN(16))))
			}
		}
		a.Step(&tick)
		s, err := a.MarshalState()
		require.NoError(t, err)
		states = append(states, s)
	}
	return states
}

func TestArenaIsDeterministic(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		first := randomRun(t, newArena(t, seed), rand.New(rand.NewPCG(seed, 7)), 600)
		second := randomRun(t, newArena(t, seed), rand.New(rand.NewPCG(seed, 7)), 600)
		require.Equal(t, first, second, "seed %d", seed)
	}
}

func TestArenaStateRoundTripContinuesIdentically(t *testing.T) {
	a := newArena(t, 42)
	randomRun(t, a, rand.New(rand.NewPCG(1, 2)), 300)
	saved, err := a.MarshalState()
	require.NoError(t, err)

	b := newArena(t, 42)
	require.NoError(t, b.UnmarshalState(saved))

	var tick sim.Tick
	for i := uint64(301); i < 400; i++ {
		for _, g := range []*sim.Arena{a, b} {
			tick.Reset(i, dt)
			tick.Inputs = append(tick.Inputs, dirInput(1, uint32(1000+i), uint8(i%16)))
			g.Step(&tick)
		}
		sa, err := a.MarshalState()
		require.NoError(t, err)
		sb, err := b.MarshalState()
		require.NoError(t, err)
		require.Equal(t, sa, sb, "tick %d", i)
	}
}

func TestArenaMovementAndBounds(t *testing.T) {
	cfg := sim.DefaultArenaConfig()
	a := newArena(t, 3)
	require.NoError(t, a.Join(1))
	x0, y0, ok := a.Position(1)
	require.True(t, ok)

	var tick sim.Tick
	tick.Reset(1, dt)
	tick.Inputs = append(tick.Inputs, dirInput(1, 1, sim.ArenaRight))
	a.Step(&tick)
	x1, y1, _ := a.Position(1)
	step := cfg.Speed / 60
	assert.Equal(t, min(x0+step, cfg.Width), x1, "one tick right moves by speed*dt")
	assert.Equal(t, y0, y1)

	// The direction holds without new inputs, and the wall stops the player.
	for i := uint64(2); i < 2000; i++ {
		tick.Reset(i, dt)
		a.Step(&tick)
	}
	x2, _, _ := a.Position(1)
	assert.Equal(t, cfg.Width, x2)

	// Diagonal moves are scaled so speed stays the same.
	tick.Reset(2000, dt)
	tick.Inputs = append(tick.Inputs, dirInput(1, 2, sim.ArenaUp|sim.ArenaLeft))
	a.Step(&tick)
	x3, y3, _ := a.Position(1)
	assert.Equal(t, cfg.Width-step*7071/10000, x3)
	assert.Equal(t, max(y1-step*7071/10000, 0), y3)
}

func TestArenaIgnoresBadAndStaleInputs(t *testing.T) {
	a := newArena(t, 3)
	require.NoError(t, a.Join(1))
	x0, y0, _ := a.Position(1)
	var tick sim.Tick
	bad := [][]byte{nil, {0xa3, 'a', 'b', 'c'}, {0xcd, 1}, {0x93, 1, 2, 3}, {0xff}, {0xd0, 0x04}}
	for i, data := range bad {
		tick.Reset(uint64(i+1), dt)
		tick.Inputs = append(tick.Inputs, sim.Input{Player: 1, Seq: uint32(i + 1), Data: data})
		a.Step(&tick)
	}
	x, y, _ := a.Position(1)
	assert.Equal(t, []int32{x0, y0}, []int32{x, y}, "malformed inputs leave the player still")

	// An input with an old sequence number is ignored.
	tick.Reset(10, dt)
	tick.Inputs = append(tick.Inputs, dirInput(1, 1, sim.ArenaDown))
	a.Step(&tick)
	x, y, _ = a.Position(1)
	assert.Equal(t, []int32{x0, y0}, []int32{x, y})

	// Inputs for players not in the arena are ignored.
	tick.Reset(11, dt)
	tick.Inputs = append(tick.Inputs, dirInput(9, 1, sim.ArenaDown))
	a.Step(&tick)
}

func TestArenaAcceptsEveryUintWidth(t *testing.T) {
	for _, data := range [][]byte{
		{sim.ArenaRight},
		{0xcc, sim.ArenaRight},
		{0xcd, 0, sim.ArenaRight},
		{0xce, 0, 0, 0, sim.ArenaRight},
		{0xcf, 0, 0, 0, 0, 0, 0, 0, sim.ArenaRight},
	} {
		a := newArena(t, 3)
		require.NoError(t, a.Join(1))
		x0, _, _ := a.Position(1)
		var tick sim.Tick
		tick.Reset(1, dt)
		tick.Inputs = append(tick.Inputs, sim.Input{Player: 1, Seq: 1, Data: data})
		a.Step(&tick)
		x1, _, _ := a.Position(1)
		assert.Greater(t, x1, x0, "input % x moves right", data)
	}
}

func TestArenaJoinLeaveAndEntities(t *testing.T) {
	a := newArena(t, 9)
	for _, p := range []sim.PlayerID{5, 2, 9} {
		require.NoError(t, a.Join(p))
	}
	require.ErrorIs(t, a.Join(2), sim.ErrRejected)
	a.Leave(9)
	a.Leave(77) // unknown: no effect

	ents := a.AppendEntities(nil)
	require.Len(t, ents, 2)
	assert.Equal(t, uint32(2), ents[0].ID)
	assert.Equal(t, uint32(5), ents[1].ID)
	for _, e := range ents {
		assert.Equal(t, uint16(sim.ArenaPlayerKind), e.Kind)
		x, y, ok := a.Position(sim.PlayerID(e.ID))
		require.True(t, ok)
		assert.Equal(t, [2]int32{x, y}, [2]int32{e.Fields[0], e.Fields[1]})
	}
	assert.Equal(t, 0.0, testing.AllocsPerRun(100, func() { ents = a.AppendEntities(ents[:0]) }))
}

func TestArenaRelaysMessages(t *testing.T) {
	a := newArena(t, 1)
	require.NoError(t, a.Join(1))
	var tick sim.Tick
	tick.Reset(1, dt)
	tick.Messages = append(tick.Messages, sim.Message{From: 1, Data: []byte{0xa2, 'h', 'i'}})
	a.Step(&tick)
	require.Equal(t, []sim.Event{{To: 0, From: 1, Data: []byte{0xa2, 'h', 'i'}}}, tick.Events())
}

func TestArenaRejectsBadConfigAndState(t *testing.T) {
	_, err := sim.NewArena(sim.ArenaConfig{Width: 0, Height: 10, Speed: 1}, 1)
	require.Error(t, err)
	_, err = sim.NewArenaFactory(sim.ArenaConfig{Width: 10, Height: 10, Speed: -1})
	require.Error(t, err)

	a := newArena(t, 1)
	require.Error(t, a.UnmarshalState([]byte{0xc1}))
}

func BenchmarkArenaStep16(b *testing.B) {
	a := newArena(b, 1)
	for p := sim.PlayerID(1); p <= 16; p++ {
		require.NoError(b, a.Join(p))
	}
	var tick sim.Tick
	dirs := make([][]byte, 16)
	for d := range dirs {
		dirs[d] = []byte{byte(d)}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		tick.Reset(uint64(i+1), dt)
		for p := sim.PlayerID(1); p <= 16; p++ {
			tick.Inputs = append(tick.Inputs, sim.Input{Player: p, Seq: uint32(i + 1), Data: dirs[i/30%16]})
		}
		a.Step(&tick)
	}
}

// The arena tells tools where its players are: fields X and Y, within the
// world's size.
func TestArenaViewLocatesPlayers(t *testing.T) {
	a, err := sim.NewArena(sim.DefaultArenaConfig(), 7)
	require.NoError(t, err)
	var g sim.Game = a
	v, ok := g.(sim.Viewer)
	require.True(t, ok, "the arena implements sim.Viewer")
	view := v.View()
	assert.Equal(t, sim.View{Width: 100_00, Height: 100_00, X: 0, Y: 1, Kinds: map[uint16]string{sim.ArenaPlayerKind: "player"}}, view)
	for p := sim.PlayerID(1); p <= 20; p++ {
		require.NoError(t, a.Join(p))
	}
	for _, e := range a.AppendEntities(nil) {
		assert.Equal(t, "player", view.Kinds[e.Kind])
		assert.True(t, e.Fields[view.X] >= 0 && e.Fields[view.X] <= view.Width, "x %d in the world", e.Fields[view.X])
		assert.True(t, e.Fields[view.Y] >= 0 && e.Fields[view.Y] <= view.Height, "y %d in the world", e.Fields[view.Y])
	}
}
