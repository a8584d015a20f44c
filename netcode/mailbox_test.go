package netcode

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recordingSource encodes nothing; it hands out frames that remember the
// base they were asked for.
type recordingSource struct {
	tick  uint64
	known map[uint64]bool // bases still in history
}

func (s *recordingSource) SnapshotFrame(base uint64) *SnapshotFrame {
	if base != 0 && !s.known[base] {
		base = 0
	}
	return &SnapshotFrame{Tick: s.tick, Base: base}
}

func TestMailboxBaseIsWhatTheClientLastReceived(t *testing.T) {
	var slot snapshotSlot
	src := &recordingSource{known: map[uint64]bool{}}
	offer := func(tick uint64, ack uint32) bool {
		src.tick = tick
		src.known[tick-1] = true
		return slot.offer(src, tick, ack)
	}

	// The first snapshot is full: the client has nothing.
	require.False(t, offer(1, 0))
	f, ack := slot.take()
	require.NotNil(t, f)
	assert.Equal(t, SnapshotFrame{Tick: 1, Base: 0}, *f)
	assert.Equal(t, uint32(0), ack)

	// Taken (so written): the next is a delta against it.
	require.False(t, offer(2, 5))
	f, ack = slot.take()
	assert.Equal(t, SnapshotFrame{Tick: 2, Base: 1}, *f)
	assert.Equal(t, uint32(5), ack)

	// A slow writer: ticks 3, 4, 5 are offered before it takes one. Each
	// replaces the last, and all stay deltas against tick 2, the last
	// snapshot the client actually got.
	require.False(t, offer(3, 6))
	require.True(t, offer(4, 7))
	require.True(t, offer(5, 8))
	f, ack = slot.take()
	assert.Equal(t, SnapshotFrame{Tick: 5, Base: 2}, *f)
	assert.Equal(t, uint32(8), ack, "the newest ack travels with the newest snapshot")

	// Nothing left: the writer finds the slot empty after a spurious wake.
	f, _ = slot.take()
	assert.Nil(t, f)

	// Next is against 5 again.
	require.False(t, offer(6, 8))
	f, _ = slot.take()
	assert.Equal(t, uint64(5), f.Base)
}

func TestMailboxFallsBackToFullWhenBaseIsForgotten(t *testing.T) {
	var slot snapshotSlot
	src := &recordingSource{known: map[uint64]bool{}}
	src.tick = 1
	slot.offer(src, 1, 0)
	slot.take()

	// The client stalls while the room moves on; the source has forgotten
	// tick 1 by the time it is asked.
	src.tick = 100
	slot.offer(src, 100, 0)
	f, _ := slot.take()
	assert.Equal(t, SnapshotFrame{Tick: 100, Base: 0}, *f)
}

func TestTokenBucket(t *testing.T) {
	b := newTokenBucket(10, 3)
	now := testTime(0)
	for range 3 {
		require.True(t, b.allow(now))
	}
	require.False(t, b.allow(now), "burst spent")
	require.False(t, b.allow(now.Add(50e6)), "half a token after 50ms")
	require.True(t, b.allow(now.Add(100e6)), "one token after 100ms at 10/s")
	require.True(t, b.allow(now.Add(10e9)))
	require.True(t, b.allow(now.Add(10e9)))
	require.True(t, b.allow(now.Add(10e9)))
	require.False(t, b.allow(now.Add(10e9)), "refill stops at the burst")
}

func testTime(ns int64) time.Time { return time.Unix(1_700_000_000, ns) }
