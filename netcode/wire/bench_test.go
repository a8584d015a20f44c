package wire_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/tickroom/tickroom/netcode/wire"
)

// The arena benchmarks use arena16: 16 players, every one moving each tick.

func BenchmarkSnapshotBody16Full(b *testing.B) {
	ents := arena16(1)
	e := wire.NewEncoder()
	now := time.Now().UnixMilli()
	b.ReportAllocs()
	for b.Loop() {
		e.SnapshotBody(70001, now, 0, 0, nil, ents)
	}
}

func BenchmarkSnapshotBody16Delta(b *testing.B) {
	prev, next := arena16(0), arena16(1)
	e := wire.NewEncoder()
	now := time.Now().UnixMilli()
	var body []byte
	b.ReportAllocs()
	for b.Loop() {
		body = e.SnapshotBody(70001, now, 70000, 0, prev, next)
	}
	b.ReportMetric(float64(len(wire.AppendSnapshotHead(nil, 70000))+len(body)), "bytes/snapshot")
}

// The per-player part of a snapshot, into a reused buffer: no allocation.
func BenchmarkAppendSnapshotHead(b *testing.B) {
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		buf = wire.AppendSnapshotHead(buf[:0], 70000)
	}
}

func BenchmarkDecodeInput(b *testing.B) {
	frame := bytes.Clone(wire.NewEncoder().Input(wire.Input{Seq: 123456, Payload: []byte{0x05}})) // [4, seq, 5]
	d := wire.NewDecoder()
	var m wire.ClientMessage
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if err := d.DecodeClient(frame, &m); err != nil {
			b.Fatal(err)
		}
	}
}

func arenaDeltaFrame() []byte {
	body := wire.NewEncoder().SnapshotBody(70001, time.Now().UnixMilli(), 70000, 0, arena16(0), arena16(1))
	return snapshotFrame(nil, 70000, body)
}

func BenchmarkDecodeSnapshotDelta16(b *testing.B) {
	frame := arenaDeltaFrame()
	d := wire.NewDecoder()
	var m wire.ServerMessage
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if err := d.DecodeServer(frame, &m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkApplyDelta16(b *testing.B) {
	var m wire.ServerMessage
	if err := wire.NewDecoder().DecodeServer(arenaDeltaFrame(), &m); err != nil {
		b.Fatal(err)
	}
	base := arena16(0)
	dst := make([]wire.Entity, 0, len(base))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = m.Snapshot.Apply(dst, base); err != nil {
			b.Fatal(err)
		}
	}
}
