package wire_test

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tickroom/tickroom/netcode/wire"
)

// snapshotFrame is what the server sends one player: the per-player head and
// the shared body.
func snapshotFrame(dst []byte, ack uint32, body []byte) []byte {
	return append(wire.AppendSnapshotHead(dst[:0], ack), body...)
}

// requireSameEntities compares entity lists, an empty list equal to nil.
func requireSameEntities(tb testing.TB, want, got []wire.Entity, msgAndArgs ...any) {
	tb.Helper()
	if len(want) == 0 && len(got) == 0 {
		return
	}
	require.Equal(tb, want, got, msgAndArgs...)
}

func requireStrictlyIncreasing(tb testing.TB, ents []wire.Entity) {
	tb.Helper()
	for i := 1; i < len(ents); i++ {
		require.Less(tb, ents[i-1].ID, ents[i].ID, "entity ids not strictly increasing at %d", i)
	}
}

// entityGen makes random entity lists and evolves them the way a game does:
// entities appear, disappear, move and now and then change kind. Field values
// are mostly small, sometimes large and sometimes the int32 extremes, so
// deltas wrap.
type entityGen struct {
	rng *rand.Rand
}

var extremeFields = []int32{math.MinInt32, math.MinInt32 + 1, -1 << 16, -1, 0, 1, 1 << 16, math.MaxInt32 - 1, math.MaxInt32}

func (g entityGen) field() int32 {
	switch r := g.rng.IntN(20); {
	case r < 6:
		return 0
	case r < 15:
		return int32(g.rng.IntN(201) - 100)
	case r < 18:
		return int32(g.rng.IntN(2_000_001) - 1_000_000)
	default:
		return extremeFields[g.rng.IntN(len(extremeFields))]
	}
}

func (g entityGen) kind() uint16 {
	if g.rng.IntN(50) == 0 {
		return math.MaxUint16
	}
	return uint16(g.rng.IntN(4))
}

func (g entityGen) id() uint32 {
	switch g.rng.IntN(40) {
	case 0:
		return 0
	case 1:
		return math.MaxUint32 - uint32(g.rng.IntN(3))
	case 2:
		return uint32(g.rng.IntN(1 << 20))
	}
	return uint32(g.rng.IntN(300))
}

func (g entityGen) entity(id uint32) wire.Entity {
	ent := wire.Entity{ID: id, Kind: g.kind()}
	used := g.rng.IntN(wire.MaxFields + 1)
	for f := range used {
		ent.Fields[f] = g.field()
	}
	return ent
}

// evolve returns a new list made from prev; prev is not modified.
func (g entityGen) evolve(prev []wire.Entity) []wire.Entity {
	next := make([]wire.Entity, 0, len(prev)+4)
	ids := make(map[uint32]bool, len(prev))
	removeP := 0.05
	switch g.rng.IntN(50) {
	case 0:
		removeP = 1 // the room empties
	case 1, 2, 3:
		removeP = 0.5
	}
	for _, ent := range prev {
		if g.rng.Float64() < removeP {
			continue
		}
		ids[ent.ID] = true
		switch r := g.rng.IntN(20); {
		case r == 0:
			ent.Kind = g.kind() // may be unchanged
		case r < 14:
			for f := range wire.MaxFields {
				if g.rng.IntN(3) == 0 {
					if g.rng.IntN(4) == 0 {
						ent.Fields[f] = g.field()
					} else {
						ent.Fields[f] += int32(g.rng.IntN(41) - 20) // wraps at the extremes
					}
				}
			}
		}
		next = append(next, ent)
	}
	for range g.rng.IntN(5) {
		id := g.id()
		if ids[id] {
			continue // an id removed this tick may come back as a new entity
		}
		ids[id] = true
		next = append(next, g.entity(id))
	}
	slices.SortFunc(next, func(a, b wire.Entity) int { return cmp.Compare(a.ID, b.ID) })
	return next
}

