package wire

import (
	"errors"
	"fmt"
	"math/bits"
)

// MaxFields is the number of quantised fields an entity carries.
const MaxFields = 8

// MaxEntities bounds the entities in one snapshot, for decoders.
const MaxEntities = 1 << 16

// FlagPaused is set in a snapshot's flags while the room is paused.
const FlagPaused uint8 = 1 << 0

// Entity is one game object as snapshots carry it: an id unique in its room,
// a game-defined kind, and up to MaxFields quantised integer fields whose
// meaning the game defines (the demo arena: x and y in centi-units).
// Snapshots list entities in strictly increasing ID order.
type Entity struct {
	ID     uint32
	Kind   uint16
	Fields [MaxFields]int32
}

// EntityChange is the change of one entity's fields between two snapshots:
// for each bit i set in Mask, field i changed by Delta[i] (32-bit two's
// complement, wrapping).
type EntityChange struct {
	ID    uint32
	Mask  uint8
	Delta [MaxFields]int32
}

// Snapshot is a decoded snapshot message. A full snapshot has Base 0 and
// lists every entity in Added. A delta names the tick it is against in Base;
// applying it to the entities of tick Base gives the entities of Tick.
type Snapshot struct {
	Ack        uint32 // the receiving player's highest applied input seq
	Tick       uint64
	ServerTime int64 // milliseconds since the Unix epoch at the tick's start
	Base       uint64
	Flags      uint8
	Removed    []uint32
	Added      []Entity
	Changed    []EntityChange
}

// Full reports whether s is a full snapshot rather than a delta.
func (s *Snapshot) Full() bool { return s.Base == 0 }

// SnapshotFields is the number of elements in a snapshot message array.
const SnapshotFields = 9

// AppendSnapshotHead appends the per-player head of a snapshot message: the
// array header, the type and the player's ack. The rest, shared by every
// player that gets the same (tick, base), comes from Encoder.SnapshotBody.
func AppendSnapshotHead(dst []byte, ack uint32) []byte {
	dst = append(dst, 0x90|SnapshotFields, byte(TypeSnapshot))
	return appendUint32(dst, ack)
}

