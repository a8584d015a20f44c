package sim_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tickroom/tickroom/sim"
)

// Client bytes reach the arena as input payloads: whatever they are, a step
// must not panic and players stay inside the world.
func FuzzArenaInput(f *testing.F) {
	for _, seed := range [][]byte{{0}, {sim.ArenaRight}, {0x0f}, {0xcc, 0xff}, {0xc0}, {0xcd, 1, 2}, {0xa3, 'a', 'b', 'c'}, {}, {0x93, 1, 2, 3}} {
		f.Add(seed)
	}
	cfg := sim.DefaultArenaConfig()
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := sim.NewArena(cfg, 1)
		require.NoError(t, err)
		require.NoError(t, a.Join(1))
		var tick sim.Tick
		for n := uint64(1); n <= 3; n++ {
			tick.Reset(n, dt)
			tick.Inputs = append(tick.Inputs, sim.Input{Player: 1, Seq: uint32(n), Data: data})
			tick.Messages = append(tick.Messages, sim.Message{From: 1, Data: data})
			a.Step(&tick)
		}
		x, y, ok := a.Position(1)
		require.True(t, ok)
		require.True(t, x >= 0 && x <= cfg.Width && y >= 0 && y <= cfg.Height, "position %d,%d", x, y)
	})
}
