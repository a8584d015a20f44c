package admin_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tickroom/tickroom/rooms/admin"
)

// fakeCluster is an admin.Cluster whose status and placements the test sets.
// It is safe for concurrent use, as the listener calls it from its request
// goroutines and the metrics scrape.
type fakeCluster struct {
	mu       sync.Mutex
	status   admin.ClusterStatus
	place    fakePlacement // what PlaceRoom answers
	asked    []fakeAsk     // PlaceRoom's calls, oldest first
	statuses int           // ClusterStatus's calls
	moves    []string      // MoveRoom's calls, "room>to"
	moveErr  error         // what MoveRoom fails with, if set
	drains   int           // RequestDrain's calls
	drainErr error         // what RequestDrain fails with, if set
}

// fakePlacement is a PlaceRoom answer.
type fakePlacement struct {
	adminURL, node string
	ok             bool // false: this node creates the room
}

// fakeAsk is a PlaceRoom call.
type fakeAsk struct {
	mode string
	size int
}

func newFakeCluster(status admin.ClusterStatus) *fakeCluster {
	return &fakeCluster{status: status}
}

// ClusterStatus returns a copy of the status, which the caller may change.
func (f *fakeCluster) ClusterStatus() admin.ClusterStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statuses++
	st := f.status
	st.Members = slices.Clone(st.Members)
	st.Placement = slices.Clone(st.Placement)
	for i := range st.Placement {
		st.Placement[i].RoomIDs = slices.Clone(st.Placement[i].RoomIDs)
	}
	return st
}

func (f *fakeCluster) PlaceRoom(mode string, size int) (adminURL, node string, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, fakeAsk{mode, size})
	return f.place.adminURL, f.place.node, f.place.ok
}

// MoveRoom records the move and answers what moveErr says.
func (f *fakeCluster) MoveRoom(_ context.Context, roomID, to string) (admin.RoomMove, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.moves = append(f.moves, roomID+">"+to)
	if f.moveErr != nil {
		return admin.RoomMove{}, f.moveErr
	}
	return admin.RoomMove{Kind: "handoff", Room: roomID, To: to, Epoch: 2}, nil
}

func (f *fakeCluster) RequestDrain() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drains++
	return f.drainErr
}

func (f *fakeCluster) RecentRoomMoves() []admin.RoomMove { return nil }

func (f *fakeCluster) setStatus(st admin.ClusterStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status = st
}

func (f *fakeCluster) setPlacement(p fakePlacement) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.place = p
}

// placements returns PlaceRoom's calls so far.
func (f *fakeCluster) placements() []fakeAsk {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.asked)
}

func (f *fakeCluster) statusCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.statuses
}

// sampleClusterStatus is a three-node cluster seen from node-a: node-b is
// suspect and draining and gossips no admin URL, node-c is dead; the
// directory places rooms on node-a and node-b.
func sampleClusterStatus() admin.ClusterStatus {
	return admin.ClusterStatus{
		Self: "node-a-1",
		Members: []admin.ClusterMember{
			{ID: "node-a-1", Name: "node-a", State: "alive", Self: true, Gossip: "127.0.0.1:7946",
				GameURL: "ws://127.0.0.1:8080/ws", AdminURL: "http://127.0.0.1:8081", Ready: true,
				Rooms: 2, Players: 3, Capacity: 98, Since: "2026-01-02T03:04:05Z"},
			{ID: "node-b-1", Name: "node-b", State: "suspect", Gossip: "127.0.0.2:7946",
				GameURL: "ws://127.0.0.2:8080/ws", Ready: true, Draining: true,
				Rooms: 1, Players: 4, Capacity: 0, Since: "2026-01-02T03:05:00Z"},
			{ID: "node-c-1", Name: "node-c", State: "dead", Gossip: "127.0.0.3:7946",
				GameURL: "ws://127.0.0.3:8080/ws", AdminURL: "http://127.0.0.3:8081",
				Since: "2026-01-02T03:06:00Z"},
		},
		Directory: admin.DirectoryStatus{Rooms: 3, Tombstones: 2, LagSamples: 40, LagP50Ms: 12.5, LagP99Ms: 80, LagMaxMs: 250},
		Placement: []admin.NodePlacement{
			{Node: "node-a-1", Name: "node-a", Rooms: 2, Players: 3, RoomIDs: []string{"aaaaaaaaaaa1", "aaaaaaaaaaa2"}},
			{Node: "node-b-1", Name: "node-b", Rooms: 1, Players: 4, RoomIDs: []string{"bbbbbbbbbbb1"}},
		},
		Gossip:    admin.GossipStatus{BytesIn: 123456, BytesOut: 65432, PacketsIn: 900, PacketsOut: 800, Dropped: 3},
		Routing:   admin.RoutingStatus{Redirects: 17, Proxied: 2},
		Decisions: admin.PlacementCounter{ToFreeSeat: 11, ToNewRoom: 5, Local: 9},
		Ownership: admin.OwnershipStatus{
			Enabled: true, Hosted: 1, Witnessed: 3, WitnessBytes: 4096, MaxCheckpointAgeMs: 420,
			Rooms:           []admin.RoomOwnership{{ID: "r1", Epoch: 2, Witnesses: []string{"node-b-1", "node-c-1"}, CheckpointAgeMs: 420}},
			CheckpointsSent: 40, CheckpointBytesSent: 80_000, Failovers: 1, HandOffs: 2, FreezeP50Ms: 12, FreezeP99Ms: 30, FreezeMaxMs: 31,
		},
	}
}

