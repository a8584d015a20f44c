package cluster

import (
	"fmt"
	"io"
	"log"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tickroom/tickroom/cluster/internal/faultnet"
	"github.com/tickroom/tickroom/rooms"
	"github.com/tickroom/tickroom/sim"
)

// testNode is one in-process node: a registry and its cluster membership,
// gossiping over a fault-injecting transport on 127.0.0.1.
type testNode struct {
	*Node
	reg  *rooms.Registry
	addr string
}

// testConfig is DefaultConfig with the repair loops shortened, so that
// tests of healing finish in seconds.
func testConfig(name string) Config {
	c := DefaultConfig()
	c.NodeName = name
	c.GossipListen = "127.0.0.1:0"
	c.GameURL = "ws://127.0.0.1:1/" + name // never dialled by these tests
	c.AdminURL = "http://127.0.0.1:1/" + name
	c.PushPullInterval = time.Second
	c.RejoinInterval = time.Second
	c.JoinRetry = 100 * time.Millisecond
	c.OrphanGrace = 2 * time.Second
	return c
}

func newRegistry(t *testing.T) *rooms.Registry {
	t.Helper()
	rc := rooms.DefaultConfig()
	rc.EmptyTimeout = time.Minute // rooms the tests create stay until closed
	reg, err := rooms.NewRegistry(rc)
	require.NoError(t, err)
	t.Cleanup(func() { _ = reg.Close(t.Context()) })
	return reg
}

// startNode starts a node on fn, joining seeds, with cfg changed by tune.
func startNode(t *testing.T, fn *faultnet.Network, name string, seeds []string, tune func(*Config)) *testNode {
	t.Helper()
	tr, err := fn.NewTransport("127.0.0.1", 0, log.New(io.Discard, "", 0))
	require.NoError(t, err)
	cfg := testConfig(name)
	cfg.Advertise = tr.Addr()
	cfg.Join = seeds
	if tune != nil {
		tune(&cfg)
	}
	reg := newRegistry(t)
	n, err := newNode(cfg, reg, options{transport: tr})
	require.NoError(t, err)
	n.SetReady(true)
	reg.SetRouter(n)
	t.Cleanup(func() { _ = n.Close(100 * time.Millisecond) })
	return &testNode{Node: n, reg: reg, addr: tr.Addr()}
}

// startCluster starts count nodes joined through the first.
func startCluster(t *testing.T, fn *faultnet.Network, count int) []*testNode {
	t.Helper()
	nodes := []*testNode{startNode(t, fn, "n1", nil, nil)}
	for i := 2; i <= count; i++ {
		nodes = append(nodes, startNode(t, fn, fmt.Sprintf("n%d", i), []string{nodes[0].addr}, nil))
	}
	for _, n := range nodes {
		waitAlive(t, n, count)
		waitReady(t, n)
	}
	return nodes
}

// waitReady waits until n sees every member ready.
func waitReady(t *testing.T, n *testNode) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, m := range n.Members() {
			if m.State == StateAlive && !m.Meta.Ready {
				return false
			}
		}
		return true
	}, 10*time.Second, 10*time.Millisecond, "readiness is gossiped to %s", n.cfg.NodeName)
}

func waitAlive(t *testing.T, n *testNode, want int) {
	t.Helper()
	require.Eventually(t, func() bool { return aliveCount(n) == want }, 10*time.Second, 20*time.Millisecond,
		"%s sees %d alive members, wants %d", n.cfg.NodeName, aliveCount(n), want)
}

func aliveCount(n *testNode) int {
	c := 0
	for _, m := range n.Members() {
		if m.State == StateAlive {
			c++
		}
	}
	return c
}

// host returns the gossip name of the room's host in n's directory, or "".
func host(n *testNode, room string) string {
	e, ok := n.dir.get(room)
	if !ok {
		return ""
	}
	return e.Host
}

func createRoom(t *testing.T, n *testNode) *rooms.Room {
	t.Helper()
	r, err := n.reg.Create(rooms.RoomOptions{Mode: sim.ArenaMode})
	require.NoError(t, err)
	return r
}