// The delta codec is exact: for random state sequences, the delta of each
// state against one of the previous few, applied to that state, gives the
// state back, and so does the full snapshot applied to nothing.
func TestSnapshotDeltaProperty(t *testing.T) {
	const seeds, steps = 20, 100 // 2000 (base, next) pairs
	enc, dec := wire.NewEncoder(), wire.NewDecoder()
	var (
		msg   wire.ServerMessage
		frame []byte
		dst   []wire.Entity
		err   error
	)
	for seed := range uint64(seeds) {
		g := entityGen{rng: rand.New(rand.NewPCG(seed, 0x7157))}
		type state struct {
			tick uint64
			ents []wire.Entity
		}
		tick := 1 + g.rng.Uint64N(1<<20)
		if seed%5 == 0 {
			tick = math.MaxUint64 - steps*1000 // ticks beyond 32 bits
		}
		history := []state{{tick, nil}}
		for step := range steps {
			prev := history[max(0, len(history)-1-g.rng.IntN(4))] // the client acked an older tick
			cur := history[len(history)-1]
			next := g.evolve(cur.ents)
			tick += 1 + g.rng.Uint64N(3)
			ack := g.rng.Uint32()
			serverTime := time.Now().UnixMilli() + int64(step)
			if seed%7 == 0 {
				serverTime = -serverTime
			}
			flags := uint8(g.rng.UintN(256))
			prevCopy := slices.Clone(prev.ents)

			body := enc.SnapshotBody(tick, serverTime, prev.tick, flags, prev.ents, next)
			frame = snapshotFrame(frame, ack, body)
			require.NoError(t, dec.DecodeServer(frame, &msg), "seed %d step %d", seed, step)
			require.Equal(t, wire.TypeSnapshot, msg.Type)
			s := &msg.Snapshot
			require.Equal(t, ack, s.Ack)
			require.Equal(t, tick, s.Tick)
			require.Equal(t, serverTime, s.ServerTime)
			require.Equal(t, prev.tick, s.Base)
			require.Equal(t, flags, s.Flags)
			require.False(t, s.Full())

			dst, err = s.Apply(dst, prev.ents)
			require.NoError(t, err, "seed %d step %d", seed, step)
			requireSameEntities(t, next, dst, "delta: seed %d step %d", seed, step)
			requireSameEntities(t, prevCopy, prev.ents, "Apply must not modify its base")

			// The full snapshot of the same tick ignores prev.
			body = enc.SnapshotBody(tick, serverTime, 0, flags, prev.ents, next)
			frame = snapshotFrame(frame, ack, body)
			require.NoError(t, dec.DecodeServer(frame, &msg))
			require.True(t, s.Full())
			require.Zero(t, s.Base)
			require.Equal(t, tick, s.Tick)
			require.Empty(t, s.Removed)
			require.Empty(t, s.Changed)
			full, err := s.Apply(nil, cur.ents) // the base is ignored
			require.NoError(t, err)
			requireSameEntities(t, next, full, "full: seed %d step %d", seed, step)

			history = append(history, state{tick, next})
		}
	}
}

// Every player who gets the same (tick, base) shares one body; only the head
// with the ack differs.
func TestSnapshotBodySharedByPlayers(t *testing.T) {
	prev, next := arena16(0), arena16(1)
	body := wire.NewEncoder().SnapshotBody(70001, time.Now().UnixMilli(), 70000, 0, prev, next)
	d := wire.NewDecoder()
	for _, ack := range []uint32{0, 5, 300, 70000, math.MaxUint32} {
		var m wire.ServerMessage
		require.NoError(t, d.DecodeServer(snapshotFrame(nil, ack, body), &m))
		assert.Equal(t, ack, m.Snapshot.Ack)
		got, err := m.Snapshot.Apply(nil, prev)
		require.NoError(t, err)
		assert.Equal(t, next, got)
	}
}

// An entity whose kind changes is removed and added again in one snapshot;
// unchanged entities are not mentioned at all.
func TestSnapshotKindChange(t *testing.T) {
	prev := []wire.Entity{{ID: 1, Kind: 1, Fields: [8]int32{10}}, {ID: 2, Kind: 1, Fields: [8]int32{20}}, {ID: 3, Kind: 1}}
	next := []wire.Entity{{ID: 1, Kind: 1, Fields: [8]int32{10}}, {ID: 2, Kind: 2, Fields: [8]int32{20}}, {ID: 3, Kind: 1, Fields: [8]int32{0, -5}}}
	var m wire.ServerMessage
	body := wire.NewEncoder().SnapshotBody(11, 0, 10, wire.FlagPaused, prev, next)
	require.NoError(t, wire.NewDecoder().DecodeServer(snapshotFrame(nil, 0, body), &m))
	s := m.Snapshot
	assert.Equal(t, wire.FlagPaused, s.Flags)
	assert.Equal(t, []uint32{2}, s.Removed)
	assert.Equal(t, []wire.Entity{next[1]}, s.Added)
	assert.Equal(t, []wire.EntityChange{{ID: 3, Mask: 0b10, Delta: [8]int32{0, -5}}}, s.Changed)
	got, err := s.Apply(nil, prev)
	require.NoError(t, err)
	assert.Equal(t, next, got)
}