// POST /admin/rooms/{id}/move hands the room to the cluster's MoveRoom, and
// answers its errors with their status; POST /admin/drain asks the cluster
// to drain. Neither exists on a node that runs alone.
func TestMoveRoomAndDrain(t *testing.T) {
	t.Parallel()
	n := startNodeWith(t, nodeOptions{})
	id := n.createRoom(t, `{"mode":"arena"}`).ID

	r := n.call(t, "POST", "/admin/rooms/"+id+"/move?to=node-b", "", n.Token)
	require.Equal(t, http.StatusNotFound, r.status, string(r.body))
	assert.Equal(t, "no_cluster", r.code(t))
	r = n.call(t, "POST", "/admin/drain", "", n.Token)
	require.Equal(t, http.StatusNotFound, r.status, string(r.body))

	fake := newFakeCluster(sampleClusterStatus())
	n.Admin.SetCluster(fake)
	r = n.call(t, "POST", "/admin/rooms/"+id+"/move?to=node-b", "", n.Token)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	mv := fromJSON[admin.RoomMove](t, r.body)
	assert.Equal(t, admin.RoomMove{Kind: "handoff", Room: id, To: "node-b", Epoch: 2}, mv)

	r = n.call(t, "POST", "/admin/rooms/nosuch/move", "", n.Token)
	require.Equal(t, http.StatusNotFound, r.status, string(r.body))
	assert.Equal(t, "room_not_found", r.code(t))

	fake.mu.Lock()
	fake.moveErr = &admin.MoveError{Status: http.StatusConflict, Code: "no_target", Message: "no node can take the room"}
	fake.mu.Unlock()
	r = n.call(t, "POST", "/admin/rooms/"+id+"/move", "", n.Token)
	require.Equal(t, http.StatusConflict, r.status, string(r.body))
	assert.Equal(t, "no_target", r.code(t))
	assert.Equal(t, http.StatusUnauthorized, n.call(t, "POST", "/admin/rooms/"+id+"/move", "", "wrong").status)
	assert.Equal(t, http.StatusMethodNotAllowed, n.call(t, "GET", "/admin/rooms/"+id+"/move", "", n.Token).status)

	r = n.call(t, "POST", "/admin/drain", "", n.Token)
	require.Equal(t, http.StatusAccepted, r.status, string(r.body))
	fake.mu.Lock()
	assert.Equal(t, []string{id + ">node-b", id + ">"}, fake.moves)
	assert.Equal(t, 1, fake.drains)
	fake.mu.Unlock()
}

// ---- GET /admin/cluster ----

