package client_test

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tickroom/tickroom/netcode"
	"github.com/tickroom/tickroom/netcode/client"
	"github.com/tickroom/tickroom/netcode/wire"
)

// eventually is how long these tests wait for what should come at once.
const eventually = 10 * time.Second

// requireClosedByClient requires that cause, as a node's Session.Closed
// got it, is the client's normal close (1000).
func requireClosedByClient(t *testing.T, cause error) {
	t.Helper()
	var ce *netcode.CloseError
	require.ErrorAs(t, cause, &ce, "got %v", cause)
	assert.True(t, ce.ByPeer, "the server closed it: %v", ce)
	assert.Equal(t, wire.CloseNormal, ce.Code)
	assert.True(t, netcode.Graceful(cause))
}

// waitEvent reads c's events until one of kind, failing the test on an
// EventDisconnected (unless that is the kind waited for) or after
// eventually. It returns the event and the kinds read before it.
func waitEvent(t *testing.T, c *client.Client, kind client.EventKind) (client.Event, []client.EventKind) {
	t.Helper()
	var before []client.EventKind
	timeout := time.After(eventually)
	for {
		select {
		case e := <-c.Events():
			if e.Kind == kind {
				return e, before
			}
			before = append(before, e.Kind)
		case <-timeout:
			t.Fatalf("no event %d within %v; got %v", kind, eventually, before)
		}
	}
}

// noDisconnect asserts that none of the events still queued is an
// EventDisconnected.
func noDisconnect(t *testing.T, c *client.Client, seen []client.EventKind) {
	t.Helper()
	for len(c.Events()) > 0 {
		seen = append(seen, (<-c.Events()).Kind)
	}
	assert.NotContains(t, seen, client.EventDisconnected)
	assert.Zero(t, c.Stats().Drops.Load())
}

// A Join answered with a Redirect is sent again, with Hops 1, to the node
// named, which seats the player: the client moves there, closing its first
// connection normally, without a disconnect, and plays on the new node.
func TestJoinFollowsARedirect(t *testing.T) {
	for name, setup := range clientModes(t) {
		t.Run(name, func(t *testing.T) {
			b := startNode(t, "b", seat(7))
			a := startNode(t, "a", redirectTo(b))
			cfg := client.DefaultConfig()
			setup(&cfg)
			ctx := context.Background()
			c, err := client.Dial(ctx, a.url, cfg)
			require.NoError(t, err)
			defer c.Close()

			j, err := c.Join(ctx, client.JoinOptions{Mode: "arena"})
			require.NoError(t, err)
			assert.Equal(t, "room-b", j.RoomID)
			assert.Equal(t, uint32(7), j.Player)
			assert.Equal(t, "tok-b", j.Token)
			assert.Equal(t, j, c.Seat())
			assert.Equal(t, []uint32{0}, a.Hops())
			assert.Equal(t, []uint32{1}, b.Hops(), "the redirected join counts its hop")
			assert.EqualValues(t, 1, c.Stats().Redirects.Load())

			// The client closed A's connection itself, normally.
			require.Eventually(t, func() bool { return len(a.Closed()) == 1 }, eventually, time.Millisecond)
			requireClosedByClient(t, a.Closed()[0])
			require.Eventually(t, func() bool { return a.srv.Conns() == 0 }, eventually, time.Millisecond)

			// Snapshots and events come from B; inputs and pings go there.
			seated := b.Seated()
			require.Len(t, seated, 1)
			seated[0].Send(snapshotMsg(5, 7, 42))
			seated[0].Send(roomEventMsg())
			_, before := waitEvent(t, c, client.EventRoomMessage)
			require.Eventually(t, func() bool { return c.State().Tick == 5 }, eventually, time.Millisecond)
			if s := c.State(); assert.Len(t, s.Entities, 1) {
				assert.Equal(t, int32(42), s.Entities[0].Fields[0])
			}
			seq, err := c.SendInput(nil)
			require.NoError(t, err)
			require.Eventually(t, func() bool { return assert.ObjectsAreEqual([]uint32{seq}, b.Inputs()) },
				eventually, time.Millisecond, "B did not get the input")
			_, err = c.Ping(ctx)
			require.NoError(t, err)

			noDisconnect(t, c, before)
			assert.Zero(t, c.Stats().Resumes.Load())
			assert.Len(t, b.Closed(), 0, "B's connection is the client's now")
		})
	}
}

// Two nodes that redirect to each other do not bounce a client for ever:
// it follows wire.MaxHops redirects, then the Join fails, and the client
// is still connected to the node it dialed.
func TestRedirectLoopEndsAfterMaxHops(t *testing.T) {
	for name, setup := range clientModes(t) {
		t.Run(name, func(t *testing.T) {
			a := startNode(t, "a", nil)
			b := startNode(t, "b", redirectTo(a))
			a.onJoin(redirectTo(b))
			cfg := client.DefaultConfig()
			setup(&cfg)
			ctx := context.Background()
			c, err := client.Dial(ctx, a.url, cfg)
			require.NoError(t, err)
			defer c.Close()

			_, err = c.Join(ctx, client.JoinOptions{Mode: "arena"})
			require.ErrorIs(t, err, client.ErrTooManyRedirects)
			assert.EqualValues(t, wire.MaxHops, c.Stats().Redirects.Load())
			assert.Equal(t, []uint32{0, 2}, a.Hops())
			assert.Equal(t, []uint32{1, 3}, b.Hops())
			assert.Nil(t, c.Seat())

			// Every connection the redirects opened was closed normally;
			// the first one is still the client's.
			require.Eventually(t, func() bool { return len(a.Closed()) == 1 && len(b.Closed()) == 2 },
				eventually, time.Millisecond)
			for _, cause := range append(a.Closed(), b.Closed()...) {
				requireClosedByClient(t, cause)
			}
			_, err = c.Ping(ctx)
			require.NoError(t, err)
			a.onJoin(seat(3))
			j, err := c.Join(ctx, client.JoinOptions{Mode: "arena"})
			require.NoError(t, err)
			assert.Equal(t, "room-a", j.RoomID)
			noDisconnect(t, c, nil)
		})
	}
}