func TestApplyErrors(t *testing.T) {
	base := []wire.Entity{{ID: 2, Kind: 1}, {ID: 4, Kind: 1}, {ID: 6, Kind: 1}}
	cases := []struct {
		name string
		s    wire.Snapshot
	}{
		{"change of an unknown entity", wire.Snapshot{Tick: 2, Base: 1, Changed: []wire.EntityChange{{ID: 5, Mask: 1, Delta: [8]int32{1}}}}},
		{"change beyond the last entity", wire.Snapshot{Tick: 2, Base: 1, Changed: []wire.EntityChange{{ID: 4, Mask: 1}, {ID: 7, Mask: 1}}}},
		{"change of a removed entity", wire.Snapshot{Tick: 2, Base: 1, Removed: []uint32{4}, Changed: []wire.EntityChange{{ID: 4, Mask: 1}}}},
		{"removal of an unknown entity between", wire.Snapshot{Tick: 2, Base: 1, Removed: []uint32{3}}},
		{"removal of an unknown entity before", wire.Snapshot{Tick: 2, Base: 1, Removed: []uint32{1}}},
		{"removal of an unknown entity after", wire.Snapshot{Tick: 2, Base: 1, Removed: []uint32{6, 9}}},
		{"removal of an entity added in the same snapshot", wire.Snapshot{Tick: 2, Base: 1, Removed: []uint32{5}, Added: []wire.Entity{{ID: 5}}}},
		{"add of an existing entity", wire.Snapshot{Tick: 2, Base: 1, Added: []wire.Entity{{ID: 4, Kind: 2}}}},
		{"add of the first entity", wire.Snapshot{Tick: 2, Base: 1, Added: []wire.Entity{{ID: 2, Kind: 2}}}},
		{"add of the last entity", wire.Snapshot{Tick: 2, Base: 1, Added: []wire.Entity{{ID: 6}}}},
		{"full snapshot that removes", wire.Snapshot{Tick: 2, Removed: []uint32{2}}},
		{"full snapshot that changes", wire.Snapshot{Tick: 2, Added: base, Changed: []wire.EntityChange{{ID: 2, Mask: 1}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			baseCopy := slices.Clone(base)
			_, err := tc.s.Apply(make([]wire.Entity, 0, 8), base)
			require.ErrorIs(t, err, wire.ErrBadDelta)
			assert.Equal(t, baseCopy, base, "Apply must not modify its base")
		})
	}

	// Against an empty base nothing can be removed or changed.
	_, err := (&wire.Snapshot{Tick: 2, Base: 1, Removed: []uint32{1}}).Apply(nil, nil)
	require.ErrorIs(t, err, wire.ErrBadDelta)
	_, err = (&wire.Snapshot{Tick: 2, Base: 1, Changed: []wire.EntityChange{{ID: 1}}}).Apply(nil, nil)
	require.ErrorIs(t, err, wire.ErrBadDelta)
}

func TestApplyOrder(t *testing.T) {
	base := []wire.Entity{{ID: 2, Kind: 1, Fields: [8]int32{5}}, {ID: 4, Kind: 1}, {ID: 6, Kind: 1}}
	s := wire.Snapshot{
		Tick: 9, Base: 8,
		Removed: []uint32{4, 6},
		Added:   []wire.Entity{{ID: 1, Kind: 3}, {ID: 4, Kind: 2, Fields: [8]int32{7}}, {ID: 9, Kind: 3}},
		// Changes apply after adds, so an entity added here may change too.
		Changed: []wire.EntityChange{{ID: 2, Mask: 1, Delta: [8]int32{math.MaxInt32}}, {ID: 4, Mask: 1, Delta: [8]int32{1}}},
	}
	got, err := s.Apply([]wire.Entity{{ID: 99}}, base)
	require.NoError(t, err)
	assert.Equal(t, []wire.Entity{
		{ID: 1, Kind: 3},
		{ID: 2, Kind: 1, Fields: [8]int32{math.MinInt32 + 4}}, // wraps
		{ID: 4, Kind: 2, Fields: [8]int32{8}},
		{ID: 9, Kind: 3},
	}, got)
}

// rawSnapshot builds a snapshot frame by hand with the msgpack library:
// [20, ack, tick, serverTime, baseOffset, flags, removed, added, changed].
func rawSnapshot(tb testing.TB, tick, offset any, removed, added, changed []any) []byte {
	tb.Helper()
	return mustMarshal(tb, []any{wire.TypeSnapshot, 1, tick, 1764000000000, offset, 0, removed, added, changed})
}

func TestDecodeSnapshot(t *testing.T) {
	frame := rawSnapshot(t, 10, 3,
		[]any{1, 5},
		[]any{2, 1, 0b101, -7, 1 << 20, 6, 65535, 0},
		[]any{3, 0b10000000, math.MinInt32, 4, 0},
	)
	var m wire.ServerMessage
	require.NoError(t, wire.NewDecoder().DecodeServer(frame, &m))
	assert.Equal(t, wire.Snapshot{
		Ack: 1, Tick: 10, ServerTime: 1764000000000, Base: 7,
		Removed: []uint32{1, 5},
		Added:   []wire.Entity{{ID: 2, Kind: 1, Fields: [8]int32{-7, 0, 1 << 20}}, {ID: 6, Kind: 65535}},
		Changed: []wire.EntityChange{{ID: 3, Mask: 0x80, Delta: [8]int32{7: math.MinInt32}}, {ID: 4}},
	}, m.Snapshot)

	// Elements a newer server appends are ignored.
	extended := mustMarshal(t, []any{wire.TypeSnapshot, 1, 10, 0, 0, 0, []any{}, []any{1, 1, 0}, []any{}, "future", []any{1, 2}})
	require.NoError(t, wire.NewDecoder().DecodeServer(extended, &m))
	assert.Equal(t, []wire.Entity{{ID: 1, Kind: 1}}, m.Snapshot.Added)
}

// snapshotWithRawTail is a snapshot frame whose last fields (added, changed)
// are the given raw bytes.
func snapshotWithRawTail(tb testing.TB, tail ...byte) []byte {
	tb.Helper()
	frame := mustMarshal(tb, []any{wire.TypeSnapshot, 1, 10, 0, 0, 0, []any{}})
	require.Equal(tb, byte(0x97), frame[0])
	frame[0] = 0x90 | wire.SnapshotFields
	return append(frame, tail...)
}

func TestDecodeSnapshotErrors(t *testing.T) {
	none := []any{}
	cases := []struct {
		name  string
		frame []byte
	}{
		{"removed ids equal", rawSnapshot(t, 10, 1, []any{3, 3}, none, none)},
		{"removed ids decreasing", rawSnapshot(t, 10, 1, []any{5, 2}, none, none)},
		{"added ids equal", rawSnapshot(t, 10, 1, none, []any{2, 1, 0, 2, 1, 0}, none)},
		{"added ids decreasing", rawSnapshot(t, 10, 1, none, []any{2, 1, 0, 1, 1, 0}, none)},
		{"changed ids equal", rawSnapshot(t, 10, 1, none, none, []any{2, 1, 5, 2, 1, 6})},
		{"changed ids decreasing", rawSnapshot(t, 10, 1, none, none, []any{3, 1, 5, 2, 1, 6})},
		{"added mask needs more values", rawSnapshot(t, 10, 1, none, []any{1, 1, 0b111, 10, 20}, none)},
		{"added without kind and mask", rawSnapshot(t, 10, 1, none, []any{1}, none)},
		{"changed mask needs more values", rawSnapshot(t, 10, 1, none, none, []any{1, 0b11, 5})},
		{"changed without mask", rawSnapshot(t, 10, 1, none, none, []any{1})},
		{"added field above int32", rawSnapshot(t, 10, 1, none, []any{1, 1, 1, 1 << 31}, none)},
		{"added field below int32", rawSnapshot(t, 10, 1, none, []any{1, 1, 1, -1<<31 - 1}, none)},
		{"changed delta above int32", rawSnapshot(t, 10, 1, none, none, []any{1, 1, int64(1) << 40})},
		{"changed delta a string", rawSnapshot(t, 10, 1, none, none, []any{1, 1, "5"})},
		{"added kind above 16 bits", rawSnapshot(t, 10, 1, none, []any{1, 65536, 0}, none)},
		{"added mask above 8 bits", rawSnapshot(t, 10, 1, none, []any{1, 1, 256}, none)},
		{"changed mask above 8 bits", rawSnapshot(t, 10, 1, none, none, []any{1, 256})},
		{"added negative id", rawSnapshot(t, 10, 1, none, []any{-1, 1, 0}, none)},
		{"added id above 32 bits", rawSnapshot(t, 10, 1, none, []any{int64(1) << 32, 1, 0}, none)},
		{"removed id above 32 bits", rawSnapshot(t, 10, 1, []any{int64(1) << 32}, none, none)},
		{"removed id a string", rawSnapshot(t, 10, 1, []any{"1"}, none, none)},
		{"base offset beyond tick", rawSnapshot(t, 5, 6, none, none, none)},
		{"delta against tick 0", rawSnapshot(t, 5, 5, none, none, none)},
		{"tick a string", rawSnapshot(t, "5", 0, none, none, none)},
		{"flags above 8 bits", mustMarshal(t, []any{wire.TypeSnapshot, 1, 10, 0, 0, 256, none, none, none})},
		{"ack above 32 bits", mustMarshal(t, []any{wire.TypeSnapshot, int64(1) << 32, 10, 0, 0, 0, none, none, none})},
		{"without changed", mustMarshal(t, []any{wire.TypeSnapshot, 1, 10, 0, 0, 0, none, none})},
		{"added not an array", mustMarshal(t, []any{wire.TypeSnapshot, 1, 10, 0, 0, 0, none, 1, none})},
		{"added longer than the frame", snapshotWithRawTail(t, 0xdd, 0x7f, 0xff, 0xff, 0xff, 0x90)},
		{"changed longer than the frame", snapshotWithRawTail(t, 0x90, 0xdc, 0xff, 0xff, 0x01)},
	}
	d := wire.NewDecoder()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var m wire.ServerMessage
			err := d.DecodeServer(tc.frame, &m)
			require.ErrorIs(t, err, wire.ErrBadField)
			var de *wire.DecodeError
			require.ErrorAs(t, err, &de)
			assert.Equal(t, wire.TypeSnapshot, de.Type)
		})
	}
}

