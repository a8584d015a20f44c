package main

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tickroom/tickroom/netcode/client"
	"github.com/tickroom/tickroom/netcode/netcodetest"
	"github.com/tickroom/tickroom/netcode/wire"
	"github.com/tickroom/tickroom/sim"
)

var gossipRE = regexp.MustCompile(`msg="cluster gossip started".* gossip=(\S+)`)

// gossipAddr returns the gossip address a node logged.
func (n *node) gossipAddr(t *testing.T) string {
	t.Helper()
	var addr string
	require.Eventually(t, func() bool {
		m := gossipRE.FindStringSubmatch(n.logs())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	}, 5*time.Second, 10*time.Millisecond, "the node logs its gossip address")
	return addr
}

// clusterView is the part of GET /admin/cluster these tests read.
type clusterView struct {
	Members []struct {
		Name  string `json:"name"`
		State string `json:"state"`
		Ready bool   `json:"ready"`
	} `json:"members"`
	Directory struct {
		Rooms int `json:"rooms"`
	} `json:"directory"`
	Placement []struct {
		Name    string `json:"name"`
		Rooms   int    `json:"rooms"`
		Players int    `json:"players"`
	} `json:"placement"`
	Routing struct {
		Redirects uint64 `json:"redirects"`
		Proxied   uint64 `json:"proxied"`
	} `json:"routing"`
}

func (n *node) cluster(t *testing.T) clusterView {
	t.Helper()
	var v clusterView
	resp, err := http.Get(n.adminURL + "/admin/cluster")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
	return v
}

// startCluster starts three tickroom serve processes on 127.0.0.1 that
// join through the first; the last runs no rooms (--max-rooms 0), so every
// player it takes is routed to the others.
func startThreeNodes(t *testing.T, bin, route string) []*node {
	t.Helper()
	key := "TICKROOM_CLUSTER_KEY=000102030405060708090a0b0c0d0e0f"
	n1 := startNode(t, bin, []string{key}, "--node-name", "n1", "--gossip-listen", "127.0.0.1:0")
	seed := n1.gossipAddr(t)
	n2 := startNode(t, bin, []string{key}, "--node-name", "n2", "--gossip-listen", "127.0.0.1:0", "--join", seed)
	n3 := startNode(t, bin, []string{key}, "--node-name", "n3", "--gossip-listen", "127.0.0.1:0", "--join", seed, "--max-rooms", "0", "--route", route)
	nodes := []*node{n1, n2, n3}
	for _, n := range nodes {
		require.Eventually(t, func() bool {
			v := n.cluster(t)
			ready := 0
			for _, m := range v.Members {
				if m.State == "alive" && m.Ready {
					ready++
				}
			}
			return ready == 3
		}, 15*time.Second, 50*time.Millisecond, "every node sees three ready members; logs:\n%s", n.logs())
	}
	return nodes
}

func TestBotsThroughANodeThatHostsNoRooms(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three servers and a bot run")
	}
	bin := buildBinary(t)
	for _, route := range []string{"redirect", "proxy"} {
		t.Run(route, func(t *testing.T) { botsThroughARouter(t, bin, route) })
	}
}

// botsThroughARouter runs bots through a node that hosts no rooms and
// routes its players by route.
func botsThroughARouter(t *testing.T, bin, route string) {
	nodes := startThreeNodes(t, bin, route)
	report := filepath.Join(t.TempDir(), "report.json")
	out, err := exec.Command(bin, "bots", "--url", nodes[2].url, "--players", "48", "--room-size", "8", "--ramp", "24",
		"--duration", "6s", "--json", report, "--max-errors", "0", "--max-drops", "0",
		"--min-snapshot-rate", "50").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Regexp(t, `bots joined +48 of 48`, string(out))

	var rep struct {
		Joined              int     `json:"joined"`
		SnapshotsPerPlayerS float64 `json:"snapshots_per_player_s"`
		Errors              uint64  `json:"errors"`
	}
	b, err := os.ReadFile(report)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &rep))
	assert.Equal(t, 48, rep.Joined)
	assert.Zero(t, rep.Errors)
	assert.InDelta(t, 60, rep.SnapshotsPerPlayerS, 6, "about 60 snapshots a second through the redirect")

	// The routing node hosted nothing; the others hosted every room, and
	// every node's directory says so.
	hosts := map[string]int{}
	for _, p := range nodes[2].cluster(t).Placement {
		hosts[p.Name] += p.Rooms
	}
	assert.Zero(t, hosts["n3"], "the node with --max-rooms 0 hosts no room")
	// Joins came slower than the directory spreads (--ramp), so placement
	// saw the load and spread the rooms.
	assert.Positive(t, hosts["n1"], "n1 hosts rooms")
	assert.Positive(t, hosts["n2"], "n2 hosts rooms")
	t.Logf("rooms per node after the run: %v", hosts)
	routing := nodes[2].cluster(t).Routing
	if route == "proxy" {
		assert.Equal(t, uint64(48), routing.Proxied, "every player relayed")
		assert.Zero(t, routing.Redirects)
	} else {
		assert.Equal(t, uint64(48), routing.Redirects, "every player redirected")
		assert.Zero(t, routing.Proxied)
	}
}

