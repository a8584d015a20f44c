package bots

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// histogram is a set of HDR histograms sharded by bot, so that thousands of
// bots recording from their own goroutines do not contend on one lock.
type histogram struct {
	shards [16]struct {
		mu sync.Mutex
		h  *hdrhistogram.Histogram
		_  [40]byte // keep shards on separate cache lines
	}
}

// Values are recorded in microseconds, from 1 µs to 10 minutes, to three
// significant digits.
func newHistogram() *histogram {
	h := &histogram{}
	for i := range h.shards {
		h.shards[i].h = hdrhistogram.New(1, int64(10*time.Minute/time.Microsecond), 3)
	}
	return h
}

func (h *histogram) record(shard int, d time.Duration) {
	s := &h.shards[shard%len(h.shards)]
	us := max(int64(d/time.Microsecond), 1)
	s.mu.Lock()
	_ = s.h.RecordValue(us) // values past the top are dropped; ten minutes is no snapshot gap
	s.mu.Unlock()
}

// merged returns all shards in one histogram.
func (h *histogram) merged() *hdrhistogram.Histogram {
	all := hdrhistogram.New(1, int64(10*time.Minute/time.Microsecond), 3)
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.Lock()
		all.Merge(s.h)
		s.mu.Unlock()
	}
	return all
}

// ms returns percentile p (0..100) of h in milliseconds.
func ms(h *hdrhistogram.Histogram, p float64) float64 {
	if h.TotalCount() == 0 {
		return 0
	}
	return float64(h.ValueAtPercentile(p)) / 1000
}
