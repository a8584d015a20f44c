package rooms

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	for i := range 1000 {
		h.Record(time.Duration(i) * time.Microsecond) // 0..999 µs
	}
	assert.Equal(t, uint64(1000), h.Count())
	assert.Equal(t, 999*time.Microsecond, h.Max())
	assert.InDelta(t, float64(500*time.Microsecond), float64(h.Quantile(0.5)), float64(histogramStep))
	assert.InDelta(t, float64(990*time.Microsecond), float64(h.Quantile(0.99)), float64(histogramStep))
	h.Record(time.Minute)
	assert.Equal(t, time.Minute, h.Quantile(1))

	var m Histogram
	m.Merge(&h)
	assert.Equal(t, h.Count(), m.Count())
	assert.Equal(t, h.Quantile(0.5), m.Quantile(0.5))
}

// Above a millisecond the buckets are 100 µs wide, up to 10 ms; every bound
// an exporter asks for is a bucket bound, so cumulative counts are exact.
func TestHistogramCoarseRangeAndBounds(t *testing.T) {
	var h Histogram
	for _, d := range []time.Duration{
		0, 9 * time.Microsecond, 10 * time.Microsecond, 49 * time.Microsecond, 50 * time.Microsecond,
		999 * time.Microsecond, time.Millisecond, 1049 * time.Microsecond, 1100 * time.Microsecond,
		3999 * time.Microsecond, 4 * time.Millisecond, 9999 * time.Microsecond, 10 * time.Millisecond, time.Second,
	} {
		h.Record(d)
	}
	cases := []struct {
		upTo time.Duration
		want uint64
	}{
		{10 * time.Microsecond, 2},
		{50 * time.Microsecond, 4},
		{time.Millisecond, 6},
		{1100 * time.Microsecond, 8},
		{2 * time.Millisecond, 9},
		{4 * time.Millisecond, 10},
		{10 * time.Millisecond, 12},
		{time.Hour, 12}, // the overflow bucket has no upper bound
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, h.CumulativeUpTo(tc.upTo), "below %v", tc.upTo)
	}
	// 14 durations: rank 9 is 3,999 µs and rank 10 is 4 ms, in the buckets
	// [3.9, 4) and [4, 4.1) ms, which report their upper bounds.
	assert.Equal(t, 4*time.Millisecond, h.Quantile(9.5/14))
	assert.Equal(t, 4100*time.Microsecond, h.Quantile(10.5/14))
	assert.Equal(t, time.Second, h.Quantile(1))
	for i := range histogramBuckets {
		assert.Equal(t, i, bucketOf(bucketTop(i)-1), "bucket %d holds the nanosecond below its top", i)
		assert.Equal(t, i+1, bucketOf(bucketTop(i)), "and its top starts the next")
	}
}
