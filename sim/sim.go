// Package sim is the API a game implements to run on tickroom, and the demo
// game "arena".
//
// A room owns time and calls its Game from a single goroutine: Join, Leave,
// Step and the rest are never called concurrently, so a game needs no locks.
// A game is a fixed-step simulation: each Step applies one tick's batch of
// player inputs and room messages and advances the world by Tick.Dt. The room
// reads the game's entities after each step to build snapshots, and may save
// and restore the game's whole state with MarshalState and UnmarshalState (to
// checkpoint a room or move it to another node), so all of a game's state
// must live behind those two methods.
//
// sim knows nothing of the network: inputs and messages arrive as raw
// MessagePack values, and entities leave as quantised integer fields.
package sim

import (
	"errors"
	"time"
)

// PlayerID identifies a player within a room. IDs start at 1 and are never
// reused within a room's lifetime; 0 means "nobody" (or "everybody" as a
// message recipient).
type PlayerID uint32

// MaxFields is the number of quantised fields an entity carries.
const MaxFields = 8

// Entity is one game object as snapshots carry it. ID is unique in the room;
// Kind is defined by the game; Fields are quantised integers whose meaning the
// game defines and documents for its clients (the arena: Fields[0] and
// Fields[1] are x and y in centi-units). Only changed fields travel in delta
// snapshots, so small, stable integers are cheapest.
type Entity struct {
	ID     uint32
	Kind   uint16
	Fields [MaxFields]int32
}

// Input is one player input, as the client sent it.
type Input struct {
	Player PlayerID
	Seq    uint32
	// Data is one raw MessagePack value defined by the game. It is owned by
	// the room and valid only during Step: copy what you keep.
	Data []byte
}

// Message is a reliable room message from a player, such as chat.
type Message struct {
	From PlayerID
	// Data is one raw MessagePack value, valid only during Step.
	Data []byte
}

// Event is a message from the game to players.
type Event struct {
	To   PlayerID // 0 sends to every player in the room
	From PlayerID // the player the game relays for, or 0 for the game itself
	// Data is one raw MessagePack value. The room reads it after Step returns
	// and before the next call into the game, so it may alias an Input's or a
	// Message's Data of the same tick.
	Data []byte
}

// Tick is one step's worth of work, handed to Game.Step. The room reuses it
// between steps: do not keep it or its slices.
type Tick struct {
	// Number is the tick's number. Tick n starts n periods after the room
	// started; numbers may skip when the room falls behind schedule.
	Number uint64
	// Dt is the fixed simulated time one step advances.
	Dt time.Duration
	// Inputs holds the inputs received since the previous tick, grouped by
	// player in ascending player order, and in Seq order within a player.
	Inputs []Input
	// Messages holds room messages in the order the room received them.
	Messages []Message

	events []Event
}

// Emit queues an event for delivery to players after the step.
func (t *Tick) Emit(e Event) { t.events = append(t.events, e) }

// Events returns the events emitted during the step. Rooms call it.
func (t *Tick) Events() []Event { return t.events }

// Reset clears the tick for reuse, keeping its buffers. Rooms call it.
func (t *Tick) Reset(number uint64, dt time.Duration) {
	t.Number, t.Dt = number, dt
	t.Inputs, t.Messages, t.events = t.Inputs[:0], t.Messages[:0], t.events[:0]
}

// Game is one running game: the authoritative state of one room.
//
// The room calls every method from its own goroutine, never concurrently, and
// methods must not block: they run inside the room's tick budget.
type Game interface {
	// Join seats a player. An error refuses the player (the client gets it as
	// a "rejected" error); wrap ErrRejected or return any error.
	Join(p PlayerID) error
	// Leave removes a player that left, was kicked, or lost its seat.
	Leave(p PlayerID)
	// Step advances the game by one tick.
	Step(t *Tick)
	// AppendEntities appends the entities clients should see to dst, in
	// strictly increasing ID order, and returns it. It must not allocate
	// beyond growing dst, which the room reuses.
	AppendEntities(dst []Entity) []Entity
	// MarshalState returns the game's whole state; UnmarshalState on a game
	// made by the same Factory with the same Config restores it exactly.
	MarshalState() ([]byte, error)
	UnmarshalState(data []byte) error
}

// ErrRejected is returned by Join to refuse a player.
var ErrRejected = errors.New("sim: player rejected")

// Config is what a room tells a game when it creates one.
type Config struct {
	// TickRate is the room's ticks per second; Tick.Dt is its inverse.
	TickRate int
	// MaxPlayers is the most players the room seats at once.
	MaxPlayers int
	// Seed seeds any randomness, so that a room can be replayed.
	Seed uint64
}

// Factory makes a game for a new room.
type Factory func(cfg Config) (Game, error)

// View tells tools, such as the admin dashboard, how to draw a game's
// entities: which fields hold a position and how large the world is.
type View struct {
	// Width and Height are the world's size in field units; positions run
	// from 0 to these.
	Width, Height int32
	// X and Y index the Entity.Fields holding an entity's position.
	X, Y int
	// Kinds names entity kinds, for labels.
	Kinds map[uint16]string
}

// Viewer is implemented by games whose entities have positions. A game that
// does not implement it is shown to operators as text.
type Viewer interface {
	View() View
}
