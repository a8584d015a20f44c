package rooms

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// TickStats are a room's tick counters, safe to read at any time. The room
// goroutine writes them once per tick, never per player.
type TickStats struct {
	Ticks        atomic.Uint64 // ticks run
	Overruns     atomic.Uint64 // tick slots skipped because the room fell a period or more behind
	Slept        atomic.Uint64 // tick slots skipped while the room slept, empty
	Lateness     Histogram     // how late each tick started against its node tick's due time
	Duration     Histogram     // how long each tick's work took
	LastDuration atomic.Int64  // nanoseconds the latest tick's work took
	// InputDepth and InputDepthMax are the inputs the latest tick took from
	// its players' queues, in all and from the fullest queue.
	InputDepth    atomic.Int64
	InputDepthMax atomic.Int64
	InputsDropped atomic.Uint64 // inputs dropped because a player's queue was full
	Frozen        atomic.Uint64 // tick slots not run because the room was frozen (a hand-off) or fenced
	// Checkpoints taken for the Replicator, their bytes and the time spent
	// encoding them.
	Checkpoints     atomic.Uint64
	CheckpointBytes atomic.Uint64
	CheckpointNanos atomic.Uint64
	// SnapshotBytes counts snapshot encodings by body size. A room encodes
	// once per distinct base per tick; the bytes are shared by every
	// member with that base.
	SnapshotBytes SizeHistogram
}

// NodeStats are a registry's counters summed over all its rooms, open and
// closed, as Registry.Stats computes them. Each room counts into its own
// TickStats only, so rooms share no counters on their ticks.
type NodeStats struct {
	RoomsCreated  uint64
	RoomsClosed   uint64
	Ticks         uint64
	Overruns      uint64
	InputsDropped uint64
	// Checkpoints taken, their bytes and encoding time; rooms restored
	// from checkpoints; rooms fenced.
	Checkpoints, CheckpointBytes, CheckpointNanos uint64
	Restores, Fenced                              uint64
	Lateness                                      Histogram
	Duration                                      Histogram
	SnapshotBytes                                 SizeHistogram
	// The node clock's own counters (ClockStats): node ticks released,
	// node ticks skipped, helper workers started, and how late the clock
	// released each node tick.
	NodeTicks     uint64
	NodeOverruns  uint64
	Helpers       uint64
	ClockLateness Histogram
}

// add sums a room's counters into s.
func (s *NodeStats) add(t *TickStats) {
	s.Ticks += t.Ticks.Load()
	s.Overruns += t.Overruns.Load()
	s.InputsDropped += t.InputsDropped.Load()
	s.Checkpoints += t.Checkpoints.Load()
	s.CheckpointBytes += t.CheckpointBytes.Load()
	s.CheckpointNanos += t.CheckpointNanos.Load()
	s.Lateness.Merge(&t.Lateness)
	s.Duration.Merge(&t.Duration)
	s.SnapshotBytes.Merge(&t.SnapshotBytes)
}

// Merge adds o's counts to h.
func (h *SizeHistogram) Merge(o *SizeHistogram) {
	for i := range o.counts {
		h.counts[i].Add(o.counts[i].Load())
	}
	h.sum.Add(o.sum.Load())
}

// SizeBuckets is the number of SizeHistogram buckets: bucket i counts sizes
// up to 2^(i+4) bytes (16 B to 1 MiB), and the last counts the rest.
const SizeBuckets = 18

// SizeHistogram counts sizes in power-of-two buckets. Record is lock-free
// and allocation-free.
type SizeHistogram struct {
	counts [SizeBuckets]atomic.Uint64
	sum    atomic.Uint64
}

// Record counts one size.
func (h *SizeHistogram) Record(n int) {
	i := 0
	if n > 16 {
		i = min(bits.Len(uint(n-1))-4, SizeBuckets-1)
	}
	h.counts[i].Add(1)
	h.sum.Add(uint64(max(n, 0)))
}

// SizeBound returns the upper bound of bucket i; the last bucket has none
// and reports -1.
func SizeBound(i int) int {
	if i >= SizeBuckets-1 {
		return -1
	}
	return 16 << i
}

// Counts returns the count of each bucket, and the sum of all sizes.
func (h *SizeHistogram) Counts() (counts [SizeBuckets]uint64, sum uint64) {
	for i := range h.counts {
		counts[i] = h.counts[i].Load()
	}
	return counts, h.sum.Load()
}

// CumulativeUpTo returns how many recorded durations were below d, d rounded
// down to a bucket bound (a multiple of 10 µs below 1 ms, of 100 µs up to
// 10 ms). For exporters.
func (h *Histogram) CumulativeUpTo(d time.Duration) uint64 {
	var n uint64
	for i := 0; i < histogramBuckets && bucketTop(i) <= d; i++ {
		n += h.counts[i].Load()
	}
	return n
}

// Sum returns the total of the recorded durations.
func (h *Histogram) Sum() time.Duration { return time.Duration(h.sumNanos.Load()) }
