package rooms

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tickroom/tickroom/netcode/wire"
	"github.com/tickroom/tickroom/sim"
)

// A delta snapshot of a 16-player arena where everyone moves diagonally
// (both coordinates change) fits in 100 bytes on the wire, even with tick and
// ack numbers past 65535, where MessagePack needs five bytes for them.
func TestArenaDeltaFitsIn100Bytes(t *testing.T) {
	r := arenaRoomWithoutConns(t, 16)
	const first = 70_000
	for n := uint64(first); n < first+3; n++ {
		for _, m := range r.members {
			m.inputs.push(uint32(n), []byte{sim.ArenaRight | sim.ArenaDown})
		}
		r.step(n, time.Now())
	}
	delta := r.SnapshotFrame(first + 1)
	require.Equal(t, uint64(first+1), delta.Base)
	head := wire.AppendSnapshotHead(nil, first+2)
	wireBytes := 2 + len(head) + len(delta.Body) // 2: the WebSocket header of a frame under 126 bytes
	t.Logf("16-player arena delta: %d bytes on the wire (full: %d)", wireBytes, 2+len(head)+len(r.SnapshotFrame(0).Body))
	assert.LessOrEqual(t, wireBytes, 100)

	// And it decodes and applies to give exactly the room's entities.
	var m wire.ServerMessage
	require.NoError(t, wire.NewDecoder().DecodeServer(append(head, delta.Body...), &m))
	base := r.history[(first+1)%uint64(len(r.history))].entities
	got, err := m.Snapshot.Apply(nil, base)
	require.NoError(t, err)
	assert.Equal(t, r.current.entities, got)
	for _, e := range got {
		assert.NotEqual(t, e.Fields, base[0].Fields, "everyone moved")
	}
}
