package rooms

import (
	"sync/atomic"
	"time"
)

// A Histogram's buckets are linear in two ranges: histogramStep (10 µs) up
// to histogramFine (1 ms), fine enough to tell whether tick lateness stays
// under a millisecond, then histogramCoarseStep (100 µs) up to 10 ms, plus
// an overflow bucket. Every bucket bound is a multiple of 10 µs, and the
// exporters' bounds (multiples of 50 µs below 1 ms, of 1 ms above) are
// bucket bounds. Two histograms a room at 191 buckets cost 3 KiB; one linear
// range at 10 µs would cost 16 KiB, a kilobyte per player in a room of 16.
const (
	histogramStep       = 10 * time.Microsecond
	histogramFine       = time.Millisecond
	histogramCoarseStep = 100 * time.Microsecond
	histogramTop        = 10 * time.Millisecond
	histogramFineN      = int(histogramFine / histogramStep)
	histogramBuckets    = histogramFineN + int((histogramTop-histogramFine)/histogramCoarseStep)
)

// bucketOf returns the bucket that counts d (d >= 0); histogramBuckets is
// the overflow bucket.
func bucketOf(d time.Duration) int {
	switch {
	case d < histogramFine:
		return int(d / histogramStep)
	case d < histogramTop:
		return histogramFineN + int((d-histogramFine)/histogramCoarseStep)
	}
	return histogramBuckets
}

// bucketTop returns the exclusive upper bound of bucket i < histogramBuckets.
func bucketTop(i int) time.Duration {
	if i < histogramFineN {
		return time.Duration(i+1) * histogramStep
	}
	return histogramFine + time.Duration(i-histogramFineN+1)*histogramCoarseStep
}

// Histogram counts durations. Record is lock-free and allocation-free, for
// the tick loop; reads may run concurrently with it.
type Histogram struct {
	counts   [histogramBuckets + 1]atomic.Uint64
	total    atomic.Uint64
	sumNanos atomic.Int64
	maxNanos atomic.Int64
}

// Record counts one duration; negative ones count as zero.
func (h *Histogram) Record(d time.Duration) {
	d = max(d, 0)
	h.counts[bucketOf(d)].Add(1)
	h.total.Add(1)
	h.sumNanos.Add(int64(d))
	for {
		m := h.maxNanos.Load()
		if int64(d) <= m || h.maxNanos.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

// Count returns the number of recorded durations.
func (h *Histogram) Count() uint64 { return h.total.Load() }

// Max returns the largest recorded duration.
func (h *Histogram) Max() time.Duration { return time.Duration(h.maxNanos.Load()) }

// Quantile returns the upper bound of the bucket holding quantile q (0..1);
// durations past the last bucket report the maximum.
func (h *Histogram) Quantile(q float64) time.Duration {
	total := h.total.Load()
	if total == 0 {
		return 0
	}
	rank := uint64(q * float64(total))
	if rank >= total {
		rank = total - 1
	}
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen > rank {
			if i == histogramBuckets {
				return h.Max()
			}
			return min(bucketTop(i), h.Max())
		}
	}
	return h.Max()
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	for i := range o.counts {
		h.counts[i].Add(o.counts[i].Load())
	}
	h.total.Add(o.total.Load())
	h.sumNanos.Add(o.sumNanos.Load())
	for {
		m, om := h.maxNanos.Load(), o.maxNanos.Load()
		if om <= m || h.maxNanos.CompareAndSwap(m, om) {
			return
		}
	}
}

// HistogramDiff returns the durations recorded in h since earlier, a copy of
// h made before (with Merge into an empty Histogram). The maximum is h's.
func HistogramDiff(h, earlier *Histogram) *Histogram {
	var d Histogram
	for i := range h.counts {
		d.counts[i].Store(h.counts[i].Load() - earlier.counts[i].Load())
	}
	d.total.Store(h.total.Load() - earlier.total.Load())
	d.sumNanos.Store(h.sumNanos.Load() - earlier.sumNanos.Load())
	d.maxNanos.Store(h.maxNanos.Load())
	return &d
}
