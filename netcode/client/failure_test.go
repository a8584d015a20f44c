package client_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tickroom/tickroom/netcode/client"
	"github.com/tickroom/tickroom/netcode/internal/wsframe"
	"github.com/tickroom/tickroom/netcode/wire"
)

// scriptServer upgrades each connection, reads its Hello and hands it to
// handle (on its own goroutine) with its index.
func scriptServer(t *testing.T, handle func(i int, nc net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := ws.Upgrade(nc); err != nil {
					return
				}
				if _, err := wsutil.ReadClientBinary(nc); err != nil {
					return
				}
				handle(i, nc)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, nc := range conns {
			nc.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "ws://" + ln.Addr().String() + "/ws"
}

// welcomeFrame is a server's Welcome frame announcing heartbeat hb.
func welcomeFrame(hb time.Duration) []byte {
	var out bytes.Buffer
	_ = wsutil.WriteServerBinary(&out, wire.NewEncoder().Welcome(wire.Welcome{
		Version: wire.Version, TickRate: 60, MaxMessage: 1024, HeartbeatMs: uint32(hb / time.Millisecond),
	}))
	return out.Bytes()
}

// A server that sends the Welcome, an event and a close in one segment
// and hangs up: the client sees the event and the close's code (not
// reconnectable), not just the EOF behind them (which is).
func TestClientSeesTheCloseBeforeTheEOF(t *testing.T) {
	for name, setup := range clientModes(t) {
		t.Run(name, func(t *testing.T) {
			url := scriptServer(t, func(_ int, nc net.Conn) {
				var out bytes.Buffer
				out.Write(welcomeFrame(time.Minute))
				_ = wsutil.WriteServerBinary(&out, wire.NewEncoder().RoomEvent(wire.RoomEvent{From: wire.FromOperator, Payload: []byte{0xc3}}))
				_ = ws.WriteFrame(&out, ws.NewCloseFrame(wsframe.CloseBody(uint16(wire.CloseKicked), "kicked")))
				_, _ = nc.Write(out.Bytes())
				nc.Close()
			})
			cfg := client.DefaultConfig()
			cfg.Reconnect.Attempts = 0
			setup(&cfg)
			c, err := client.Dial(context.Background(), url, cfg)
			require.NoError(t, err)
			defer c.Close()
			waitClosed(t, c, "the client is still open")
			var ce *client.CloseError
			if assert.ErrorAs(t, c.Err(), &ce, "got %v", c.Err()) {
				assert.Equal(t, wire.CloseKicked, ce.Code)
			}
			var kinds []client.EventKind
			for len(c.Events()) > 0 {
				kinds = append(kinds, (<-c.Events()).Kind)
			}
			assert.Contains(t, kinds, client.EventRoomMessage)
		})
	}
}

// fillUntilWriteFails writes 64 KiB messages to a server that reads none
// until a write fails, and returns that error and the longest write.
func fillUntilWriteFails(t *testing.T, c *client.Client) (err error, longest time.Duration) {
	t.Helper()
	big := make([]byte, 64<<10)
	for i := 0; ; i++ {
		require.Less(t, i, 10_000, "64 KiB writes kept going through to a server that reads nothing")
		// The message is written before the wait for its reply, which never
		// comes: a context that ends at once skips that wait.
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		start := time.Now()
		err = c.SendMessage(ctx, big)
		longest = max(longest, time.Since(start))
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			return err, longest
		}
	}
}

// A write to a server that stopped reading fails once WriteTimeout has
// passed, with a deadline error: WriteTimeout bounds the whole message,
// not each system call of it. The next write fails at once, rather than
// wait out another WriteTimeout on the same full socket, and the
// connection ends.
func TestWriteToAStalledServerTimesOut(t *testing.T) {
	for name, setup := range clientModes(t) {
		t.Run(name, func(t *testing.T) {
			url := silentServer(t, time.Minute)
			cfg := client.DefaultConfig()
			cfg.WriteTimeout = 500 * time.Millisecond
			cfg.Reconnect.Attempts = 0
			setup(&cfg)
			c, err := client.Dial(context.Background(), url, cfg)
			require.NoError(t, err)
			defer c.Close()

			err, longest := fillUntilWriteFails(t, c)
			assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
			assert.ErrorIs(t, err, client.ErrNotConnected)
			t.Logf("longest write: %v", longest)
			assert.Less(t, longest, cfg.WriteTimeout*3/2)

			start := time.Now()
			err = c.SendPing()
			assert.Error(t, err)
			assert.Less(t, time.Since(start), cfg.WriteTimeout/2, "a write after a failed one blocked (%v)", err)
			waitClosed(t, c, "the connection whose write timed out is still open")
		})
	}
}

// Dial with a closed Poller fails with ErrPollerClosed, rather than
// handing back a client that is already closing.
func TestDialWithAClosedPollerFails(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("pollers are Linux-only (epoll); nothing to close elsewhere")
	}
	url := silentServer(t, time.Minute)
	p, err := client.NewPoller()
	require.NoError(t, err)
	require.NoError(t, p.Close())
	cfg := client.DefaultConfig()
	cfg.Poller = p
	c, err := client.Dial(context.Background(), url, cfg)
	if err == nil {
		<-c.Done()
		t.Fatalf("Dial with a closed poller succeeded; the client then closed with %v", c.Err())
	}
	assert.ErrorIs(t, err, client.ErrPollerClosed)
}

