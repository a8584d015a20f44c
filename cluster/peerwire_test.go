package cluster

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func samplePeerMessages() [][]byte {
	g := []string{"a-1", "b-2", "c-3"}
	return [][]byte{
		encodeLease(msgRenew, "a-1", 7),
		encodeLease(msgGrant, "b-2", 7),
		encodeCheckpoints("a-1", []cpItem{{room: "r", epoch: 2, tick: 30, group: g, data: []byte("TRCP")}, {room: "s", epoch: 1, group: g}}),
		encodeStale("b-2", []staleRoom{{room: "r", epoch: 3, host: "c-3"}}),
		encodeClaims("b-2", 9, []claim{{room: "r", epoch: 3, host: "b-2", group: g, prevEpoch: 2, prevHost: "a-1"}}),
		encodeVotes("c-3", 9, []vote{{granted: true, epoch: 3, host: "b-2"}}),
		encodeHandOff("a-1", 10, 3, g, []byte("TRCP")),
		encodeHandOffDone("b-2", 10, ""),
		encodeRelinquish("a-1", []staleRoom{{room: "r", epoch: 2}}),
	}
}

func TestPeerMessagesRoundTripAndRefuseTruncation(t *testing.T) {
	for _, p := range samplePeerMessages() {
		m, err := decodePeerMessage(p)
		require.NoError(t, err, "type %d", p[0])
		require.NotEmpty(t, m.from)
		for n := range len(p) {
			_, err := decodePeerMessage(p[:n])
			require.Error(t, err, "type %d truncated at %d", p[0], n)
		}
	}
	m, err := decodePeerMessage(samplePeerMessages()[4])
	require.NoError(t, err)
	require.Equal(t, claim{room: "r", epoch: 3, host: "b-2", group: []string{"a-1", "b-2", "c-3"}, prevEpoch: 2, prevHost: "a-1"}, m.claims[0])
}

func FuzzDecodePeerMessage(f *testing.F) {
	for _, p := range samplePeerMessages() {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		_, _ = decodePeerMessage(p) // never panics; bounded allocations
	})
}
