package rooms_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tickroom/tickroom/rooms"
)

func sampleCheckpoint() *rooms.Checkpoint {
	return &rooms.Checkpoint{
		RoomID: "r1", Mode: "arena", MaxPlayers: 4, Private: true, Metadata: map[string]string{"ladder": "gold"},
		Seed: 1 << 63, Epoch: 3, Tick: 1200, GameTick: 1199, Paused: true, NextPlayer: 3,
		Created: time.Unix(0, 1_700_000_000_000_000_000), State: []byte{0x90},
		Seats: []rooms.SeatCheckpoint{
			{Player: 1, Token: "r1.a", LastAck: 7, Connected: true, Inputs: []rooms.QueuedInput{{Seq: 8, Payload: []byte{0x01}}}},
			{Player: 2, Token: "r1.b"},
		},
	}
}

func TestCheckpointRoundTripsAndRefusesBadBytes(t *testing.T) {
	data := sampleCheckpoint().Encode()
	got, err := rooms.DecodeCheckpoint(data)
	require.NoError(t, err)
	require.Equal(t, data, got.Encode())
	require.Equal(t, "r1.a", got.Seats[0].Token)

	for n := range len(data) {
		_, err := rooms.DecodeCheckpoint(data[:n])
		require.ErrorIs(t, err, rooms.ErrBadCheckpoint, "truncated at %d", n)
	}
	other := bytes.Clone(data)
	other[5] = 2
	_, err = rooms.DecodeCheckpoint(other)
	require.ErrorIs(t, err, rooms.ErrCheckpointVersion, "another build's format")
	_, err = rooms.DecodeCheckpoint(append(bytes.Clone(data), 0))
	require.ErrorIs(t, err, rooms.ErrBadCheckpoint, "trailing bytes")
}

func FuzzDecodeCheckpoint(f *testing.F) {
	f.Add(sampleCheckpoint().Encode())
	f.Add([]byte("TRCP\x00\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := rooms.DecodeCheckpoint(data)
		if err != nil {
			return
		}
		again, err := rooms.DecodeCheckpoint(c.Encode())
		require.NoError(t, err)
		require.Equal(t, c.Encode(), again.Encode())
	})
}