// appendUint32 appends v in MessagePack's shortest unsigned form, as the
// msgpack encoder would; hand-written because it runs per player per tick.
func appendUint32(dst []byte, v uint32) []byte {
	switch {
	case v < 0x80:
		return append(dst, byte(v))
	case v <= 0xff:
		return append(dst, 0xcc, byte(v))
	case v <= 0xffff:
		return append(dst, 0xcd, byte(v>>8), byte(v))
	default:
		return append(dst, 0xce, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
}

type changedEntity struct {
	next int // index in next
	mask uint8
	prev int // index in prev
}

// SnapshotBody encodes everything of a snapshot message after the ack: the
// tick, the server time, the base and flags, and next as a delta against prev
// (a full snapshot when base is 0, and then prev is ignored). prev and next
// must be in strictly increasing ID order. The returned bytes are valid until
// the Encoder's next call.
func (e *Encoder) SnapshotBody(tick uint64, serverTime int64, base uint64, flags uint8, prev, next []Entity) []byte {
	if base == 0 {
		prev = nil
	}
	e.diff(prev, next)
	e.buf.Reset()
	e.uint(tick)
	e.int(serverTime)
	if base == 0 {
		e.uint(0)
	} else {
		e.uint(tick - base)
	}
	e.uint(uint64(flags))

	e.arrayLen(len(e.removed))
	for _, id := range e.removed {
		e.uint(uint64(id))
	}

	n := 0
	for _, i := range e.added {
		n += 3 + bits.OnesCount8(nonZeroMask(&next[i]))
	}
	e.arrayLen(n)
	for _, i := range e.added {
		ent := &next[i]
		mask := nonZeroMask(ent)
		e.uint(uint64(ent.ID))
		e.uint(uint64(ent.Kind))
		e.uint(uint64(mask))
		for f := range MaxFields {
			if mask&(1<<f) != 0 {
				e.int(int64(ent.Fields[f]))
			}
		}
	}

	n = 0
	for _, c := range e.changed {
		n += 2 + bits.OnesCount8(c.mask)
	}
	e.arrayLen(n)
	for _, c := range e.changed {
		p, q := &prev[c.prev], &next[c.next]
		e.uint(uint64(q.ID))
		e.uint(uint64(c.mask))
		for f := range MaxFields {
			if c.mask&(1<<f) != 0 {
				e.int(int64(q.Fields[f] - p.Fields[f]))
			}
		}
	}
	return e.bytes()
}

func nonZeroMask(ent *Entity) uint8 {
	var m uint8
	for f, v := range ent.Fields {
		if v != 0 {
			m |= 1 << f
		}
	}
	return m
}

// diff fills the scratch lists by merging prev and next. An entity whose kind
// changed is removed and added again.
func (e *Encoder) diff(prev, next []Entity) {
	e.removed, e.added, e.changed = e.removed[:0], e.added[:0], e.changed[:0]
	i, j := 0, 0
	for i < len(prev) || j < len(next) {
		switch {
		case j == len(next) || (i < len(prev) && prev[i].ID < next[j].ID):
			e.removed = append(e.removed, prev[i].ID)
			i++
		case i == len(prev) || next[j].ID < prev[i].ID:
			e.added = append(e.added, j)
			j++
		default:
			p, q := &prev[i], &next[j]
			if p.Kind != q.Kind {
				e.removed = append(e.removed, p.ID)
				e.added = append(e.added, j)
			} else {
				var mask uint8
				for f := range MaxFields {
					if p.Fields[f] != q.Fields[f] {
						mask |= 1 << f
					}
				}
				if mask != 0 {
					e.changed = append(e.changed, changedEntity{next: j, mask: mask, prev: i})
				}
			}
			i++
			j++
		}
	}
}

func (d *Decoder) decodeSnapshot(s *Snapshot) (err error) {
	if s.Ack, err = d.uint32(); err != nil {
		return err
	}
	if s.Tick, err = d.uint64(); err != nil {
		return err
	}
	if s.ServerTime, err = d.int64(); err != nil {
		return err
	}
	offset, err := d.uint64()
	if err != nil {
		return err
	}
	if offset > s.Tick {
		return fmt.Errorf("base offset %d is beyond tick %d", offset, s.Tick)
	}
	s.Base = 0
	if offset != 0 {
		s.Base = s.Tick - offset
		if s.Base == 0 {
			return errors.New("delta against tick 0")
		}
	}
	flags, err := d.uint64()
	if err != nil {
		return err
	}
	if flags > 0xff {
		return fmt.Errorf("flags %d do not fit 8 bits", flags)
	}
	s.Flags = uint8(flags)

	if s.Removed, err = d.uint32Array(s.Removed[:0]); err != nil {
		return err
	}
	if err = strictlyIncreasing(len(s.Removed), func(i int) uint32 { return s.Removed[i] }); err != nil {
		return fmt.Errorf("removed: %w", err)
	}
	if s.Added, err = d.decodeAdded(s.Added[:0]); err != nil {
		return err
	}
	if s.Changed, err = d.decodeChanged(s.Changed[:0]); err != nil {
		return err
	}
	if len(s.Removed)+len(s.Added) > MaxEntities || len(s.Changed) > MaxEntities {
		return fmt.Errorf("more than %d entities", MaxEntities)
	}
	return nil
}

func strictlyIncreasing(n int, id func(int) uint32) error {
	for i := 1; i < n; i++ {
		if id(i) <= id(i-1) {
			return fmt.Errorf("entity ids not strictly increasing at %d", id(i))
		}
	}
	return nil
}

// flatElem reads one element of a flat entity array, counting it off n.
func (d *Decoder) flatElem(n *int) (int64, error) {
	if *n == 0 {
		return 0, errors.New("flat entity array ends inside an entity")
	}
	*n--
	return d.d.DecodeInt64()
}

func (d *Decoder) flatUint(n *int, max uint64) (uint64, error) {
	v, err := d.flatElem(n)
	if err != nil {
		return 0, err
	}
	if v < 0 || uint64(v) > max {
		return 0, fmt.Errorf("value %d out of range 0..%d", v, max)
	}
	return uint64(v), nil
}

func (d *Decoder) flatInt32(n *int) (int32, error) {
	v, err := d.flatElem(n)
	if err != nil {
		return 0, err
	}
	if v < -1<<31 || v > 1<<31-1 {
		return 0, fmt.Errorf("field value %d does not fit 32 bits", v)
	}
	return int32(v), nil
}

func (d *Decoder) decodeAdded(dst []Entity) ([]Entity, error) {
	if err := d.field(); err != nil {
		return dst, err
	}
	n, err := d.arrayLen()
	if err != nil {
		return dst, err
	}
	for n > 0 {
		var ent Entity
		id, err := d.flatUint(&n, 1<<32-1)
		if err != nil {
			return dst, err
		}
		kind, err := d.flatUint(&n, 1<<16-1)
		if err != nil {
			return dst, err
		}
		mask, err := d.flatUint(&n, 0xff)
		if err != nil {
			return dst, err
		}
		ent.ID, ent.Kind = uint32(id), uint16(kind)
		for f := range MaxFields {
			if mask&(1<<f) != 0 {
				if ent.Fields[f], err = d.flatInt32(&n); err != nil {
					return dst, err
				}
			}
		}
		if len(dst) > 0 && ent.ID <= dst[len(dst)-1].ID {
			return dst, fmt.Errorf("added: entity ids not strictly increasing at %d", ent.ID)
		}
		dst = append(dst, ent)
	}
	return dst, nil
}

func (d *Decoder) decodeChanged(dst []EntityChange) ([]EntityChange, error) {
	if err := d.field(); err != nil {
		return dst, err
	}
	n, err := d.arrayLen()
	if err != nil {
		return dst, err
	}
	for n > 0 {
		var c EntityChange
		id, err := d.flatUint(&n, 1<<32-1)
		if err != nil {
			return dst, err
		}
		mask, err := d.flatUint(&n, 0xff)
		if err != nil {
			return dst, err
		}
		c.ID, c.Mask = uint32(id), uint8(mask)
		for f := range MaxFields {
			if c.Mask&(1<<f) != 0 {
				if c.Delta[f], err = d.flatInt32(&n); err != nil {
					return dst, err
				}
			}
		}
		if len(dst) > 0 && c.ID <= dst[len(dst)-1].ID {
			return dst, fmt.Errorf("changed: entity ids not strictly increasing at %d", c.ID)
		}
		dst = append(dst, c)
	}
	return dst, nil
}

// ErrBadDelta: a snapshot that cannot be applied to the given base, for
// example one that changes an entity the base does not have.
var ErrBadDelta = errors.New("wire: snapshot does not apply to its base")

// Apply appends to dst[:0] the entities that s describes, given the entities
// of tick s.Base in base (ignored for a full snapshot), and returns it. Order:
// remove, then add, then change. dst must not share memory with base.
func (s *Snapshot) Apply(dst, base []Entity) ([]Entity, error) {
	dst = dst[:0]
	if s.Full() {
		if len(s.Removed) != 0 || len(s.Changed) != 0 {
			return dst, fmt.Errorf("%w: a full snapshot removes or changes entities", ErrBadDelta)
		}
		return append(dst, s.Added...), nil
	}
	i, r, a := 0, 0, 0
	for i < len(base) || a < len(s.Added) {
		if i < len(base) && r < len(s.Removed) && s.Removed[r] < base[i].ID {
			return dst, fmt.Errorf("%w: removes unknown entity %d", ErrBadDelta, s.Removed[r])
		}
		removed := i < len(base) && r < len(s.Removed) && s.Removed[r] == base[i].ID
		switch {
		case i < len(base) && (a == len(s.Added) || base[i].ID < s.Added[a].ID):
			if removed {
				r++
			} else {
				dst = append(dst, base[i])
			}
			i++
		case i < len(base) && base[i].ID == s.Added[a].ID:
			if !removed {
				return dst, fmt.Errorf("%w: adds entity %d that exists", ErrBadDelta, base[i].ID)
			}
			r++
			i++
			dst = append(dst, s.Added[a])
			a++
		default:
			dst = append(dst, s.Added[a])
			a++
		}
	}
	if r != len(s.Removed) {
		return dst, fmt.Errorf("%w: removes unknown entity %d", ErrBadDelta, s.Removed[r])
	}
	j := 0
	for _, c := range s.Changed {
		for j < len(dst) && dst[j].ID < c.ID {
			j++
		}
		if j == len(dst) || dst[j].ID != c.ID {
			return dst, fmt.Errorf("%w: changes unknown entity %d", ErrBadDelta, c.ID)
		}
		for f := range MaxFields {
			if c.Mask&(1<<f) != 0 {
				dst[j].Fields[f] += c.Delta[f]
			}
		}
	}
	return dst, nil
}
