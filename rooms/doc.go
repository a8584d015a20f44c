// Package rooms runs tickroom's rooms: the registry that creates, finds, lists
// and closes them, and each room's fixed-rate tick loop, which applies one
// batch of queued inputs per tick to its sim.Game and fans the resulting
// snapshot out to the members' connections.
//
// Goroutines: every Room has exactly one goroutine, started by the Registry
// and stopped and waited for by Room.Close or Registry.Close. It alone calls
// the room's Game and owns the room's members, history and encoder; other
// goroutines reach it through a bounded queue of control operations (join,
// leave, resume, disconnect) that it runs between ticks. Inputs and room
// messages are the exception: connection reader goroutines append them to
// small mutex-guarded queues (per player for inputs, per room for messages)
// that the room drains once per tick, so the tick never waits for a reader.
//
// The registry implements netcode.Handler: each connection gets a session
// that routes its requests to rooms.
package rooms
