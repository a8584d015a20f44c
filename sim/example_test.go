package sim_test

import (
	"fmt"
	"time"

	"github.com/tickroom/tickroom/sim"
)

// A room drives a game like this: seat players, then once per tick hand the
// game the batch of inputs that arrived and read back its entities.
func Example() {
	game, err := sim.NewArena(sim.DefaultArenaConfig(), 1)
	if err != nil {
		panic(err)
	}
	if err := game.Join(1); err != nil {
		panic(err)
	}
	entities := game.AppendEntities(nil)
	x0 := entities[0].Fields[0]

	var tick sim.Tick
	for n := uint64(1); n <= 60; n++ { // one second at 60 Hz
		tick.Reset(n, time.Second/60)
		if n == 1 {
			// The arena's input is a MessagePack uint of direction bits.
			tick.Inputs = append(tick.Inputs, sim.Input{Player: 1, Seq: 1, Data: []byte{sim.ArenaRight}})
		}
		game.Step(&tick)
		entities = game.AppendEntities(entities[:0])
	}
	fmt.Printf("player 1 moved %d centi-units right in one second\n", entities[0].Fields[0]-x0)
	// Output: player 1 moved 720 centi-units right in one second
}
