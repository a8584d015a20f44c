package main

import "testing"

// TestFrameCounter feeds frames of every header size, masked and not, in
// pieces of every length, and checks that each is counted once.
func TestFrameCounter(t *testing.T) {
	var stream []byte
	sizes := []int{0, 8, 90, 125, 126, 1000, 65535, 65536}
	for _, n := range sizes {
		stream = appendFrame(stream, n, false)
		stream = appendFrame(stream, n, true)
	}
	want := int64(2 * len(sizes))
	for _, piece := range []int{1, 2, 3, 7, 13, 512, len(stream)} {
		var fc frameCounter
		var got int64
		for p := stream; len(p) > 0; {
			n := min(piece, len(p))
			got += fc.feed(p[:n])
			p = p[n:]
		}
		if got != want || fc.nh != 0 || fc.skip != 0 {
			t.Errorf("pieces of %d bytes: %d frames (left: %d header bytes, %d to skip), want %d", piece, got, fc.nh, fc.skip, want)
		}
	}
}

func TestAppendFrameHeader(t *testing.T) {
	for _, tc := range []struct {
		n      int
		masked bool
		hdr    int
	}{{90, false, 2}, {8, true, 6}, {126, false, 4}, {70000, true, 14}} {
		if got := len(appendFrame(nil, tc.n, tc.masked)) - tc.n; got != tc.hdr {
			t.Errorf("appendFrame(%d, masked=%v): header of %d bytes, want %d", tc.n, tc.masked, got, tc.hdr)
		}
	}
}