// TestConcurrentJoinOrCreatesThroughEveryNode: players joining at once
// through all three nodes fill rooms before creating them, cluster-wide:
// at most one room per node more than the seats need.
func TestConcurrentJoinOrCreatesThroughEveryNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three servers")
	}
	bin := buildBinary(t)
	key := "TICKROOM_CLUSTER_KEY=000102030405060708090a0b0c0d0e0f"
	n1 := startNode(t, bin, []string{key}, "--node-name", "n1", "--gossip-listen", "127.0.0.1:0")
	seed := n1.gossipAddr(t)
	nodes := []*node{n1,
		startNode(t, bin, []string{key}, "--node-name", "n2", "--gossip-listen", "127.0.0.1:0", "--join", seed),
		startNode(t, bin, []string{key}, "--node-name", "n3", "--gossip-listen", "127.0.0.1:0", "--join", seed),
	}
	for _, n := range nodes {
		require.Eventually(t, func() bool {
			ready := 0
			for _, m := range n.cluster(t).Members {
				if m.State == "alive" && m.Ready {
					ready++
				}
			}
			return ready == 3
		}, 15*time.Second, 50*time.Millisecond)
	}
	const players, size = 60, 4
	var wg sync.WaitGroup
	clients := make([]*client.Client, players)
	errs := make([]error, players)
	start := make(chan struct{})
	for i := range players {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := client.Dial(t.Context(), nodes[i%3].url, client.DefaultConfig())
			if err != nil {
				errs[i] = err
				return
			}
			clients[i] = c
			<-start
			_, errs[i] = c.Join(t.Context(), client.JoinOptions{Mode: sim.ArenaMode, MaxPlayers: size})
		}()
	}
	time.Sleep(200 * time.Millisecond) // the dials are done; the joins go at once
	close(start)
	wg.Wait()
	for i, c := range clients {
		require.NoError(t, errs[i], "player %d", i)
		defer c.Close()
	}
	rooms := 0
	require.Eventually(t, func() bool {
		rooms = 0
		seated := 0
		for _, p := range nodes[0].cluster(t).Placement {
			rooms += p.Rooms
			seated += p.Players
		}
		return seated == players
	}, 5*time.Second, 50*time.Millisecond, "the directory counts every player")
	need := players / size
	t.Logf("%d players in rooms of %d: %d rooms (%d needed)", players, size, rooms, need)
	assert.LessOrEqual(t, rooms, need+len(nodes), "at most one room too many per node")
	assert.GreaterOrEqual(t, rooms, need)
}

// TestResumeThroughAnyNode: a reconnect token given on one node is routed
// to the room's host from any other node, never answered as a lost seat,
// and a token for no room anywhere is a lost seat everywhere.
func TestResumeThroughAnyNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three servers")
	}
	bin := buildBinary(t)
	nodes := startThreeNodes(t, bin, "redirect")
	c, err := client.Dial(t.Context(), nodes[2].url, client.DefaultConfig())
	require.NoError(t, err)
	defer c.Close()
	seat, err := c.Join(t.Context(), client.JoinOptions{Mode: sim.ArenaMode})
	require.NoError(t, err)
	host := ""
	require.Eventually(t, func() bool {
		for _, p := range nodes[2].cluster(t).Placement {
			if p.Rooms > 0 {
				host = p.Name
			}
		}
		return host != ""
	}, 5*time.Second, 20*time.Millisecond, "the directory knows the room's host")

	for i, n := range nodes {
		require.Eventually(t, func() bool {
			rc := netcodetest.DialHello(t, n.url)
			rc.Send(rc.Enc.Join(wire.Join{ReqID: 7, Token: seat.Token}))
			m := rc.Next(true)
			switch m.Type {
			case wire.TypeRedirect:
				return m.Redirect.ReqID == 7 && m.Redirect.Node == host
			case wire.TypeJoined: // n is the host: the seat is resumed here
				return m.Joined.Resumed && m.Joined.RoomID == seat.RoomID
			}
			t.Logf("node %d answered a resume with %+v", i+1, m)
			return false
		}, 5*time.Second, 50*time.Millisecond, "node %d routes the resume to %s", i+1, host)
	}
	rc := netcodetest.DialHello(t, nodes[1].url)
	rc.Send(rc.Enc.Join(wire.Join{ReqID: 8, Token: "000000000000.nosuchseat"}))
	assert.Equal(t, wire.CodeBadToken, rc.ExpectError().Code, "a token for no room anywhere is a lost seat")
}
