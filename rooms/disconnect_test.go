package rooms_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tickroom/tickroom/netcode"
	"github.com/tickroom/tickroom/netcode/client"
	"github.com/tickroom/tickroom/netcode/netcodetest"
	"github.com/tickroom/tickroom/netcode/wire"
	"github.com/tickroom/tickroom/rooms"
	"github.com/tickroom/tickroom/rooms/roomstest"
	"github.com/tickroom/tickroom/sim"
)

// Players' connections end in every usual way; each end is counted under its
// reason and listed in RecentDisconnects, newest first, labelled by rooms
// with the room and the player.
func TestDisconnectsCarryTheRoomAndPlayer(t *testing.T) {
	t.Parallel()
	srv := roomstest.StartDefault(t)
	room, err := srv.Registry.Create(rooms.RoomOptions{Mode: sim.ArenaMode, Private: true})
	require.NoError(t, err)
	join := func(c *client.Client) uint32 {
		t.Helper()
		j, err := c.Join(context.Background(), client.JoinOptions{RoomID: room.ID()})
		require.NoError(t, err)
		return j.Player
	}
	stats := srv.Net.Stats()
	awaitReason := func(reason netcode.DisconnectReason) {
		t.Helper()
		require.Eventually(t, func() bool { return stats.Disconnects(reason) == 1 }, 10*time.Second, 5*time.Millisecond,
			"one disconnect counted as %s", reason)
	}
	noReconnect := client.DefaultConfig()
	noReconnect.Reconnect.Attempts = 0

	// A player who closes normally.
	alice := dial(t, srv.URL, client.DefaultConfig())
	pa := join(alice)
	require.NoError(t, alice.Close())
	awaitReason(netcode.ReasonClientClosed)

	// A player whose connection is cut, with no close frame.
	proxy, viaProxy := netcodetest.NewProxyURL(t, srv.URL)
	bob := dial(t, viaProxy, noReconnect)
	pb := join(bob)
	proxy.CutAll()
	awaitReason(netcode.ReasonLost)

	// A player who goes silent: joined, then reads and sends nothing, so
	// the server's pings go unanswered.
	carol := netcodetest.DialHello(t, srv.URL)
	carol.Send(carol.Enc.Join(wire.Join{ReqID: 1, RoomID: room.ID()}))
	pc := carol.Expect(wire.TypeJoined).Joined.Player
	awaitReason(netcode.ReasonHeartbeatTimeout)

	// A player an operator kicks.
	dave := dial(t, srv.URL, noReconnect)
	pd := join(dave)
	require.NoError(t, room.Kick(sim.PlayerID(pd), "be nice"))
	awaitReason(netcode.ReasonKicked)
	select {
	case <-dave.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the kicked client is still open")
	}
	var ce *client.CloseError
	require.True(t, errors.As(dave.Err(), &ce), "closed by the server: %v", dave.Err())
	assert.Equal(t, wire.CloseKicked, ce.Code)
	assert.Equal(t, "be nice", ce.Reason)

	label := func(p uint32) string { return fmt.Sprintf("room=%s player=%d", room.ID(), p) }
	want := []struct {
		label  string
		reason netcode.DisconnectReason
		code   wire.CloseCode
	}{
		{label(pd), netcode.ReasonKicked, wire.CloseKicked},
		{label(pc), netcode.ReasonHeartbeatTimeout, wire.CloseHeartbeatTimeout},
		{label(pb), netcode.ReasonLost, 0},
		{label(pa), netcode.ReasonClientClosed, wire.CloseNormal},
	}
	recent := srv.Net.RecentDisconnects()
	require.Len(t, recent, len(want))
	for i, w := range want {
		assert.Equal(t, w.label, recent[i].Label, "entry %d", i)
		assert.Equal(t, w.reason, recent[i].Reason, "entry %d", i)
		if w.code != 0 {
			assert.Equal(t, w.code, recent[i].Code, "entry %d", i)
		}
	}
	assert.Equal(t, "be nice", recent[0].Detail)
	assert.Equal(t, client.DefaultConfig().Name, recent[0].Client)
}
