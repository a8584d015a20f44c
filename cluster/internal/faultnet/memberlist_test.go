package faultnet

import (
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// detectBound is how long a test gives memberlist to notice a change. With
// the timings of startNode, failure detection takes about a second.
const detectBound = 10 * time.Second

// liveSet records which nodes one memberlist believes alive, from its
// EventDelegate callbacks. memberlist never calls them concurrently, but
// the test goroutine reads the set while they run, hence the mutex.
type liveSet struct {
	mu    sync.Mutex
	alive map[string]bool
}

var _ memberlist.EventDelegate = (*liveSet)(nil)

func (s *liveSet) NotifyJoin(n *memberlist.Node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.alive[n.Name] = true
}

func (s *liveSet) NotifyLeave(n *memberlist.Node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.alive, n.Name)
}

func (s *liveSet) NotifyUpdate(*memberlist.Node) {}

// names returns the names of the live nodes, sorted.
func (s *liveSet) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.alive))
	for name := range s.alive {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

type node struct {
	name string
	ml   *memberlist.Memberlist
	tr   *Transport
	live *liveSet
}

// startNode starts a memberlist node with fast timings on a faultnet
// transport bound to 127.0.0.1 and a free port.
func startNode(t testing.TB, n *Network, name string) *node {
	t.Helper()
	tr, err := n.NewTransport("127.0.0.1", 0, nil)
	require.NoError(t, err)
	live := &liveSet{alive: make(map[string]bool)}

	cfg := memberlist.DefaultLocalConfig()
	cfg.Name = name
	cfg.BindAddr = "127.0.0.1"
	cfg.BindPort = 0 // the transport bound the port; memberlist asks it
	cfg.Transport = tr
	cfg.ProbeInterval = 200 * time.Millisecond
	cfg.ProbeTimeout = 100 * time.Millisecond
	cfg.GossipInterval = 50 * time.Millisecond
	cfg.SuspicionMult = 2
	cfg.Events = live
	cfg.LogOutput = io.Discard

	ml, err := memberlist.Create(cfg)
	if err != nil {
		assert.NoError(t, tr.Shutdown())
		require.NoError(t, err)
	}
	t.Cleanup(func() {
		assert.NoError(t, ml.Shutdown())
		assert.NoError(t, tr.Shutdown(), "second Shutdown of the transport")
	})
	return &node{name: name, ml: ml, tr: tr, live: live}
}

// requireSees waits until each of the nodes believes exactly want alive.
func requireSees(t testing.TB, want []string, nodes ...*node) {
	t.Helper()
	for _, nd := range nodes {
		require.Eventually(t, func() bool { return slices.Equal(nd.live.names(), want) }, detectBound, 20*time.Millisecond,
			"%s should see %v alive, sees %v", nd.name, want, nd.live.names())
	}
}

func TestMemberlistClusterUnderFaults(t *testing.T) {
	checkGoroutines(t)
	n := NewNetwork()
	a, b, c := startNode(t, n, "a"), startNode(t, n, "b"), startNode(t, n, "c")
	all := []string{"a", "b", "c"}

	_, err := b.ml.Join([]string{a.tr.Addr()})
	require.NoError(t, err)
	_, err = c.ml.Join([]string{a.tr.Addr()})
	require.NoError(t, err)
	requireSees(t, all, a, b, c)

	// A killed or stalled node: the others declare it dead.
	n.Isolate(c.tr.Addr())
	requireSees(t, []string{"a", "b"}, a, b)
	requireSees(t, []string{"c"}, c)

	// After Heal the node rejoins through an explicit Join.
	n.Heal()
	_, err = c.ml.Join([]string{a.tr.Addr()})
	require.NoError(t, err)
	requireSees(t, all, a, b, c)

	// A split: each side declares the other dead.
	dialsBefore := a.tr.Stats().DialsRefused + b.tr.Stats().DialsRefused + c.tr.Stats().DialsRefused
	n.Partition([]string{a.tr.Addr(), b.tr.Addr()}, []string{c.tr.Addr()})
	requireSees(t, []string{"a", "b"}, a, b)
	requireSees(t, []string{"c"}, c)

	for _, nd := range []*node{a, b, c} {
		s := nd.tr.Stats()
		assert.NotZero(t, s.PacketsSent, nd.name)
		assert.NotZero(t, s.BytesSent, nd.name)
		assert.NotZero(t, s.PacketsReceived, nd.name)
		assert.NotZero(t, s.BytesReceived, nd.name)
		assert.NotZero(t, s.PacketsDropped, nd.name)
	}
	dialsAfter := a.tr.Stats().DialsRefused + b.tr.Stats().DialsRefused + c.tr.Stats().DialsRefused
	assert.Greater(t, dialsAfter, dialsBefore, "memberlist's TCP fallback probes should have been refused")
}