// arena16 is the demo arena at a given tick: 16 players with ids 1..16, kind
// 1, fields x and y in centi-units in the thousands, every one moving by
// (+12, -8) per tick.
func arena16(tick int32) []wire.Entity {
	ents := make([]wire.Entity, 16)
	for i := range ents {
		ents[i] = wire.Entity{
			ID:     uint32(i + 1),
			Kind:   1,
			Fields: [wire.MaxFields]int32{1000 + 500*int32(i) + 12*tick, 9000 - 300*int32(i) - 8*tick},
		}
	}
	return ents
}

// A delta of the arena with every player moving fits a 100-byte WebSocket
// frame, ticks and acks beyond 16 bits and a real clock included.
func TestArenaDeltaSize(t *testing.T) {
	const tick = 70001
	prev, next := arena16(tick-1), arena16(tick)
	body := wire.NewEncoder().SnapshotBody(tick, time.Now().UnixMilli(), tick-1, 0, prev, next)
	head := wire.AppendSnapshotHead(nil, 70000)
	size := len(head) + len(body) + 2 // a server frame under 126 bytes has a 2-byte header
	t.Logf("arena delta, 16 players moving: %d bytes (head %d, body %d, WebSocket header 2)", size, len(head), len(body))
	assert.LessOrEqual(t, size, 100)

	// and it decodes to the next state
	var m wire.ServerMessage
	require.NoError(t, wire.NewDecoder().DecodeServer(append(head, body...), &m))
	got, err := m.Snapshot.Apply(nil, prev)
	require.NoError(t, err)
	assert.Equal(t, next, got)
}
