package rooms

import (
	"sync/atomic"
	"time"
)

// histogramBuckets and histogramStep give a linear histogram from 0 to 10 ms
// in 10 µs steps, plus an overflow bucket: fine enough to tell whether tick
// lateness stays under a millisecond.
const (
	histogramBuckets = 1000
	histogramStep    = 10 * time.Microsecond
)

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
	i := min(int(d/histogramStep), histogramBuckets)
	h.counts[i].Add(1)
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
			return min(time.Duration(i+1)*histogramStep, h.Max())
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