// A client whose writes are stuck (its server stopped reading, and pings
// it) holds up no other client of its poller: the poller neither waits for
// that client's write lock nor writes the pong itself.
func TestStuckWriterDoesNotStallOtherClients(t *testing.T) {
	for name, setup := range clientModes(t) {
		t.Run(name, func(t *testing.T) {
			pingA := make(chan struct{})
			url := scriptServer(t, func(i int, nc net.Conn) {
				_, _ = nc.Write(welcomeFrame(time.Minute))
				if i == 0 { // A: reads nothing, pings when told
					<-pingA
					for k := 0; k < 100; k++ { // a server pings regularly
						if ws.WriteFrame(nc, ws.NewPingFrame([]byte("x"))) != nil {
							return
						}
						time.Sleep(100 * time.Millisecond)
					}
					return
				}
				for k := 0; k < 2000; k++ { // B: an event every 10 ms
					var out bytes.Buffer
					_ = wsutil.WriteServerBinary(&out, wire.NewEncoder().RoomEvent(wire.RoomEvent{From: wire.FromOperator, Payload: []byte{0xc3}}))
					if _, err := nc.Write(out.Bytes()); err != nil {
						return
					}
					time.Sleep(10 * time.Millisecond)
				}
			})
			cfg := client.DefaultConfig()
			cfg.WriteTimeout = 2 * time.Second
			cfg.Reconnect.Attempts = 0
			setup(&cfg)
			a, err := client.Dial(context.Background(), url, cfg)
			require.NoError(t, err)
			defer a.Close()
			var last atomic.Int64
			var maxGap atomic.Int64
			cfgB := cfg
			cfgB.OnEvent = func(e client.Event) {
				if e.Kind != client.EventRoomMessage {
					return
				}
				now := time.Now().UnixNano()
				if l := last.Swap(now); l != 0 && now-l > maxGap.Load() {
					maxGap.Store(now - l)
				}
			}
			b, err := client.Dial(context.Background(), url, cfgB)
			require.NoError(t, err)
			defer b.Close()

			// A's writer fills the socket and then waits in a write. Wait
			// until one of its writes has been under way for 300 ms.
			var callStart atomic.Int64
			callStart.Store(time.Now().UnixNano())
			aDone := make(chan struct{})
			defer func() { _ = a.Close(); <-aDone }() // Close ends the write
			go func() {
				defer close(aDone)
				big := make([]byte, 64<<10)
				for {
					callStart.Store(time.Now().UnixNano())
					ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
					err := a.SendMessage(ctx, big)
					cancel()
					if !errors.Is(err, context.DeadlineExceeded) {
						return
					}
				}
			}()
			require.Eventually(t, func() bool { return time.Since(time.Unix(0, callStart.Load())) > 300*time.Millisecond },
				20*time.Second, 10*time.Millisecond, "A's writes never filled the socket")
			maxGap.Store(0)
			close(pingA)
			time.Sleep(1500 * time.Millisecond) // a window of pings to A, inside A's write timeout
			gap := max(time.Duration(maxGap.Load()), time.Since(time.Unix(0, last.Load())))
			t.Logf("longest gap between B's events: %v", gap)
			assert.Less(t, gap, 500*time.Millisecond, "client B stalled because of client A")
		})
	}
}

// silentServer accepts WebSocket connections on loopback, welcomes each
// with the given heartbeat, sends the messages in then (in the same TCP
// segment as the Welcome) and then says nothing more, holding the
// connection open: a server that hung.
func silentServer(t *testing.T, heartbeat time.Duration, then ...[]byte) string {
	t.Helper()
	return scriptServer(t, func(_ int, nc net.Conn) {
		out := bytes.NewBuffer(welcomeFrame(heartbeat))
		for _, m := range then {
			_ = wsutil.WriteServerBinary(out, m)
		}
		_, _ = nc.Write(out.Bytes())
	})
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
			waitClosed(t, c, "the client kept a silent connection for 10 s")
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

// waitClosed waits up to 10 s for c to close for good, and fails the test
// with msg if it does not.
func waitClosed(t *testing.T, c *client.Client, msg string) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal(msg)
	}
}