func TestMembersFormAClusterWithMetadata(t *testing.T) {
	fn := faultnet.NewNetwork()
	nodes := startCluster(t, fn, 3)
	for _, n := range nodes {
		ms := n.Members()
		require.Len(t, ms, 3)
		for _, m := range ms {
			assert.True(t, strings.HasPrefix(m.ID, m.Meta.Name+"-"), "gossip name %q is the human name %q plus a suffix", m.ID, m.Meta.Name)
			assert.Equal(t, "ws://127.0.0.1:1/"+m.Meta.Name, m.Meta.GameURL)
			assert.Equal(t, m.ID == n.Name(), m.Self)
		}
	}
	p, err := encodeMeta(nodes[0].currentMeta())
	require.NoError(t, err)
	assert.Less(t, len(p), 300, "meta stays well under memberlist's 512 bytes")
}

func TestDirectorySpreadsRoomsAndTheirEnd(t *testing.T) {
	fn := faultnet.NewNetwork()
	nodes := startCluster(t, fn, 3)
	a := nodes[0]
	r := createRoom(t, a)
	for _, n := range nodes {
		require.Eventually(t, func() bool { return host(n, r.ID()) == a.Name() }, 5*time.Second, 10*time.Millisecond,
			"%s learns the room", n.cfg.NodeName)
	}
	// Routing from the other nodes points at the host's game URL.
	route := nodes[1].LocateRoom(r.ID())
	assert.Equal(t, rooms.Route{Node: "n1", URL: "ws://127.0.0.1:1/n1"}, route)
	assert.True(t, a.LocateRoom(r.ID()).Local)

	r.Close("test")
	for _, n := range nodes {
		require.Eventually(t, func() bool { return host(n, r.ID()) == "" }, 5*time.Second, 10*time.Millisecond,
			"%s forgets the closed room", n.cfg.NodeName)
		_, tombs := n.dir.size()
		assert.Equal(t, 1, tombs, "%s keeps a tombstone", n.cfg.NodeName)
	}
	assert.Equal(t, rooms.Route{}, nodes[2].LocateRoom(r.ID()), "a closed room routes nowhere")
}

func TestRoomsOfAnIsolatedNodeLeaveAndComeBack(t *testing.T) {
	fn := faultnet.NewNetwork()
	nodes := startCluster(t, fn, 3)
	c := nodes[2]
	r := createRoom(t, c)
	for _, n := range nodes {
		require.Eventually(t, func() bool { return host(n, r.ID()) == c.Name() }, 5*time.Second, 10*time.Millisecond)
	}
	fn.Isolate(c.addr)
	for _, n := range nodes[:2] {
		require.Eventually(t, func() bool { return host(n, r.ID()) == "" }, 10*time.Second, 20*time.Millisecond,
			"%s drops the rooms of a node it cannot reach", n.cfg.NodeName)
	}
	assert.Equal(t, c.Name(), host(c, r.ID()), "the isolated host keeps its own room")
	fn.Heal()
	for _, n := range nodes {
		waitAlive(t, n, 3)
		require.Eventually(t, func() bool { return host(n, r.ID()) == c.Name() }, 10*time.Second, 20*time.Millisecond,
			"%s learns the room again after the heal", n.cfg.NodeName)
	}
}

