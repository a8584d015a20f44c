package client_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/tickroom/tickroom/netcode/client"
	"github.com/tickroom/tickroom/sim"
)

// A game client: connect, join a demo arena, hold "right" and watch the
// world through snapshots. Reconnecting and resuming the seat after a drop
// happen on their own.
func Example() {
	ctx := context.Background()
	cfg := client.DefaultConfig()
	cfg.OnSnapshot = func(s *client.Snapshot) {
		// Called for every snapshot, deltas already applied. s.Ack is the
		// last input the server applied: reconcile predictions here.
		_ = s.Entities
	}
	c, err := client.Dial(ctx, "ws://127.0.0.1:8080/ws", cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	seat, err := c.Join(ctx, client.JoinOptions{Mode: sim.ArenaMode})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("playing as", seat.Player, "in room", seat.RoomID)

	tick := time.NewTicker(time.Second / 60)
	defer tick.Stop()
	for range 60 { // one second of input at 60 Hz
		<-tick.C
		if _, err := c.SendInput([]byte{sim.ArenaRight}); err != nil {
			log.Print(err) // client.ErrNotConnected while it reconnects
		}
	}
	for _, e := range c.State().Entities {
		fmt.Printf("player %d at (%.2f, %.2f)\n", e.ID, float64(e.Fields[0])/100, float64(e.Fields[1])/100)
	}
}
