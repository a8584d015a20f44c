package cluster

import (
	"context"
	"fmt"
	"io"
	"log"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tickroom/tickroom/cluster/internal/faultnet"
	"github.com/tickroom/tickroom/netcode/client"
	"github.com/tickroom/tickroom/rooms"
	"github.com/tickroom/tickroom/rooms/roomstest"
	"github.com/tickroom/tickroom/sim"
)

// testKey is the cluster key of the ownership tests: replication needs one.
var testKey = []byte("0123456789abcdef")

// gameNode is an in-process node that serves players: a registry behind a
// real game endpoint on 127.0.0.1, in a cluster over faultnet.
type gameNode struct {
	*testNode
	game *roomstest.Server
}

func startGameNode(t *testing.T, fn *faultnet.Network, name string, seeds []string, tune func(*Config)) *gameNode {
	t.Helper()
	ncfg, rcfg := roomstest.Config()
	rcfg.SeatGrace = 20 * time.Second // seats outlive every fault of these tests
	rcfg.EmptyTimeout = time.Minute
	game := roomstest.Start(t, ncfg, rcfg)
	tr, err := fn.NewTransport("127.0.0.1", 0, log.New(io.Discard, "", 0))
	require.NoError(t, err)
	cfg := testConfig(name)
	cfg.Advertise = tr.Addr()
	cfg.Join = seeds
	cfg.GameURL = game.URL
	cfg.SecretKey = testKey
	if tune != nil {
		tune(&cfg)
	}
	n, err := newNode(cfg, game.Registry, options{transport: tr})
	require.NoError(t, err)
	n.SetReady(true)
	game.Registry.SetRouter(n)
	t.Cleanup(func() { _ = n.Close(100 * time.Millisecond) })
	return &gameNode{testNode: &testNode{Node: n, reg: game.Registry, addr: tr.Addr()}, game: game}
}

func startGameCluster(t *testing.T, fn *faultnet.Network, count int) []*gameNode {
	t.Helper()
	nodes := []*gameNode{startGameNode(t, fn, "n1", nil, nil)}
	for i := 2; i <= count; i++ {
		nodes = append(nodes, startGameNode(t, fn, fmt.Sprintf("n%d", i), []string{nodes[0].addr}, nil))
	}
	for _, n := range nodes {
		waitAlive(t, n.testNode, count)
		waitReady(t, n.testNode)
	}
	// Every pair holds a lease before rooms pick witnesses.
	require.Eventually(t, func() bool {
		for _, a := range nodes {
			for _, b := range nodes {
				if a != b && a.own.leases.peer(b.name).heldUntil.Load() <= a.own.leases.now() {
					return false
				}
			}
		}
		return true
	}, 10*time.Second, 10*time.Millisecond, "every node holds a lease from every other")
	return nodes
}

func urls(nodes []*gameNode) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.game.URL)
	}
	return out
}

// player is a Go client seated in a room, which follows its room wherever
// it goes, and remembers the lowest and highest tick it has seen.
type player struct {
	c *client.Client
}

func joinPlayers(t *testing.T, count int, dial string, seeds []string, roomID string) []*player {
	t.Helper()
	var ps []*player
	for range count {
		cfg := client.DefaultConfig()
		cfg.Seeds = seeds
		cfg.Reconnect.Attempts = 30
		cfg.Reconnect.Base = 50 * time.Millisecond
		cfg.Reconnect.Cap = 500 * time.Millisecond
		c, err := client.Dial(t.Context(), dial, cfg)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		j, err := c.Join(t.Context(), client.JoinOptions{RoomID: roomID})
		require.NoError(t, err)
		require.Equal(t, roomID, j.RoomID)
		ps = append(ps, &player{c: c})
	}
	return ps
}

// hostOf returns the node whose registry runs roomID unfenced, or nil.
func hostOf(nodes []*gameNode, roomID string) *gameNode {
	for _, n := range nodes {
		if r, ok := n.reg.Get(roomID); ok && !r.Fenced() {
			return n
		}
	}
	return nil
}