func TestClusterStatus(t *testing.T) {
	t.Parallel()
	n := startNodeWith(t, nodeOptions{})

	r := n.call(t, "GET", "/admin/cluster", "", n.Token)
	require.Equal(t, http.StatusNotFound, r.status, string(r.body))
	assert.Equal(t, "no_cluster", r.code(t))

	want := sampleClusterStatus()
	fake := newFakeCluster(want)
	n.Admin.SetCluster(fake)
	r = n.call(t, "GET", "/admin/cluster", "", n.Token)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	assert.Equal(t, "application/json", r.header.Get("Content-Type"))
	assert.Equal(t, want, fromJSON[admin.ClusterStatus](t, r.body))
	var raw struct {
		Members []map[string]any `json:"members"`
	}
	require.NoError(t, json.Unmarshal(r.body, &raw))
	assert.Contains(t, raw.Members[0], "adminUrl")
	assert.NotContains(t, raw.Members[1], "adminUrl", "a member without an admin URL has none in the JSON")

	// The token is checked before the cluster is asked.
	before := fake.statusCalls()
	for _, token := range []string{noToken, "wrong"} {
		r = n.call(t, "GET", "/admin/cluster", "", token)
		assert.Equal(t, http.StatusUnauthorized, r.status, "token %q", token)
		assert.Equal(t, "unauthorized", r.code(t))
		assert.NotContains(t, string(r.body), "node-a")
	}
	assert.Equal(t, before, fake.statusCalls())

	// A Cluster that leaves its lists nil still answers lists.
	fake.setStatus(admin.ClusterStatus{Self: "lonely", Placement: []admin.NodePlacement{{Node: "x"}}})
	r = n.call(t, "GET", "/admin/cluster", "", n.Token)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	var lists struct {
		Members   json.RawMessage `json:"members"`
		Placement []struct {
			RoomIDs json.RawMessage `json:"roomIds"`
		} `json:"placement"`
	}
	require.NoError(t, json.Unmarshal(r.body, &lists))
	assert.JSONEq(t, `[]`, string(lists.Members))
	require.Len(t, lists.Placement, 1)
	assert.JSONEq(t, `[]`, string(lists.Placement[0].RoomIDs))

	assert.Equal(t, http.StatusMethodNotAllowed, n.call(t, "POST", "/admin/cluster", "", n.Token).status)
}

// ---- POST /admin/rooms in a cluster ----

// A room the cluster places on another node is answered with a 307 to that
// node, which a client following redirects (as Go's does, with the body and,
// on the same host, the token) creates there. Nothing is created on the
// first node, and the second creates it without asking its own cluster.
func TestCreateRoomPlacedElsewhere(t *testing.T) {
	t.Parallel()
	a := startNodeWith(t, nodeOptions{})
	b := startNodeWith(t, nodeOptions{})
	onA, onB := newFakeCluster(sampleClusterStatus()), newFakeCluster(sampleClusterStatus())
	onA.setPlacement(fakePlacement{adminURL: b.AdminURL, node: "node-b", ok: true})
	onB.setPlacement(fakePlacement{adminURL: a.AdminURL, node: "node-a", ok: true}) // a view that differs
	a.Admin.SetCluster(onA)
	b.Admin.SetCluster(onB)

	body := `{"mode":"arena","max_players":4,"metadata":{"purpose":"placement"}}`
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Do(a.request(t, "POST", "/admin/rooms", body, a.Token))
	require.NoError(t, err)
	var moved errorJSON
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&moved))
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusTemporaryRedirect, resp.StatusCode)
	assert.Equal(t, b.AdminURL+"/admin/rooms?placed=1", resp.Header.Get("Location"))
	assert.Equal(t, "placed_elsewhere", moved.Error.Code)
	assert.Contains(t, moved.Error.Message, "node-b")
	assert.Equal(t, []fakeAsk{{"arena", 4}}, onA.placements())
	assert.Empty(t, a.Registry.List(), "a room placed elsewhere is not created here")
	assert.Empty(t, b.Registry.List(), "a redirect creates nothing by itself")

	// Followed, it creates the room on b.
	r := a.send(t, a.request(t, "POST", "/admin/rooms", body, a.Token))
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	room := fromJSON[roomJSON](t, r.body)
	assert.Equal(t, 4, room.MaxPlayers)
	assert.Equal(t, "/admin/rooms/"+room.ID, r.header.Get("Location"))
	assert.Empty(t, a.Registry.List())
	require.Len(t, b.Registry.List(), 1)
	assert.Equal(t, room.ID, b.Registry.List()[0].ID())
	assert.Equal(t, "placement", b.Registry.List()[0].Metadata()["purpose"])
	assert.Empty(t, onB.placements(), "placed=1 is created without asking the cluster")

	// A request this node would refuse is refused here, not placed.
	for _, c := range []struct{ body, code string }{
		{`{"mode":"arena","max_players":-1}`, "bad_request"},
		{`{"mode":"arena","max_players":257}`, "bad_request"},
		{`{"mode":"chess"}`, "unknown_mode"},
		{`{"mode":"arena","colour":"red"}`, "bad_request"},
	} {
		r = a.call(t, "POST", "/admin/rooms", c.body, a.Token)
		assert.Equal(t, http.StatusBadRequest, r.status, "%s: %s", c.body, r.body)
		assert.Equal(t, c.code, r.code(t), c.body)
	}
	assert.Len(t, onA.placements(), 2, "only the two valid requests asked the cluster")
}