// A redirect to a node that cannot be reached fails the Join with an error
// that names the URL, and leaves the client where it was, still usable.
func TestRedirectToAnUnreachableNode(t *testing.T) {
	for name, setup := range clientModes(t) {
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			deadURL := "ws://" + ln.Addr().String() + "/ws"
			require.NoError(t, ln.Close())
			near := seat(1)
			a := startNode(t, "a", func(n *testNode, conn *netcode.Conn, req wire.Join) (wire.Joined, error) {
				if req.Mode == "far" {
					return wire.Joined{}, netcode.Redirect(deadURL, "gone")
				}
				return near(n, conn, req)
			})
			cfg := client.DefaultConfig()
			setup(&cfg)
			ctx := context.Background()
			c, err := client.Dial(ctx, a.url, cfg)
			require.NoError(t, err)
			defer c.Close()

			_, err = c.Join(ctx, client.JoinOptions{Mode: "far"})
			require.Error(t, err)
			assert.ErrorContains(t, err, deadURL)
			assert.False(t, errors.Is(err, client.ErrClosed))
			assert.Zero(t, c.Stats().Redirects.Load())

			_, err = c.Ping(ctx)
			require.NoError(t, err)
			j, err := c.Join(ctx, client.JoinOptions{Mode: "near"})
			require.NoError(t, err)
			assert.Equal(t, "room-a", j.RoomID)
			seq, err := c.SendInput(nil)
			require.NoError(t, err)
			require.Eventually(t, func() bool { return assert.ObjectsAreEqual([]uint32{seq}, a.Inputs()) },
				eventually, time.Millisecond, "A did not get the input")
			assert.Empty(t, a.Closed())
			noDisconnect(t, c, nil)
		})
	}
}

// After its host is gone, a client resumes its seat through the cluster:
// the host and the URL it dialed do not answer, so it tries its seed,
// which redirects the resume to the seat's new host; that host first
// says the room is moving (retried, not a lost seat), then seats it.
func TestResumeThroughASeedFollowsTheRedirect(t *testing.T) {
	for name, setup := range clientModes(t) {
		t.Run(name, func(t *testing.T) {
			b := startNode(t, "b", seat(7))
			a := startNode(t, "a", redirectTo(b))
			var tries atomic.Int32
			resumed := seat(7)
			newHost := startNode(t, "c", func(n *testNode, conn *netcode.Conn, req wire.Join) (wire.Joined, error) {
				switch {
				case req.Token != "tok-b":
					return wire.Joined{}, netcode.Reply(wire.CodeBadToken, "unknown token %q", req.Token)
				case tries.Add(1) == 1:
					return wire.Joined{}, netcode.Reply(wire.CodeRoomMoving, "the room is moving here")
				}
				return resumed(n, conn, req)
			})
			seed := startNode(t, "seed", redirectTo(newHost))

			cfg := client.DefaultConfig()
			cfg.Seeds = []string{seed.url}
			cfg.Reconnect = client.ReconnectConfig{Attempts: 10, Base: 10 * time.Millisecond, Cap: 50 * time.Millisecond}
			setup(&cfg)
			ctx := context.Background()
			c, err := client.Dial(ctx, a.url, cfg)
			require.NoError(t, err)
			defer c.Close()
			j, err := c.Join(ctx, client.JoinOptions{Mode: "arena"})
			require.NoError(t, err)
			require.Equal(t, "room-b", j.RoomID)

			require.NoError(t, a.stop())
			require.NoError(t, b.stop())
			_, before := waitEvent(t, c, client.EventResumed)
			assert.Contains(t, before, client.EventDisconnected)

			s := c.Seat()
			require.NotNil(t, s)
			assert.Equal(t, "room-c", s.RoomID)
			assert.True(t, s.Resumed)
			assert.Equal(t, []uint32{0, 0}, seed.Hops(), "the seed was tried again after the room moved")
			assert.Equal(t, []uint32{1, 1}, newHost.Hops())
			assert.EqualValues(t, 3, c.Stats().Redirects.Load(), "A to B, then the seed to C twice")
			assert.EqualValues(t, 1, c.Stats().Drops.Load())
			assert.EqualValues(t, 1, c.Stats().Resumes.Load())
			require.Eventually(t, func() bool { return len(seed.Closed()) == 2 }, eventually, time.Millisecond)
			for _, cause := range seed.Closed() {
				requireClosedByClient(t, cause)
			}

			seated := newHost.Seated()
			require.Len(t, seated, 1)
			seated[0].Send(snapshotMsg(9, 7, -5))
			require.Eventually(t, func() bool { return c.State().Tick == 9 }, eventually, time.Millisecond)
			seq, err := c.SendInput(nil)
			require.NoError(t, err)
			require.Eventually(t, func() bool { return assert.ObjectsAreEqual([]uint32{seq}, newHost.Inputs()) },
				eventually, time.Millisecond, "the new host did not get the input")
		})
	}
}
