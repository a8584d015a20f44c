package rooms

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/tickroom/tickroom/sim"
)

// Config configures a Registry and its rooms. Start from DefaultConfig.
type Config struct {
	// TickRate is ticks (and snapshots) per second.
	TickRate int
	// MaxPlayers is the default seat count of a room.
	MaxPlayers int
	// MaxRoomSize bounds the seat count a client may ask join-or-create for.
	MaxRoomSize int
	// MaxRooms bounds the rooms a node runs at once. 0 makes a node that
	// runs none: in a cluster it only routes players to other nodes.
	MaxRooms int
	// EmptyTimeout closes a room that has had no seats for this long.
	EmptyTimeout time.Duration
	// SeatGrace is how long a dropped player's seat is held for a resume.
	SeatGrace time.Duration
	// InputQueue is how many inputs a player may have waiting for the next
	// tick; when full, the oldest is dropped.
	InputQueue int
	// MaxInputSize bounds one input's payload, in bytes.
	MaxInputSize int
	// MessageQueue is how many room messages may wait for the next tick in
	// one room; when full, new ones are refused with CodeRoomBusy.
	MessageQueue int
	// SnapshotHistory is how many past ticks a room keeps to encode deltas
	// against; a client further behind gets a full snapshot.
	SnapshotHistory int
	// ControlQueue is how many control operations (joins, leaves, operator
	// requests, dashboard frames) may wait for a room.
	ControlQueue int
	// JoinTimeout bounds how long a join waits for the room to take it.
	JoinTimeout time.Duration
	// Workers is how many goroutines run the rooms' ticks and operations,
	// released by the node's one clock. The clock adds a few helpers while
	// workers are stuck in slow rooms.
	Workers int
	// CheckpointEvery is how many ticks go between a room's checkpoints
	// when a Replicator is set; 0 takes none.
	CheckpointEvery int
	// Modes maps game mode names to the factories that make their games.
	Modes map[string]sim.Factory
	// Logger receives room and player lifecycle logs; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns the configuration tickroom serve starts from, with
// the demo arena as the only mode.
func DefaultConfig() Config {
	arena, err := sim.NewArenaFactory(sim.DefaultArenaConfig())
	if err != nil {
		panic(err) // the default arena config is valid by construction
	}
	return Config{
		TickRate:        60,
		MaxPlayers:      16,
		MaxRoomSize:     256,
		MaxRooms:        10_000,
		EmptyTimeout:    30 * time.Second, // long enough for a lobby to fill
		SeatGrace:       10 * time.Second, // a phone switching networks comes back within this
		InputQueue:      16,               // a quarter second of inputs at 60 Hz
		MaxInputSize:    64,               // inputs are a few bytes; this bounds the queue's memory
		MessageQueue:    256,              // chat bursts of a full room
		SnapshotHistory: 20,               // a third of a second at 60 Hz; a client further behind gets a full snapshot
		ControlQueue:    64,
		JoinTimeout:     5 * time.Second,
		CheckpointEvery: 30,                    // half a second at 60 Hz: the most game time a failover loses
		Workers:         runtime.GOMAXPROCS(0), // a tick is CPU work: more workers than processors would only take turns
		Modes:           map[string]sim.Factory{sim.ArenaMode: arena},
	}
}

func (c *Config) validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.TickRate > 0 && c.TickRate <= 1000, "TickRate %d must be in 1..1000", c.TickRate)
	check(c.MaxPlayers > 0, "MaxPlayers %d must be positive", c.MaxPlayers)
	check(c.MaxRoomSize >= c.MaxPlayers, "MaxRoomSize %d must be at least MaxPlayers %d", c.MaxRoomSize, c.MaxPlayers)
	check(c.MaxRooms >= 0, "MaxRooms %d must not be negative", c.MaxRooms)
	check(c.EmptyTimeout > 0, "EmptyTimeout must be positive")
	check(c.SeatGrace >= 0, "SeatGrace must not be negative")
	check(c.InputQueue > 0, "InputQueue must be positive")
	check(c.MaxInputSize > 0 && c.MaxInputSize <= 255, "MaxInputSize %d must be in 1..255", c.MaxInputSize)
	check(c.MessageQueue > 0, "MessageQueue must be positive")
	check(c.SnapshotHistory >= 2, "SnapshotHistory %d must be at least 2", c.SnapshotHistory)
	check(c.ControlQueue > 0, "ControlQueue must be positive")
	check(c.CheckpointEvery >= 0, "CheckpointEvery must not be negative")
	check(c.JoinTimeout > 0, "JoinTimeout must be positive")
	check(c.Workers > 0 && c.Workers <= maxWorkers, "Workers %d must be in 1..%d", c.Workers, maxWorkers)
	check(len(c.Modes) > 0, "Modes must name at least one game mode")
	for name, f := range c.Modes {
		check(name != "" && f != nil, "mode %q must have a name and a factory", name)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("rooms: invalid config: %w", err)
	}
	return nil
}

// maxWorkers bounds Config.Workers: each may hold an OS thread.
const maxWorkers = 1024

// Sentinel errors of registry operations; callers branch with errors.Is.
var (
	ErrRoomNotFound = errors.New("rooms: room not found")
	ErrRoomFull     = errors.New("rooms: room full")
	ErrRoomClosed   = errors.New("rooms: room closed")
	ErrUnknownMode  = errors.New("rooms: unknown game mode")
	ErrTooManyRooms = errors.New("rooms: too many rooms")
	ErrBadToken     = errors.New("rooms: unknown or expired reconnect token")
	ErrClosed       = errors.New("rooms: registry closed")
	// ErrInvalidOptions: RoomOptions out of the configured bounds.
	ErrInvalidOptions = errors.New("rooms: invalid room options")
	ErrPlayerNotFound = errors.New("rooms: player not found")
	// ErrAlreadyPaused, ErrNotPaused and ErrStepping: a pause, resume or
	// step that does not fit the room's state.
	ErrAlreadyPaused = errors.New("rooms: room already paused")
	ErrNotPaused     = errors.New("rooms: room not paused")
	ErrStepping      = errors.New("rooms: room still stepping")
	// ErrRoomUnresponsive: the room's control queue stayed full; the
	// request was not taken.
	ErrRoomUnresponsive = errors.New("rooms: room unresponsive")
)
