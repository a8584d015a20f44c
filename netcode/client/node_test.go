package client_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tickroom/tickroom/netcode"
	"github.com/tickroom/tickroom/netcode/wire"
)

// This file holds testNode, a real netcode server on loopback standing in
// for a node of a cluster: what it answers to joins is the test's to say.

// joinFunc answers a Join on node n; the Conn is the one that sent it.
type joinFunc func(n *testNode, c *netcode.Conn, req wire.Join) (wire.Joined, error)

// testNode is a netcode server on 127.0.0.1 whose sessions answer joins
// with a joinFunc and record what their clients did. Its methods are safe
// for concurrent use: the server's goroutines call into it.
type testNode struct {
	name string
	url  string
	srv  *netcode.Server

	stopOnce sync.Once
	served   chan error

	mu      sync.Mutex
	join    joinFunc
	hops    []uint32        // each Join's Hops, in order
	closed  []error         // each Session.Closed's cause, in order
	seated  []*netcode.Conn // connections that got a seat, in order
	inputs  []uint32        // seqs of the inputs of seated connections
	stopErr error
}

// testServerConfig is a netcode server configuration for these tests:
// a redirected connection stays open for a minute unless its client closes
// it, so that a test sees only what the client does.
func testServerConfig() netcode.ServerConfig {
	cfg := netcode.DefaultServerConfig()
	cfg.RedirectGrace = time.Minute
	return cfg
}

// startNode starts a node that answers joins with join, until the test
// ends (or stop).
func startNode(t testing.TB, name string, join joinFunc) *testNode {
	t.Helper()
	n := &testNode{name: name, join: join, served: make(chan error, 1)}
	srv, err := netcode.NewServer(testServerConfig(), n)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	n.srv, n.url = srv, "ws://"+ln.Addr().String()+"/ws"
	go func() { n.served <- srv.Serve(ln) }()
	t.Cleanup(func() { require.NoError(t, n.stop()) })
	return n
}

// stop shuts the node down and waits for it; later calls return the first
// call's result.
func (n *testNode) stop() error {
	n.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := n.srv.Shutdown(ctx, "node stopped")
		if serr := <-n.served; err == nil && !errors.Is(serr, netcode.ErrServerClosed) {
			err = serr
		}
		n.mu.Lock()
		n.stopErr = err
		n.mu.Unlock()
	})
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stopErr
}

// onJoin replaces how the node answers joins.
func (n *testNode) onJoin(join joinFunc) {
	n.mu.Lock()
	n.join = join
	n.mu.Unlock()
}

// Hops returns the Hops of every Join the node got, in order.
func (n *testNode) Hops() []uint32 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]uint32(nil), n.hops...)
}

// Closed returns the causes of every connection end, in order.
func (n *testNode) Closed() []error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]error(nil), n.closed...)
}

// Seated returns the connections that got a seat, in order.
func (n *testNode) Seated() []*netcode.Conn {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*netcode.Conn(nil), n.seated...)
}

// Inputs returns the seqs of the inputs its seated connections sent.
func (n *testNode) Inputs() []uint32 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]uint32(nil), n.inputs...)
}

// Open implements netcode.Handler.
func (n *testNode) Open(c *netcode.Conn) netcode.Session { return &nodeSession{n: n, c: c} }

// nodeSession is one connection's session on a testNode. netcode calls
// its methods one at a time.
type nodeSession struct {
	n      *testNode
	c      *netcode.Conn
	seated bool
}

func (s *nodeSession) Join(req wire.Join) (wire.Joined, error) {
	s.n.mu.Lock()
	s.n.hops = append(s.n.hops, req.Hops)
	join := s.n.join
	s.n.mu.Unlock()
	j, err := join(s.n, s.c, req)
	if err != nil {
		return j, err
	}
	j.ReqID = req.ReqID
	s.seated = true
	s.n.mu.Lock()
	s.n.seated = append(s.n.seated, s.c)
	s.n.mu.Unlock()
	return j, nil
}

func (s *nodeSession) Leave() error { s.seated = false; return nil }

func (s *nodeSession) Input(in wire.Input) error {
	if s.seated {
		s.n.mu.Lock()
		s.n.inputs = append(s.n.inputs, in.Seq)
		s.n.mu.Unlock()
	}
	return nil
}

func (s *nodeSession) Message([]byte) error { return nil }

func (s *nodeSession) Closed(cause error) {
	s.n.mu.Lock()
	s.n.closed = append(s.n.closed, cause)
	s.n.mu.Unlock()
}

// redirectTo answers every join with a redirect to target's URL.
func redirectTo(target *testNode) joinFunc {
	return func(*testNode, *netcode.Conn, wire.Join) (wire.Joined, error) {
		return wire.Joined{}, netcode.Redirect(target.url, target.name)
	}
}

// seat answers every join with a seat in room "room-<node>" as player.
func seat(player uint32) joinFunc {
	return func(n *testNode, _ *netcode.Conn, req wire.Join) (wire.Joined, error) {
		return wire.Joined{
			RoomID: "room-" + n.name, Mode: req.Mode, Player: player, Token: "tok-" + n.name,
			Resumed: req.Token != "", MaxPlayers: 4, Players: []uint32{player},
		}, nil
	}
}

// snapshotMsg is a full snapshot message of tick with one entity at (x, 0).
func snapshotMsg(tick uint64, id uint32, x int32) []byte {
	msg := wire.AppendSnapshotHead(nil, 0)
	ents := []wire.Entity{{ID: id, Kind: 1, Fields: [wire.MaxFields]int32{x}}}
	return append(msg, wire.NewEncoder().SnapshotBody(tick, time.Now().UnixMilli(), 0, 0, nil, ents)...)
}

// roomEventMsg is a room event from the operator carrying MessagePack true.
func roomEventMsg() []byte {
	return wire.NewEncoder().RoomEvent(wire.RoomEvent{From: wire.FromOperator, Payload: []byte{0xc3}})
}
