package rooms

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/tickroom/tickroom/netcode/wire"
)

// CheckpointVersion is the format version of encoded checkpoints; a
// checkpoint of another version (another build's) is refused with
// ErrCheckpointVersion.
const CheckpointVersion = 1

// MaxCheckpointSize bounds an encoded checkpoint, game state included.
const MaxCheckpointSize = 8 << 20

// Sentinel errors of checkpoints and restores.
var (
	ErrCheckpointVersion = errors.New("rooms: checkpoint of another format version")
	ErrBadCheckpoint     = errors.New("rooms: corrupt checkpoint")
	ErrRoomExists        = errors.New("rooms: a room with this id is already open")
	// ErrFrozen: the room is frozen or fenced (a hand-off or a lost lease),
	// or an operation needs it frozen and it is not.
	ErrFrozen = errors.New("rooms: room frozen")
)

// Checkpoint is a room's whole state: enough to run it on another node
// from its next tick (Registry.Restore).
type Checkpoint struct {
	RoomID     string
	Mode       string
	MaxPlayers int
	Private    bool
	Metadata   map[string]string
	Seed       uint64 // the sim.Config.Seed the game was made with
	Epoch      uint64 // the room's incarnation
	Tick       uint64 // the last tick the room ran (0: none)
	GameTick   uint64
	Paused     bool
	NextPlayer uint32
	Created    time.Time
	State      []byte // sim.Game.MarshalState
	Seats      []SeatCheckpoint
}

// SeatCheckpoint is one seat.
type SeatCheckpoint struct {
	Player    uint32
	Token     string
	LastAck   uint32 // the seq of the last input the game applied
	Connected bool
	Inputs    []QueuedInput // queued, not yet applied
}

// QueuedInput is one input waiting for the next tick.
type QueuedInput struct {
	Seq     uint32
	Payload []byte
}

// checkpointMagic starts every encoded checkpoint.
const checkpointMagic = "TRCP"

// Bounds of the decoder, far above what a room holds.
const (
	maxCheckpointSeats  = 4096
	maxCheckpointMeta   = 64
	maxCheckpointField  = 1024
	maxCheckpointInputs = 256
	checkpointFields    = 14
)

// Encode returns the checkpoint's bytes: the magic, the version (uint16,
// big endian) and a MessagePack array.
func (c *Checkpoint) Encode() []byte {
	var b bytes.Buffer
	b.WriteString(checkpointMagic)
	_ = binary.Write(&b, binary.BigEndian, uint16(CheckpointVersion))
	e := msgpack.NewEncoder(&b)
	// Writes to a bytes.Buffer cannot fail.
	_ = e.EncodeArrayLen(checkpointFields)
	_ = e.EncodeString(c.RoomID)
	_ = e.EncodeString(c.Mode)
	_ = e.EncodeUint(uint64(max(c.MaxPlayers, 0)))
	_ = e.EncodeBool(c.Private)
	_ = e.EncodeMapLen(len(c.Metadata))
	for k, v := range c.Metadata {
		_ = e.EncodeString(k)
		_ = e.EncodeString(v)
	}
	_ = e.EncodeUint(c.Seed)
	_ = e.EncodeUint(c.Epoch)
	_ = e.EncodeUint(c.Tick)
	_ = e.EncodeUint(c.GameTick)
	_ = e.EncodeBool(c.Paused)
	_ = e.EncodeUint(uint64(c.NextPlayer))
	_ = e.EncodeInt(c.Created.UnixNano())
	_ = e.EncodeBytes(c.State)
	_ = e.EncodeArrayLen(len(c.Seats))
	for _, s := range c.Seats {
		_ = e.EncodeArrayLen(5)
		_ = e.EncodeUint(uint64(s.Player))
		_ = e.EncodeString(s.Token)
		_ = e.EncodeUint(uint64(s.LastAck))
		_ = e.EncodeBool(s.Connected)
		_ = e.EncodeArrayLen(len(s.Inputs))
		for _, in := range s.Inputs {
			_ = e.EncodeArrayLen(2)
			_ = e.EncodeUint(uint64(in.Seq))
			_ = e.EncodeBytes(in.Payload)
		}
	}
	return b.Bytes()
}

