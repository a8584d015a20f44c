package wire

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A released Decoder holds nothing of the last frame, and still decodes.
func TestDecoderRelease(t *testing.T) {
	frame := NewEncoder().Input(Input{Seq: 7, Payload: []byte{1}})
	d := NewDecoder()
	var m ClientMessage
	require.NoError(t, d.DecodeClient(frame, &m))
	d.Release()
	assert.Nil(t, d.frame)
	assert.Zero(t, d.r.Len())
	require.NoError(t, d.DecodeClient(frame, &m))
	assert.Equal(t, uint32(7), m.Input.Seq)
}