func TestPartitionSidesDropEachOthersRoomsAndHeal(t *testing.T) {
	fn := faultnet.NewNetwork()
	nodes := startCluster(t, fn, 4)
	ra, rc := createRoom(t, nodes[0]), createRoom(t, nodes[2])
	for _, n := range nodes {
		require.Eventually(t, func() bool { return host(n, ra.ID()) != "" && host(n, rc.ID()) != "" }, 5*time.Second, 10*time.Millisecond)
	}
	fn.Partition([]string{nodes[0].addr, nodes[1].addr}, []string{nodes[2].addr, nodes[3].addr})
	for i, n := range nodes {
		other := rc
		if i >= 2 {
			other = ra
		}
		require.Eventually(t, func() bool { return host(n, other.ID()) == "" }, 10*time.Second, 20*time.Millisecond,
			"%s drops the rooms across the partition", n.cfg.NodeName)
		waitAlive(t, n, 2)
	}
	// Each side still places joins, on its own side only.
	for i, n := range nodes {
		route := n.PlaceJoin(sim.ArenaMode, 0)
		if !route.Local {
			want := []string{"n3", "n4"}
			if i < 2 {
				want = []string{"n1", "n2"}
			}
			assert.Contains(t, want, route.Node, "%s places on its own side", n.cfg.NodeName)
		}
	}
	fn.Heal()
	for _, n := range nodes {
		waitAlive(t, n, 4)
		require.Eventually(t, func() bool { return host(n, ra.ID()) != "" && host(n, rc.ID()) != "" }, 10*time.Second, 20*time.Millisecond,
			"%s sees both sides' rooms after the heal", n.cfg.NodeName)
	}
}

func TestNodeWithoutTheKeyCannotJoin(t *testing.T) {
	fn := faultnet.NewNetwork()
	key := []byte("0123456789abcdef")
	a := startNode(t, fn, "n1", nil, func(c *Config) { c.SecretKey = key })
	b := startNode(t, fn, "n2", []string{a.addr}, func(c *Config) { c.SecretKey = key })
	waitAlive(t, a, 2)
	waitAlive(t, b, 2)
	stranger := startNode(t, fn, "n3", []string{a.addr}, func(c *Config) { c.SecretKey = []byte("fedcba9876543210") })
	clear := startNode(t, fn, "n4", []string{a.addr}, nil)
	time.Sleep(2 * time.Second) // joins are retried meanwhile; none may succeed
	assert.Equal(t, 2, aliveCount(a), "neither a wrong key nor no key joins")
	assert.Positive(t, a.stats.Dropped.Load(), "the strangers' packets are dropped and counted")
	assert.Equal(t, 1, aliveCount(stranger))
	assert.Equal(t, 1, aliveCount(clear))
}

func TestPlacementPrefersFreeSeatsThenSpreadsNewRooms(t *testing.T) {
	fn := faultnet.NewNetwork()
	nodes := startCluster(t, fn, 3)
	// No rooms: every node chooses the same creator for the mode.
	first := nodes[0].PlaceJoin(sim.ArenaMode, 0)
	creator := first.Node
	if first.Local {
		creator = "n1"
	}
	for _, n := range nodes[1:] {
		r := n.PlaceJoin(sim.ArenaMode, 0)
		got := r.Node
		if r.Local {
			got = n.cfg.NodeName
		}
		assert.Equal(t, creator, got, "views that agree choose the same creator")
	}
	// A room with a free seat on n2 draws joins from every node.
	r := createRoom(t, nodes[1])
	for _, n := range nodes {
		require.Eventually(t, func() bool { return host(n, r.ID()) != "" }, 5*time.Second, 10*time.Millisecond)
	}
	assert.NotEqual(t, "n2", nodes[1].PlaceJoin(sim.ArenaMode, 0).Node, "a node's own free seats are the registry's to find, not the lagging directory's")
	assert.Equal(t, "n2", nodes[0].PlaceJoin(sim.ArenaMode, 0).Node)
	assert.Equal(t, "n2", nodes[2].PlaceJoin(sim.ArenaMode, 0).Node)
	assert.True(t, nodes[0].PlaceJoin(sim.ArenaMode, 8).Local || nodes[0].PlaceJoin(sim.ArenaMode, 8).Node != "",
		"a size no room has is placed somewhere")

	// A draining node takes no new rooms.
	nodes[1].SetDraining(true)
	require.Eventually(t, func() bool {
		r := nodes[0].PlaceJoin(sim.ArenaMode, 0)
		return r.Local || r.Node != "n2"
	}, 5*time.Second, 10*time.Millisecond, "placement skips a draining node")
}