// DecodeCheckpoint decodes an encoded checkpoint, bounding every field:
// anything malformed is ErrBadCheckpoint, another format version
// ErrCheckpointVersion, never a panic.
func DecodeCheckpoint(data []byte) (*Checkpoint, error) {
	if len(data) > MaxCheckpointSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrBadCheckpoint, len(data), MaxCheckpointSize)
	}
	if len(data) < 6 || string(data[:4]) != checkpointMagic {
		return nil, fmt.Errorf("%w: not a checkpoint", ErrBadCheckpoint)
	}
	if v := binary.BigEndian.Uint16(data[4:6]); v != CheckpointVersion {
		return nil, fmt.Errorf("%w: version %d, this build reads %d", ErrCheckpointVersion, v, CheckpointVersion)
	}
	d := &cpReader{}
	d.r.Reset(data[6:])
	d.d = msgpack.NewDecoder(&d.r)
	c := &Checkpoint{}
	if n := d.arrayLen(checkpointFields); n != checkpointFields && d.err == nil {
		d.fail("want %d fields, got %d", checkpointFields, n)
	}
	c.RoomID = d.str(wire.MaxIDLength)
	c.Mode = d.str(wire.MaxIDLength)
	c.MaxPlayers = int(d.uint(1 << 16))
	c.Private = d.bool()
	if n := d.mapLen(maxCheckpointMeta); n > 0 {
		c.Metadata = make(map[string]string, n)
		for range n {
			k := d.str(maxCheckpointField)
			c.Metadata[k] = d.str(maxCheckpointField)
		}
	}
	c.Seed = d.uint(1<<64 - 1)
	c.Epoch = d.uint(1 << 62)
	c.Tick = d.uint(1 << 62)
	c.GameTick = d.uint(1 << 62)
	c.Paused = d.bool()
	c.NextPlayer = uint32(d.uint(1 << 32))
	c.Created = time.Unix(0, d.int())
	c.State = d.bin(MaxCheckpointSize)
	seats := d.arrayLen(maxCheckpointSeats)
	for i := 0; i < seats && d.err == nil; i++ {
		if d.arrayLen(5) != 5 && d.err == nil {
			d.fail("a seat has 5 fields")
		}
		s := SeatCheckpoint{Player: uint32(d.uint(1 << 32)), Token: d.str(wire.MaxIDLength), LastAck: uint32(d.uint(1 << 32)), Connected: d.bool()}
		inputs := d.arrayLen(maxCheckpointInputs)
		for j := 0; j < inputs && d.err == nil; j++ {
			if d.arrayLen(2) != 2 && d.err == nil {
				d.fail("an input has 2 fields")
			}
			s.Inputs = append(s.Inputs, QueuedInput{Seq: uint32(d.uint(1 << 32)), Payload: d.bin(255)})
		}
		c.Seats = append(c.Seats, s)
	}
	if d.err == nil && d.r.Len() != 0 {
		d.fail("%d bytes after the checkpoint", d.r.Len())
	}
	if d.err != nil {
		return nil, d.err
	}
	return c, nil
}

// cpReader reads a checkpoint's fields; the first error sticks.
type cpReader struct {
	r   bytes.Reader
	d   *msgpack.Decoder
	err error
}

func (d *cpReader) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrBadCheckpoint, fmt.Sprintf(format, args...))
	}
}

func (d *cpReader) arrayLen(limit int) int {
	if d.err != nil {
		return 0
	}
	n, err := d.d.DecodeArrayLen()
	if err != nil || n < 0 || n > limit || n > d.r.Len() {
		d.fail("want an array of at most %d", limit)
		return 0
	}
	return n
}

func (d *cpReader) mapLen(limit int) int {
	if d.err != nil {
		return 0
	}
	n, err := d.d.DecodeMapLen()
	if err != nil || n > limit || n > d.r.Len() {
		d.fail("want a map of at most %d", limit)
		return 0
	}
	return max(n, 0)
}

func (d *cpReader) uint(limit uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, err := d.d.DecodeUint64()
	if err != nil || (limit != 1<<64-1 && v >= limit) {
		d.fail("want an unsigned integer below %d", limit)
		return 0
	}
	return v
}

func (d *cpReader) int() int64 {
	if d.err != nil {
		return 0
	}
	v, err := d.d.DecodeInt64()
	if err != nil {
		d.fail("want an integer")
	}
	return v
}

func (d *cpReader) bool() bool {
	if d.err != nil {
		return false
	}
	v, err := d.d.DecodeBool()
	if err != nil {
		d.fail("want a bool")
	}
	return v
}

func (d *cpReader) bin(limit int) []byte {
	if d.err != nil {
		return nil
	}
	n, err := d.d.DecodeBytesLen()
	if err != nil || n > limit || n > d.r.Len() {
		d.fail("want bytes, at most %d", limit)
		return nil
	}
	if n <= 0 {
		return []byte{}
	}
	b := make([]byte, n)
	if err := d.d.ReadFull(b); err != nil {
		d.fail("truncated bytes")
		return nil
	}
	return b
}

func (d *cpReader) str(limit int) string { return string(d.bin(limit)) }
