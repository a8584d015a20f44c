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

// A connection's label names a seat only while it has one: a player who
// left and then dropped, or whose room closed before it dropped, is no
// longer that player; one who closes while seated still is.
func TestDisconnectLabelsFollowTheSeat(t *testing.T) {
	t.Parallel()
	srv := roomstest.StartDefault(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	named := func(name string) client.Config {
		cfg := client.DefaultConfig()
		cfg.Name = name
		cfg.Reconnect.Attempts = 0
		return cfg
	}
	join := func(c *client.Client, room *rooms.Room) uint32 {
		t.Helper()
		j, err := c.Join(ctx, client.JoinOptions{RoomID: room.ID()})
		require.NoError(t, err)
		return j.Player
	}
	private := func() *rooms.Room {
		t.Helper()
		r, err := srv.Registry.Create(rooms.RoomOptions{Mode: sim.ArenaMode, Private: true})
		require.NoError(t, err)
		return r
	}
	// disconnectOf waits for the disconnect of the client that said name
	// in its Hello.
	disconnectOf := func(name string) netcode.Disconnect {
		t.Helper()
		var d netcode.Disconnect
		require.Eventually(t, func() bool {
			for _, e := range srv.Net.RecentDisconnects() {
				if e.Client == name {
					d = e
					return true
				}
			}
			return false
		}, 10*time.Second, 5*time.Millisecond, "%s's disconnect is listed", name)
		return d
	}
	room := private()

	// Joins, leaves (and stays connected), then drops.
	proxy, viaProxy := netcodetest.NewProxyURL(t, srv.URL)
	leaver := dial(t, viaProxy, named("leaver"))
	join(leaver, room)
	require.NoError(t, leaver.Leave(ctx))
	_, err := leaver.Ping(ctx)
	require.NoError(t, err, "still connected after leaving")
	proxy.CutAll()
	d := disconnectOf("leaver")
	assert.Equal(t, netcode.ReasonLost, d.Reason)
	assert.Empty(t, d.Label, "it had no seat when it dropped")

	// Closes normally while seated: leaving the seat is part of its end.
	closer := dial(t, srv.URL, named("closer"))
	p := join(closer, room)
	require.NoError(t, closer.Close())
	d = disconnectOf("closer")
	assert.Equal(t, netcode.ReasonClientClosed, d.Reason)
	assert.Equal(t, fmt.Sprintf("room=%s player=%d", room.ID(), p), d.Label)

	// Seated in a room that closes, then drops.
	other := private()
	proxy2, viaProxy2 := netcodetest.NewProxyURL(t, srv.URL)
	orphan := dial(t, viaProxy2, named("orphan"))
	join(orphan, other)
	other.Close("test")
	waitEvent(t, orphan, client.EventRoomClosed)
	proxy2.CutAll()
	d = disconnectOf("orphan")
	assert.Equal(t, netcode.ReasonLost, d.Reason)
	assert.Empty(t, d.Label, "its room had closed when it dropped")
}