// splitBrainWatch samples every node's copy of every room until the test
// ends, and fails the test if two nodes ever run one room at one epoch, or
// if two copies of one room both ticked between two samples.
type splitBrainWatch struct {
	t     *testing.T
	nodes []*gameNode
	stop  chan struct{}
	done  chan struct{}

	mu         sync.Mutex
	violations []string
}

func watchSplitBrain(t *testing.T, nodes []*gameNode) *splitBrainWatch {
	w := &splitBrainWatch{t: t, nodes: nodes, stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	t.Cleanup(w.check)
	return w
}

func (w *splitBrainWatch) run() {
	defer close(w.done)
	type copyKey struct {
		node int
		room string
	}
	last := make(map[copyKey]uint64)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
		byEpoch := make(map[string]int)
		ticked := make(map[string][]int)
		for i, n := range w.nodes {
			for _, r := range n.reg.List() {
				k := copyKey{i, r.ID()}
				ticks := r.Stats().Ticks.Load()
				if prev, ok := last[k]; ok && ticks > prev {
					ticked[r.ID()] = append(ticked[r.ID()], i)
				}
				last[k] = ticks
				if r.Fenced() {
					continue
				}
				key := fmt.Sprintf("%s@%d", r.ID(), r.Epoch())
				if j, ok := byEpoch[key]; ok {
					w.fail(fmt.Sprintf("room %s runs on %s and %s at one epoch", key, w.nodes[j].cfg.NodeName, n.cfg.NodeName))
				}
				byEpoch[key] = i
			}
		}
		for id, on := range ticked {
			if len(on) > 1 {
				w.fail(fmt.Sprintf("room %s ticked on %d nodes within 5 ms", id, len(on)))
			}
		}
	}
}

func (w *splitBrainWatch) fail(v string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.violations) < 10 {
		w.violations = append(w.violations, v)
	}
}

func (w *splitBrainWatch) check() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	assert.Empty(w.t, w.violations, "no room ran on two nodes")
}

// activeRoom creates a room on n and seats count players in it through n,
// and waits until both witnesses hold a checkpoint of it.
func activeRoom(t *testing.T, nodes []*gameNode, n *gameNode, count int) (*rooms.Room, []*player) {
	t.Helper()
	r, err := n.reg.Create(rooms.RoomOptions{Mode: sim.ArenaMode, MaxPlayers: 8})
	require.NoError(t, err)
	ps := joinPlayers(t, count, n.game.URL, urls(nodes), r.ID())
	require.Eventually(t, func() bool { return witnesses(nodes, r.ID()) == 2 }, 10*time.Second, 10*time.Millisecond,
		"two witnesses hold a checkpoint of the room")
	return r, ps
}

// witnesses counts the nodes holding a checkpoint of roomID.
func witnesses(nodes []*gameNode, roomID string) int {
	c := 0
	for _, n := range nodes {
		n.own.mu.Lock()
		if rec := n.own.records[roomID]; rec != nil && rec.data != nil {
			c++
		}
		n.own.mu.Unlock()
	}
	return c
}

