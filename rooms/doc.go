// Package rooms runs tickroom's rooms: the registry that creates, finds, lists
// and closes them, and the node clock, which ticks every room at a fixed
// rate, in phase: each tick applies one batch of queued inputs to the room's
// sim.Game and fans the resulting snapshot out to the members' connections.
//
// Goroutines: a Room has none of its own. The Registry's node clock (one
// goroutine, clock.go) waits precisely for each node tick, has the node's
// connections read (netcode.TickReader) and releases every awake room to a
// run queue; Config.Workers worker goroutines, plus helpers while a worker is
// stuck in a slow room, run the rooms' turns (turn.go). A turn runs the
// room's queued control operations (join, leave, resume, disconnect,
// operator requests), then its tick. A room runs on one worker at a time, so
// its turn alone calls the room's Game and owns its members, history and
// encoder; other goroutines reach it through its bounded control queue.
// Inputs and room messages are the exception: connection readers append
// them to small mutex-guarded queues (per player for inputs, per room for
// messages) that the tick drains, so the tick never waits for a reader. An
// empty room sleeps, out of the clock's rounds, until a join wakes it or its
// empty timeout (a timer) closes it. The clock starts with the first room;
// Registry.Close closes the rooms and then stops the clock and its workers
// and waits for them.
//
// The registry implements netcode.Handler: each connection gets a session
// that routes its requests to rooms.
package rooms
