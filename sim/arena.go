package sim

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// ArenaMode is the name of the demo game's mode.
const ArenaMode = "arena"

// ArenaPlayerKind is the entity kind of an arena player.
const ArenaPlayerKind = 1

// Arena input directions: the input payload is a MessagePack unsigned integer
// holding an OR of these bits, the directions held down. Opposite directions
// cancel out; nil or 0 stops the player.
const (
	ArenaUp    = 1 << 0 // towards smaller y
	ArenaDown  = 1 << 1
	ArenaLeft  = 1 << 2 // towards smaller x
	ArenaRight = 1 << 3
)

// ArenaConfig sizes the arena. Distances are in centi-units (1/100 of a world
// unit), the precision positions are quantised to.
type ArenaConfig struct {
	Width  int32 // world width, centi-units
	Height int32 // world height, centi-units
	Speed  int32 // player speed, centi-units per second
}

// DefaultArenaConfig returns a 100 x 100 unit world and a speed of 7.2 units
// per second: 12 centi-units per tick at 60 Hz, small enough that a delta of
// one coordinate fits one MessagePack byte.
func DefaultArenaConfig() ArenaConfig {
	return ArenaConfig{
		Width:  100_00,
		Height: 100_00,
		Speed:  7_20,
	}
}

func (c ArenaConfig) validate() error {
	if c.Width <= 0 || c.Height <= 0 {
		return fmt.Errorf("sim: arena size %dx%d must be positive", c.Width, c.Height)
	}
	if c.Speed < 0 {
		return fmt.Errorf("sim: arena speed %d must not be negative", c.Speed)
	}
	return nil
}

// Arena is the demo game: players move in a bounded 2D world at a fixed speed
// in the directions their inputs hold, and room messages are relayed to every
// player as chat. Its entities are its players: Kind ArenaPlayerKind,
// Fields[0] = x and Fields[1] = y in centi-units.
//
// All arithmetic is integer, so the same inputs give the same states.
type Arena struct {
	cfg   ArenaConfig
	state arenaState
}

type arenaState struct {
	Seed    uint64        `msgpack:"seed"`
	Tick    uint64        `msgpack:"tick"`
	Players []arenaPlayer `msgpack:"players"` // ascending ID
}

type arenaPlayer struct {
	ID      PlayerID `msgpack:"id"`
	X       int32    `msgpack:"x"`
	Y       int32    `msgpack:"y"`
	Dir     uint8    `msgpack:"dir"`
	LastSeq uint32   `msgpack:"seq"`
}

// NewArenaFactory returns a Factory for arenas of the given configuration.
func NewArenaFactory(ac ArenaConfig) (Factory, error) {
	if err := ac.validate(); err != nil {
		return nil, err
	}
	return func(cfg Config) (Game, error) { return NewArena(ac, cfg.Seed) }, nil
}

// NewArena returns an empty arena. The seed places players' spawn points.
func NewArena(ac ArenaConfig, seed uint64) (*Arena, error) {
	if err := ac.validate(); err != nil {
		return nil, err
	}
	return &Arena{cfg: ac, state: arenaState{Seed: seed}}, nil
}

func (a *Arena) find(p PlayerID) (int, bool) {
	return slices.BinarySearchFunc(a.state.Players, p, func(pl arenaPlayer, id PlayerID) int {
		return int(int64(pl.ID) - int64(id))
	})
}

// Join spawns a player at a point derived from the seed and its id.
func (a *Arena) Join(p PlayerID) error {
	i, found := a.find(p)
	if found {
		return fmt.Errorf("%w: player %d is already in the arena", ErrRejected, p)
	}
	h := splitmix64(a.state.Seed ^ uint64(p)*0x9e3779b97f4a7c15)
	pl := arenaPlayer{
		ID: p,
		X:  int32(h % uint64(a.cfg.Width+1)),
		Y:  int32((h >> 32) % uint64(a.cfg.Height+1)),
	}
	a.state.Players = slices.Insert(a.state.Players, i, pl)
	return nil
}

// View implements Viewer: players are points in a Width x Height world.
func (a *Arena) View() View {
	return View{Width: a.cfg.Width, Height: a.cfg.Height, X: 0, Y: 1, Kinds: map[uint16]string{ArenaPlayerKind: "player"}}
}

// Leave removes a player.
func (a *Arena) Leave(p PlayerID) {
	if i, found := a.find(p); found {
		a.state.Players = slices.Delete(a.state.Players, i, i+1)
	}
}

