package client_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tickroom/tickroom/netcode/client"
	"github.com/tickroom/tickroom/netcode/wire"
)

// silentServer accepts WebSocket connections on loopback, welcomes each
// with the given heartbeat, sends the messages in then (in the same TCP
// segment as the Welcome) and then says nothing more, holding the
// connection open: a server that hung.
func silentServer(t *testing.T, heartbeat time.Duration, then ...[]byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	var conns []net.Conn
	go func() {
		defer close(done)
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, nc)
			if _, err := ws.Upgrade(nc); err != nil {
				continue
			}
			if _, err := wsutil.ReadClientBinary(nc); err != nil { // the Hello
				continue
			}
			var out bytes.Buffer
			welcome := wire.NewEncoder().Welcome(wire.Welcome{
				Version: wire.Version, TickRate: 60, MaxMessage: 1024, HeartbeatMs: uint32(heartbeat / time.Millisecond),
			})
			for _, m := range append([][]byte{welcome}, then...) {
				_ = wsutil.WriteServerBinary(&out, m)
			}
			_, _ = nc.Write(out.Bytes())
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, nc := range conns {
			nc.Close()
		}
	})
	return "ws://" + ln.Addr().String() + "/ws"
}

// A client drops a connection on which the server has said nothing for
// its heartbeat interval (the server pings more often than that), read by
// its own goroutine or by a poller.
func TestClientDropsASilentServer(t *testing.T) {
	for name, setup := range clientModes(t) {
		t.Run(name, func(t *testing.T) {
			url := silentServer(t, 300*time.Millisecond)
			cfg := client.DefaultConfig()
			cfg.Reconnect.Attempts = 0
			setup(&cfg)
			start := time.Now()
			c, err := client.Dial(context.Background(), url, cfg)
			require.NoError(t, err)
			defer c.Close()
			select {
			case <-c.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("the client kept a silent connection for 10 s")
			}
			assert.ErrorIs(t, c.Err(), os.ErrDeadlineExceeded)
			assert.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond, "not before the heartbeat interval")
		})
	}
}

// clientModes are the ways a client can read: its own goroutine, and a
// poller where there are pollers.
func clientModes(t *testing.T) map[string]func(*client.Config) {
	modes := map[string]func(*client.Config){"reader": func(*client.Config) {}}
	if runtime.GOOS == "linux" {
		modes["poller"] = func(cfg *client.Config) {
			p, err := client.NewPoller()
			require.NoError(t, err)
			t.Cleanup(func() { _ = p.Close() })
			cfg.Poller = p
		}
	}
	return modes
}

// What the server sent right behind the Welcome, which the handshake's
// reader buffered, reaches the client at once, not when more arrives.
func TestClientHandlesWhatCameWithTheWelcome(t *testing.T) {
	for name, setup := range clientModes(t) {
		t.Run(name, func(t *testing.T) {
			event := wire.NewEncoder().RoomEvent(wire.RoomEvent{From: wire.FromOperator, Payload: []byte{0xc3}})
			url := silentServer(t, time.Minute, event)
			cfg := client.DefaultConfig()
			setup(&cfg)
			c, err := client.Dial(context.Background(), url, cfg)
			require.NoError(t, err)
			defer c.Close()
			select {
			case e := <-c.Events():
				assert.Equal(t, client.EventRoomMessage, e.Kind)
				assert.Equal(t, []byte{0xc3}, e.Payload)
			case <-time.After(10 * time.Second):
				t.Fatal("the message that came with the Welcome was not delivered")
			}
		})
	}
}

// A write to a server that stopped reading fails once WriteTimeout has
// passed, with a deadline error, and ends the connection; it does not
// block forever, read by its own goroutine or by a poller.
func TestClientWriteToAStalledServerTimesOut(t *testing.T) {
	for name, setup := range clientModes(t) {
		t.Run(name, func(t *testing.T) {
			url := silentServer(t, time.Minute)
			cfg := client.DefaultConfig()
			cfg.WriteTimeout = 200 * time.Millisecond
			cfg.Reconnect.Attempts = 0
			setup(&cfg)
			c, err := client.Dial(context.Background(), url, cfg)
			require.NoError(t, err)
			defer c.Close()
			big := make([]byte, 64<<10)
			for i := 0; ; i++ {
				require.Less(t, i, 10_000, "64 KiB writes kept going through to a server that reads nothing")
				// The message is written before the wait for its reply, which
				// never comes: a context that ends at once skips that wait.
				ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
				err = c.SendMessage(ctx, big)
				cancel()
				if !errors.Is(err, context.DeadlineExceeded) {
					break
				}
			}
			assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
			assert.ErrorIs(t, err, client.ErrNotConnected)
			select {
			case <-c.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("the connection whose write timed out is still open")
			}
		})
	}
}
