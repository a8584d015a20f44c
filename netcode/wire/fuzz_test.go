package wire_test

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/tickroom/tickroom/netcode/wire"
)

// fuzzBase is the state FuzzSnapshotApply applies deltas to.
var fuzzBase = []wire.Entity{
	{ID: 1, Kind: 1, Fields: [wire.MaxFields]int32{100, 200}},
	{ID: 3, Kind: 2, Fields: [wire.MaxFields]int32{-5, 0, 0, 0, 0, 0, 0, 1}},
	{ID: 7, Kind: 1, Fields: [wire.MaxFields]int32{math.MaxInt32, math.MinInt32}},
	{ID: 1000, Kind: math.MaxUint16},
}

// malformedSeeds are frames every decoder refuses, as starting points.
var malformedSeeds = [][]byte{
	{},
	{0x05},
	{0xc0},
	{0x80},
	{0x90},
	{0x92},
	{0xdc, 0x00},
	{0xc1},
	{0x91, 0x63},                   // [99]
	{0x93, 0x04, 0xa1, '1', 0x05},  // Input with a string seq
	{0x93, 0x04, 0x01, 0xdb, 0xff}, // Input with a payload cut short
	{0x92, 0x06, 0x01, 0x00},       // Ping with a trailing byte
}

// checkDecodeErr fails unless err is a DecodeError of one of the three kinds.
func checkDecodeErr(t *testing.T, err error) {
	t.Helper()
	var de *wire.DecodeError
	require.ErrorAs(t, err, &de)
	require.True(t, de.Kind == wire.ErrMalformed || de.Kind == wire.ErrUnknownType || de.Kind == wire.ErrBadField, "kind %v", de.Kind)
	require.ErrorIs(t, err, de.Kind)
	require.NotEmpty(t, err.Error())
}

// snapshotSeeds are valid snapshot frames: the arena, full and delta, and
// random deltas against fuzzBase.
func snapshotSeeds() [][]byte {
	e := wire.NewEncoder()
	var seeds [][]byte
	add := func(ack uint32, body []byte) {
		seeds = append(seeds, snapshotFrame(nil, ack, body))
	}
	add(70000, e.SnapshotBody(70001, 1764000000000, 0, 0, nil, arena16(1)))
	add(70000, e.SnapshotBody(70001, 1764000000000, 70000, 0, arena16(0), arena16(1)))
	add(3, e.SnapshotBody(10, 0, 9, wire.FlagPaused, fuzzBase, fuzzBase))
	add(3, e.SnapshotBody(10, 0, 0, 0, nil, fuzzBase))
	g := entityGen{rng: rand.New(rand.NewPCG(1, 2))}
	next := fuzzBase
	for i := range 6 {
		next = g.evolve(next)
		add(uint32(i), e.SnapshotBody(10, int64(i), 9, 0, fuzzBase, next))
	}
	return seeds
}

func FuzzDecodeClient(f *testing.F) {
	e := wire.NewEncoder()
	for _, tc := range clientCases {
		f.Add(bytes.Clone(encodeClient(f, e, &tc.msg)))
	}
	for _, p := range samplePayloads(f) {
		f.Add(bytes.Clone(e.Input(wire.Input{Seq: 1, Payload: p})))
	}
	for _, frame := range malformedSeeds {
		f.Add(frame)
	}
	f.Add(bytes.Clone(e.OK(wire.OK{ReqID: 1})))

	f.Fuzz(func(t *testing.T, frame []byte) {
		orig := bytes.Clone(frame)
		d := wire.NewDecoder()
		var m1 wire.ClientMessage
		err := d.DecodeClient(frame, &m1)
		require.Equal(t, orig, frame, "the decoder must not modify the frame")
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		// A raw payload is exactly one value as the msgpack library reads it.
		var payload []byte
		switch m1.Type {
		case wire.TypeInput:
			payload = m1.Input.Payload
		case wire.TypeMessage:
			payload = m1.Message.Payload
		}
		if payload != nil {
			r := bytes.NewReader(payload)
			require.NoError(t, msgpack.NewDecoder(r).Skip())
			require.Zero(t, r.Len())
		}

		// Decode, encode, decode again: the same message, raw payloads
		// byte-equal.
		again := encodeClient(t, wire.NewEncoder(), &m1)
		var m2 wire.ClientMessage
		require.NoError(t, d.DecodeClient(again, &m2))
		require.Equal(t, m1, m2)
	})
}

func FuzzDecodeServer(f *testing.F) {
	e := wire.NewEncoder()
	for _, tc := range serverCases {
		f.Add(bytes.Clone(encodeServer(f, e, &tc.msg)))
	}
	for _, frame := range snapshotSeeds() {
		f.Add(frame)
	}
	for _, frame := range malformedSeeds {
		f.Add(frame)
	}
	f.Add(bytes.Clone(e.Hello(wire.Hello{Version: 1})))

	f.Fuzz(func(t *testing.T, frame []byte) {
		orig := bytes.Clone(frame)
		d := wire.NewDecoder()
		var m1 wire.ServerMessage
		err := d.DecodeServer(frame, &m1)
		require.Equal(t, orig, frame, "the decoder must not modify the frame")
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		if m1.Type == wire.TypeSnapshot {
			s := &m1.Snapshot
			require.LessOrEqual(t, s.Base, s.Tick)
			if !s.Full() {
				return
			}
			got, err := s.Apply(nil, nil)
			if err != nil {
				require.ErrorIs(t, err, wire.ErrBadDelta)
				return
			}
			requireStrictlyIncreasing(t, got)
			return
		}
		again := encodeServer(t, wire.NewEncoder(), &m1)
		var m2 wire.ServerMessage
		require.NoError(t, d.DecodeServer(again, &m2))
		require.Equal(t, m1, m2)
	})
}

func FuzzSnapshotApply(f *testing.F) {
	for _, frame := range snapshotSeeds() {
		f.Add(frame)
	}
	f.Add([]byte{0x91, 0x14})

	f.Fuzz(func(t *testing.T, frame []byte) {
		d := wire.NewDecoder()
		var m wire.ServerMessage
		if err := d.DecodeServer(frame, &m); err != nil || m.Type != wire.TypeSnapshot {
			return
		}
		s := &m.Snapshot
		baseCopy := append([]wire.Entity(nil), fuzzBase...)
		got, err := s.Apply(nil, fuzzBase)
		require.Equal(t, baseCopy, fuzzBase, "Apply must not modify its base")
		if err != nil {
			require.ErrorIs(t, err, wire.ErrBadDelta)
			return
		}
		requireStrictlyIncreasing(t, got)

		// What Apply produced encodes back, as a delta against the same base
		// or as a full snapshot, to a snapshot that applies to the same.
		e := wire.NewEncoder()
		body := e.SnapshotBody(s.Tick, s.ServerTime, s.Base, s.Flags, fuzzBase, got)
		var m2 wire.ServerMessage
		require.NoError(t, d.DecodeServer(snapshotFrame(nil, s.Ack, body), &m2))
		require.Equal(t, s.Base, m2.Snapshot.Base)
		again, err := m2.Snapshot.Apply(nil, fuzzBase)
		require.NoError(t, err)
		requireSameEntities(t, got, again)
	})
}