// kill makes n look dead to the rest: its gossip is cut and its players'
// connections end, without a word to anyone (as after kill -9).
func kill(t *testing.T, fn *faultnet.Network, n *gameNode) {
	t.Helper()
	fn.Isolate(n.addr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = n.game.Net.Shutdown(ctx, "killed")
}

func seatedIn(ps []*player, roomID string) int {
	c := 0
	for _, p := range ps {
		if s := p.c.Seat(); s != nil && s.RoomID == roomID {
			c++
		}
	}
	return c
}

func TestCheckpointsReachWitnessesAndTheStatus(t *testing.T) {
	fn := faultnet.NewNetwork()
	nodes := startGameCluster(t, fn, 3)
	r, _ := activeRoom(t, nodes, nodes[0], 2)
	st := nodes[0].ClusterStatus().Ownership
	require.True(t, st.Enabled)
	require.Len(t, st.Rooms, 1)
	assert.Equal(t, r.ID(), st.Rooms[0].ID)
	assert.Len(t, st.Rooms[0].Witnesses, 2)
	assert.GreaterOrEqual(t, st.Rooms[0].CheckpointAgeMs, 0.0)
	assert.Positive(t, st.CheckpointsSent)
	for _, n := range nodes[1:] {
		assert.Equal(t, 1, n.ClusterStatus().Ownership.Witnessed)
	}
}

func TestFailoverRestoresTheRoomAndItsSeats(t *testing.T) {
	fn := faultnet.NewNetwork()
	nodes := startGameCluster(t, fn, 3)
	watchSplitBrain(t, nodes)
	r, ps := activeRoom(t, nodes, nodes[0], 4)
	// Let the room run past a checkpoint or two.
	lastTick := r.Stats().Ticks.Load()
	require.Eventually(t, func() bool { return r.Stats().Ticks.Load() > lastTick+40 }, 5*time.Second, 10*time.Millisecond)

	killedAt := time.Now()
	kill(t, fn, nodes[0])
	var next *gameNode
	require.Eventually(t, func() bool {
		next = hostOf(nodes[1:], r.ID())
		return next != nil
	}, 10*time.Second, 5*time.Millisecond, "a witness restores the room")
	t.Logf("room restored on %s %v after the kill", next.cfg.NodeName, time.Since(killedAt))
	nr, _ := next.reg.Get(r.ID())
	assert.Equal(t, uint64(2), nr.Epoch())
	require.Eventually(t, func() bool {
		for _, p := range ps {
			if p.c.Stats().Resumes.Load() == 0 || p.c.Seat() == nil {
				return false
			}
		}
		return true
	}, 15*time.Second, 10*time.Millisecond, "every player resumes its seat")
	t.Logf("every player resumed %v after the kill", time.Since(killedAt))
	assert.Equal(t, 4, seatedIn(ps, r.ID()))
	assert.Equal(t, 4, nr.Players(), "no seat lost, none added")
	require.Eventually(t, func() bool {
		for _, n := range nodes[1:] {
			if host(n.testNode, r.ID()) != next.name {
				return false
			}
		}
		return true
	}, 10*time.Second, 10*time.Millisecond, "the directory points at the new host")
}

func TestAStalledHostStopsItsRoomAndItsPlayersFollow(t *testing.T) {
	fn := faultnet.NewNetwork()
	nodes := startGameCluster(t, fn, 3)
	watchSplitBrain(t, nodes)
	r, ps := activeRoom(t, nodes, nodes[0], 3)

	// Cut the host off for longer than a lease, but keep its players'
	// connections: they are what a stalled or partitioned host keeps.
	fn.Isolate(nodes[0].addr)
	require.Eventually(t, r.Fenced, 10*time.Second, 5*time.Millisecond, "the cut-off host fences its room")
	var next *gameNode
	require.Eventually(t, func() bool {
		next = hostOf(nodes[1:], r.ID())
		return next != nil
	}, 10*time.Second, 5*time.Millisecond, "the others take the room over")
	fn.Heal()
	require.Eventually(t, func() bool {
		for _, p := range ps {
			if s := p.c.Seat(); s == nil || p.c.Stats().Resumes.Load()+p.c.Stats().Moves.Load() == 0 {
				return false
			}
		}
		return true
	}, 20*time.Second, 10*time.Millisecond, "the fenced host sends its players to the new host")
	nr, _ := next.reg.Get(r.ID())
	assert.Equal(t, 3, nr.Players())
	require.Eventually(t, func() bool { _, ok := nodes[0].reg.Get(r.ID()); return !ok }, 15*time.Second, 10*time.Millisecond,
		"the old copy is gone")
}

func TestPartitionKeepsEachRoomOnTheSideOfItsGroup(t *testing.T) {
	fn := faultnet.NewNetwork()
	nodes := startGameCluster(t, fn, 5)
	watchSplitBrain(t, nodes)
	var all []*player
	var ids []string
	for i := range nodes {
		r, ps := activeRoom(t, nodes, nodes[i], 2)
		all = append(all, ps...)
		ids = append(ids, r.ID())
	}
	minority, majoritySide := []string{nodes[0].addr, nodes[1].addr}, []string{nodes[2].addr, nodes[3].addr, nodes[4].addr}
	fn.Partition(minority, majoritySide)
	time.Sleep(4 * time.Second) // leases lapse, takeovers happen: the watch checks all along
	fn.Heal()
	require.Eventually(t, func() bool {
		for _, id := range ids {
			if hostOf(nodes, id) == nil {
				return false
			}
		}
		for _, p := range all {
			s := p.c.Seat()
			if s == nil {
				return false
			}
			h := hostOf(nodes, s.RoomID)
			if h == nil {
				return false
			}
		}
		return true
	}, 30*time.Second, 20*time.Millisecond, "after the heal every room runs once and every player is seated")
	total := 0
	for _, id := range ids {
		r, _ := hostOf(nodes, id).reg.Get(id)
		total += r.Players()
	}
	assert.Equal(t, len(all), total, "no seat lost, none doubled")
}

func TestHandOffMovesARoomAndItsPlayersLive(t *testing.T) {
	fn := faultnet.NewNetwork()
	nodes := startGameCluster(t, fn, 3)
	watchSplitBrain(t, nodes)
	r, ps := activeRoom(t, nodes, nodes[0], 4)
	res, err := nodes[0].Move(t.Context(), r.ID(), "n2")
	require.NoError(t, err)
	t.Logf("hand-off froze the room for %v", res.Freeze)
	assert.Equal(t, "n2", res.To)
	assert.Equal(t, uint64(2), res.Epoch)
	nr, ok := nodes[1].reg.Get(r.ID())
	require.True(t, ok)
	assert.Equal(t, uint64(2), nr.Epoch())
	require.Eventually(t, func() bool {
		for _, p := range ps {
			if p.c.Stats().Moves.Load() != 1 || p.c.Seat() == nil {
				return false
			}
		}
		return true
	}, 10*time.Second, 5*time.Millisecond, "every player follows the room")
	assert.Equal(t, 4, nr.Players())
	_, still := nodes[0].reg.Get(r.ID())
	assert.False(t, still, "the old host runs it no more")
	for _, p := range ps {
		assert.Zero(t, p.c.Stats().Drops.Load(), "no player dropped: they moved")
	}

	// By hand to a node that cannot take it, and of a room not here.
	_, err = nodes[1].Move(t.Context(), r.ID(), "nosuch")
	require.ErrorIs(t, err, ErrNoTarget)
	_, err = nodes[0].Move(t.Context(), r.ID(), "")
	require.ErrorIs(t, err, ErrRoomNotHere)
}

func TestDrainHandsOffEveryRoom(t *testing.T) {
	fn := faultnet.NewNetwork()
	nodes := startGameCluster(t, fn, 3)
	watchSplitBrain(t, nodes)
	var all []*player
	for range 3 {
		_, ps := activeRoom(t, nodes, nodes[0], 2)
		all = append(all, ps...)
	}
	require.NoError(t, nodes[0].Drain(t.Context()))
	assert.Empty(t, nodes[0].reg.List())
	require.Eventually(t, func() bool {
		for _, p := range all {
			s := p.c.Seat()
			if s == nil || hostOf(nodes[1:], s.RoomID) == nil {
				return false
			}
		}
		return true
	}, 10*time.Second, 10*time.Millisecond, "every player is seated on another node")
	assert.Equal(t, uint64(3), nodes[0].own.stats.HandOffs.Load())
}

func TestAGroupOfTwoIsNeverFailedOver(t *testing.T) {
	fn := faultnet.NewNetwork()
	nodes := startGameCluster(t, fn, 2)
	r, err := nodes[0].reg.Create(rooms.RoomOptions{Mode: sim.ArenaMode})
	require.NoError(t, err)
	joinPlayers(t, 1, nodes[0].game.URL, urls(nodes), r.ID())
	require.Eventually(t, func() bool { return witnesses(nodes, r.ID()) == 1 }, 10*time.Second, 10*time.Millisecond)
	fn.Isolate(nodes[0].addr)
	time.Sleep(3 * time.Second) // two leases
	assert.False(t, r.Fenced(), "a room of a group of two runs unfenced")
	_, taken := nodes[1].reg.Get(r.ID())
	assert.False(t, taken, "nor is it taken over: a cut link looks like a death (FAILOVER.md)")
}