// What POST /admin/rooms answers for each placement the cluster makes.
func TestCreateRoomPlacement(t *testing.T) {
	t.Parallel()
	const elsewhere = "http://127.0.0.9:8081"
	cases := []struct {
		name     string
		place    fakePlacement
		query    string
		status   int
		code     string // for errors
		location string // for 307
		asked    bool   // PlaceRoom is called
	}{
		{name: "here", place: fakePlacement{}, status: http.StatusCreated, asked: true},
		{name: "elsewhere", place: fakePlacement{adminURL: elsewhere, node: "node-z", ok: true},
			status: http.StatusTemporaryRedirect, code: "placed_elsewhere", location: elsewhere + "/admin/rooms?placed=1", asked: true},
		{name: "elsewhere with a trailing slash", place: fakePlacement{adminURL: elsewhere + "/", node: "node-z", ok: true},
			status: http.StatusTemporaryRedirect, code: "placed_elsewhere", location: elsewhere + "/admin/rooms?placed=1", asked: true},
		{name: "placed", place: fakePlacement{adminURL: elsewhere, node: "node-z", ok: true}, query: "?placed=1", status: http.StatusCreated},
		{name: "no admin URL", place: fakePlacement{node: "node-z", ok: true},
			status: http.StatusServiceUnavailable, code: "no_admin_url", asked: true},
		{name: "bad admin URL", place: fakePlacement{adminURL: "://no scheme", node: "node-z", ok: true},
			status: http.StatusBadGateway, code: "bad_admin_url", asked: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			n := startNodeWith(t, nodeOptions{})
			fake := newFakeCluster(sampleClusterStatus())
			fake.setPlacement(c.place)
			n.Admin.SetCluster(fake)
			noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := noFollow.Do(n.request(t, "POST", "/admin/rooms"+c.query, `{"mode":"arena","max_players":3}`, n.Token))
			require.NoError(t, err)
			var body json.RawMessage
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
			require.NoError(t, resp.Body.Close())
			require.Equal(t, c.status, resp.StatusCode, string(body))

			if c.asked {
				assert.Equal(t, []fakeAsk{{"arena", 3}}, fake.placements())
			} else {
				assert.Empty(t, fake.placements())
			}
			if c.status == http.StatusCreated {
				room := fromJSON[roomJSON](t, body)
				require.Len(t, n.Registry.List(), 1)
				assert.Equal(t, room.ID, n.Registry.List()[0].ID())
				return
			}
			assert.Empty(t, n.Registry.List(), "nothing is created")
			e := fromJSON[errorJSON](t, body)
			assert.Equal(t, c.code, e.Error.Code)
			assert.Contains(t, e.Error.Message, "node-z", "the message names the node")
			assert.Equal(t, c.location, resp.Header.Get("Location"))
		})
	}
}

// ---- Metrics ----

