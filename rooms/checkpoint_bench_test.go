package rooms

import (
	"fmt"
	"testing"

	"github.com/tickroom/tickroom/sim"
)

// BenchmarkCheckpoint16 is what one checkpoint of a 16-player arena room
// costs its turn: the game's MarshalState and the checkpoint's encoding.
// BENCHMARKS.md turns it into CPU and bytes per second at 1,000 rooms.
func BenchmarkCheckpoint16(b *testing.B) {
	factory, err := sim.NewArenaFactory(sim.DefaultArenaConfig())
	if err != nil {
		b.Fatal(err)
	}
	game, err := factory(sim.Config{TickRate: 60, MaxPlayers: 16, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	c := Checkpoint{RoomID: "0123456789ab", Mode: sim.ArenaMode, MaxPlayers: 16, Epoch: 1, Tick: 12345, NextPlayer: 17}
	for p := sim.PlayerID(1); p <= 16; p++ {
		if err := game.Join(p); err != nil {
			b.Fatal(err)
		}
		c.Seats = append(c.Seats, SeatCheckpoint{Player: uint32(p), Token: fmt.Sprintf("0123456789ab.%024d", p), LastAck: 99, Connected: true})
	}
	b.ReportAllocs()
	size := 0
	for b.Loop() {
		state, err := game.MarshalState()
		if err != nil {
			b.Fatal(err)
		}
		c.State = state
		size = len(c.Encode())
	}
	b.ReportMetric(float64(size), "bytes/checkpoint")
}