func TestLoadCapSpreadsRooms(t *testing.T) {
	fn := faultnet.NewNetwork()
	nodes := startCluster(t, fn, 3)
	// Fill whichever node is chosen with full rooms; the choice must move
	// on once that node is above the cap.
	cands := nodes[0].candidates()
	nodes[0].weigh(cands, sim.ArenaMode, 0)
	first := nodes[0].choose(cands, sim.ArenaMode+"/0").name
	var target *testNode
	for _, n := range nodes {
		if n.cfg.NodeName == first {
			target = n
		}
	}
	require.NotNil(t, target)
	for range 3 {
		_, err := target.reg.Create(rooms.RoomOptions{Mode: sim.ArenaMode, Private: true})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		cands := nodes[0].candidates()
		nodes[0].weigh(cands, sim.ArenaMode, 0)
		return nodes[0].choose(cands, sim.ArenaMode+"/0").name != first
	}, 5*time.Second, 10*time.Millisecond, "a node above %.2f x the mean load is passed over", nodes[0].cfg.LoadCap)
}

func TestJoinByDNSName(t *testing.T) {
	fn := faultnet.NewNetwork()
	a := startNode(t, fn, "n1", nil, nil)
	_, port, err := splitHostPort(a.addr)
	require.NoError(t, err)
	// localhost resolves to 127.0.0.1 (and perhaps ::1, where nothing
	// listens): a name with several addresses, as a headless Service is.
	b := startNode(t, fn, "n2", []string{fmt.Sprintf("localhost:%d", port)}, nil)
	waitAlive(t, a, 2)
	waitAlive(t, b, 2)
}

func TestDirectoryConvergesOverALossyNetwork(t *testing.T) {
	fn := faultnet.NewNetwork()
	nodes := startCluster(t, fn, 4)
	fn.SetDropRate(0.2) // a fifth of all gossip packets lost
	fn.SetDelay(20 * time.Millisecond)
	var rs []*rooms.Room
	for _, n := range nodes {
		for range 5 {
			rs = append(rs, createRoom(t, n))
		}
	}
	for _, n := range nodes {
		require.Eventually(t, func() bool {
			for _, r := range rs {
				if host(n, r.ID()) == "" {
					return false
				}
			}
			return true
		}, 15*time.Second, 20*time.Millisecond, "%s learns every room despite the losses", n.cfg.NodeName)
	}
	for _, n := range nodes {
		assert.Equal(t, 4, aliveCount(n), "20%% loss kills no one")
	}
}

func TestMembershipEvents(t *testing.T) {
	fn := faultnet.NewNetwork()
	a := startNode(t, fn, "n1", nil, nil)
	b := startNode(t, fn, "n2", []string{a.addr}, nil)
	next := func(want EventKind, name string) Event {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case e := <-a.Events():
				// memberlist may report a leave as a death when the
				// leaver's goodbye is overtaken by its shutdown.
				departed := want == MemberLeft && e.Kind == MemberFailed
				if (e.Kind == want || departed) && e.Member.Meta.Name == name {
					return e
				}
			case <-deadline:
				t.Fatalf("no %s event for %s", want, name)
			}
		}
	}
	e := next(MemberJoined, "n2")
	assert.Equal(t, b.Name(), e.Member.ID)
	assert.Equal(t, StateAlive, e.Member.State)
	b.SetDraining(true)
	require.Eventually(t, func() bool {
		select {
		case e := <-a.Events():
			return e.Kind == MemberUpdated && e.Member.Meta.Draining
		default:
			return false
		}
	}, 10*time.Second, 10*time.Millisecond, "draining arrives as an update")
	require.NoError(t, b.Close(time.Second))
	e = next(MemberLeft, "n2")
	assert.Contains(t, []MemberState{StateLeft, StateDead}, e.Member.State)
	c := startNode(t, fn, "n3", []string{a.addr}, nil)
	next(MemberJoined, "n3")
	fn.Isolate(c.addr)
	e = next(MemberFailed, "n3")
	assert.Equal(t, StateDead, e.Member.State)
	assert.Zero(t, a.EventsLost())
}