func TestClusterMetrics(t *testing.T) {
	t.Parallel()
	n := startNodeWith(t, nodeOptions{})
	r := n.call(t, "GET", "/metrics", "", n.Token)
	require.Equal(t, http.StatusOK, r.status)
	assert.NotContains(t, string(r.body), "tickroom_cluster_", "a node that runs alone has no cluster metrics")
	assert.Contains(t, string(r.body), "tickroom_rooms ")

	fake := newFakeCluster(sampleClusterStatus())
	n.Admin.SetCluster(fake)
	m := n.metrics(t)
	want := map[string]float64{
		`tickroom_cluster_members{state="alive"}`:                  1,
		`tickroom_cluster_members{state="suspect"}`:                1,
		`tickroom_cluster_members{state="dead"}`:                   1,
		`tickroom_cluster_members{state="left"}`:                   0,
		`tickroom_cluster_directory_rooms`:                         3,
		`tickroom_cluster_directory_tombstones`:                    2,
		`tickroom_cluster_directory_lag_samples`:                   40,
		`tickroom_cluster_directory_lag_seconds{quantile="0.5"}`:   0.0125,
		`tickroom_cluster_directory_lag_seconds{quantile="0.99"}`:  0.08,
		`tickroom_cluster_directory_lag_seconds{quantile="1"}`:     0.25,
		`tickroom_cluster_gossip_bytes_total{direction="in"}`:      123456,
		`tickroom_cluster_gossip_bytes_total{direction="out"}`:     65432,
		`tickroom_cluster_gossip_packets_total{direction="in"}`:    900,
		`tickroom_cluster_gossip_packets_total{direction="out"}`:   800,
		`tickroom_cluster_gossip_dropped_total`:                    3,
		`tickroom_cluster_redirects_total`:                         17,
		`tickroom_cluster_proxied_total`:                           2,
		`tickroom_cluster_placements_total{kind="free_seat"}`:      11,
		`tickroom_cluster_placements_total{kind="new_room"}`:       5,
		`tickroom_cluster_placements_local_total`:                  9,
		`tickroom_cluster_checkpoints_total{kind="sent"}`:          40,
		`tickroom_cluster_checkpoints_total{kind="stored"}`:        0,
		`tickroom_cluster_checkpoints_total{kind="refused"}`:       0,
		`tickroom_cluster_checkpoint_bytes_total`:                  80_000,
		`tickroom_cluster_checkpoint_age_max_seconds`:              0.42,
		`tickroom_cluster_witnessed_rooms`:                         3,
		`tickroom_cluster_failovers_total{result="ok"}`:            1,
		`tickroom_cluster_failovers_total{result="failed"}`:        0,
		`tickroom_cluster_handoffs_total{kind="sent"}`:             2,
		`tickroom_cluster_handoffs_total{kind="failed"}`:           0,
		`tickroom_cluster_handoffs_total{kind="received"}`:         0,
		`tickroom_cluster_fenced_rooms_total`:                      0,
		`tickroom_cluster_handoff_freeze_seconds{quantile="0.5"}`:  0.012,
		`tickroom_cluster_handoff_freeze_seconds{quantile="0.99"}`: 0.03,
		`tickroom_cluster_handoff_freeze_seconds{quantile="1"}`:    0.031,
	}
	for series, v := range want {
		assert.InDelta(t, v, m.get(t, series), 1e-9, series)
	}
	var cluster []string
	for series := range m {
		if strings.HasPrefix(series, "tickroom_cluster_") {
			cluster = append(cluster, series)
		}
	}
	assert.ElementsMatch(t, slices.Collect(maps.Keys(want)), cluster, "the cluster series are exactly these")

	// Read at each scrape: the next one sees the cluster change. Without lag
	// samples there are no quantiles (a lag of 0 would be a claim).
	st := sampleClusterStatus()
	st.Members = append(st.Members, admin.ClusterMember{ID: "node-d-1", State: "left", Since: "2026-01-02T03:07:00Z"})
	st.Directory = admin.DirectoryStatus{Rooms: 7}
	st.Gossip.BytesIn++
	fake.setStatus(st)
	m = n.metrics(t)
	assert.Equal(t, float64(1), m.get(t, `tickroom_cluster_members{state="left"}`))
	assert.Equal(t, float64(7), m.get(t, `tickroom_cluster_directory_rooms`))
	assert.Equal(t, float64(123457), m.get(t, `tickroom_cluster_gossip_bytes_total{direction="in"}`))
	assert.Zero(t, m.get(t, `tickroom_cluster_directory_lag_samples`))
	for _, q := range []string{"0.5", "0.99", "1"} {
		assert.NotContains(t, m, `tickroom_cluster_directory_lag_seconds{quantile="`+q+`"}`)
	}
}