// Step applies the tick's inputs (the last one per player sets its
// direction), moves every player and relays room messages as chat.
func (a *Arena) Step(t *Tick) {
	a.state.Tick = t.Number
	i := 0
	for _, in := range t.Inputs {
		for i < len(a.state.Players) && a.state.Players[i].ID < in.Player {
			i++
		}
		if i == len(a.state.Players) {
			break
		}
		pl := &a.state.Players[i]
		if pl.ID != in.Player || in.Seq <= pl.LastSeq {
			continue
		}
		if dir, ok := decodeArenaInput(in.Data); ok {
			pl.Dir = dir
		}
		pl.LastSeq = in.Seq
	}

	// Rounded, not truncated: 1s/60 is 16666666ns, and 720 of speed must
	// still give 12 per tick.
	step := int32((int64(a.cfg.Speed)*int64(t.Dt) + int64(time.Second)/2) / int64(time.Second))
	diagonal := int32(int64(step) * 7071 / 10000) // step / sqrt(2)
	for i := range a.state.Players {
		pl := &a.state.Players[i]
		dx, dy := int32(0), int32(0)
		if pl.Dir&ArenaLeft != 0 {
			dx--
		}
		if pl.Dir&ArenaRight != 0 {
			dx++
		}
		if pl.Dir&ArenaUp != 0 {
			dy--
		}
		if pl.Dir&ArenaDown != 0 {
			dy++
		}
		s := step
		if dx != 0 && dy != 0 {
			s = diagonal
		}
		pl.X = min(max(pl.X+dx*s, 0), a.cfg.Width)
		pl.Y = min(max(pl.Y+dy*s, 0), a.cfg.Height)
	}

	for _, m := range t.Messages {
		t.Emit(Event{To: 0, From: m.From, Data: m.Data})
	}
}

// decodeArenaInput reads a direction bitmask: a MessagePack unsigned integer
// of any width (only the low four bits mean anything) or nil. Anything else
// is ignored, so a bad input cannot hurt the game.
func decodeArenaInput(data []byte) (uint8, bool) {
	switch {
	case len(data) == 1 && data[0] < 0x80: // positive fixint
		return data[0] & 0x0f, true
	case len(data) == 1 && data[0] == 0xc0: // nil
		return 0, true
	case len(data) == 2 && data[0] == 0xcc, // uint8
		len(data) == 3 && data[0] == 0xcd, // uint16
		len(data) == 5 && data[0] == 0xce, // uint32
		len(data) == 9 && data[0] == 0xcf: // uint64
		return data[len(data)-1] & 0x0f, true // big-endian: the low bits are last
	}
	return 0, false
}

// AppendEntities appends one entity per player.
func (a *Arena) AppendEntities(dst []Entity) []Entity {
	for _, pl := range a.state.Players {
		dst = append(dst, Entity{
			ID:     uint32(pl.ID),
			Kind:   ArenaPlayerKind,
			Fields: [MaxFields]int32{pl.X, pl.Y},
		})
	}
	return dst
}

// Position returns a player's position in centi-units.
func (a *Arena) Position(p PlayerID) (x, y int32, ok bool) {
	i, found := a.find(p)
	if !found {
		return 0, 0, false
	}
	return a.state.Players[i].X, a.state.Players[i].Y, true
}

// MarshalState encodes the arena's state as MessagePack.
func (a *Arena) MarshalState() ([]byte, error) {
	b, err := msgpack.Marshal(&a.state)
	if err != nil {
		return nil, fmt.Errorf("sim: marshal arena state: %w", err)
	}
	return b, nil
}

// UnmarshalState restores a state MarshalState returned.
func (a *Arena) UnmarshalState(data []byte) error {
	var s arenaState
	if err := msgpack.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("sim: unmarshal arena state: %w", err)
	}
	for i, pl := range s.Players {
		if i > 0 && pl.ID <= s.Players[i-1].ID {
			return errors.New("sim: unmarshal arena state: players not in ascending id order")
		}
		if pl.X < 0 || pl.X > a.cfg.Width || pl.Y < 0 || pl.Y > a.cfg.Height {
			return fmt.Errorf("sim: unmarshal arena state: player %d outside the world", pl.ID)
		}
	}
	a.state = s
	return nil
}

// splitmix64 is a small, well-mixed hash used for deterministic spawn points.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
