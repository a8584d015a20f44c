//go:build linux

package netcode

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// What a read leaves unparsed is at most a frame's start; the buffer that
// holds it must not stay as large as the largest read before it.
func TestPendingBytesDoNotPinALargeBuffer(t *testing.T) {
	c := &Conn{pend: make([]byte, 0, pollReadBuffer)}
	c.keepPending([]byte("0123456789"))
	assert.Equal(t, "0123456789", string(c.pend))
	assert.LessOrEqual(t, cap(c.pend), releaseAbove)
	c.keepPending(nil)
	assert.Empty(t, c.pend)
}
