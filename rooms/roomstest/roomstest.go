// Package roomstest runs a real tickroom node in-process for tests: a
// rooms.Registry behind a netcode.Server listening on 127.0.0.1, like
// httptest.NewServer. Cleanup shuts both down and waits for them.
package roomstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/tickroom/tickroom/netcode"
	"github.com/tickroom/tickroom/rooms"
)

// Server is a running node.
type Server struct {
	URL      string // ws://127.0.0.1:PORT/ws
	Registry *rooms.Registry
	Net      *netcode.Server
}

// Config returns the default configurations with test-friendly timings:
// short heartbeats and timeouts so failure paths finish quickly.
func Config() (netcode.ServerConfig, rooms.Config) {
	n, r := netcode.DefaultServerConfig(), rooms.DefaultConfig()
	n.PingInterval = 200 * time.Millisecond
	n.HeartbeatTimeout = time.Second
	n.WriteTimeout = time.Second
	n.CloseGrace = 200 * time.Millisecond
	r.SeatGrace = 2 * time.Second
	r.EmptyTimeout = 5 * time.Second
	return n, r
}

// Start runs a node with the given configurations until the test ends.
func Start(t testing.TB, ncfg netcode.ServerConfig, rcfg rooms.Config) *Server {
	t.Helper()
	ncfg.TickRate = rcfg.TickRate
	reg, err := rooms.NewRegistry(rcfg)
	if err != nil {
		t.Fatalf("roomstest: %v", err)
	}
	srv, err := netcode.NewServer(ncfg, reg)
	if err != nil {
		t.Fatalf("roomstest: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("roomstest: listen: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx, "test over"); err != nil {
			t.Errorf("roomstest: shutdown: %v", err)
		}
		if err := reg.Close(ctx); err != nil {
			t.Errorf("roomstest: close rooms: %v", err)
		}
		if err := <-served; !errors.Is(err, netcode.ErrServerClosed) {
			t.Errorf("roomstest: serve: %v", err)
		}
	})
	return &Server{
		URL:      fmt.Sprintf("ws://%s%s", ln.Addr(), ncfg.Path),
		Registry: reg,
		Net:      srv,
	}
}

// StartDefault runs a node with Config's timings.
func StartDefault(t testing.TB) *Server {
	t.Helper()
	n, r := Config()
	return Start(t, n, r)
}
