package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/tickroom/tickroom/rooms"
)

// This file holds what the admin listener shows of the node's cluster.
// admin does not import the cluster package: it declares Cluster, the
// cluster implements it, and cmd wires it with SetCluster.

// Cluster is the node's cluster as operators see it.
//
// The admin listener calls its methods from its request goroutines and from
// the metrics scrape, concurrently: they must be safe for concurrent use and
// answer from memory, without waiting on peers. The values they return
// belong to the caller.
type Cluster interface {
	// ClusterStatus returns the members, this node's directory and the
	// placement of rooms, as this node sees them.
	ClusterStatus() ClusterStatus
	// PlaceRoom says where a room created through the admin API goes:
	// ok false for this node, else the admin URL of the node that should
	// create it.
	PlaceRoom(mode string, size int) (adminURL, node string, ok bool)
	// MoveRoom hands a room this node runs to the node named to (a human
	// or gossip name; empty: the cluster chooses) and waits until it runs
	// there, or fails and runs on here, or ctx ends. Its errors are
	// *MoveError.
	MoveRoom(ctx context.Context, roomID, to string) (RoomMove, error)
	// RequestDrain starts draining the node: it takes no new rooms, hands
	// its rooms to other nodes and then exits. It returns at once; an
	// error (a *MoveError) says the node cannot drain that way.
	RequestDrain() error
	// RecentRoomMoves returns the latest failovers and hand-offs this
	// node took part in, oldest first.
	RecentRoomMoves() []RoomMove
}

// RoomMove is one room changing hosts.
type RoomMove struct {
	Kind     string  `json:"kind"` // failover (restored here from a checkpoint), handoff (sent from here), received (taken here)
	Room     string  `json:"room"`
	From     string  `json:"from,omitempty"` // gossip names
	To       string  `json:"to,omitempty"`
	Epoch    uint64  `json:"epoch"`          // the room's epoch on its new host
	Tick     uint64  `json:"tick,omitempty"` // handoff: the last tick it ran here
	FreezeMs float64 `json:"freezeMs,omitempty"`
	TimeMs   int64   `json:"t"`
}

// MoveError is a failed MoveRoom or RequestDrain, with the status and
// error code the admin API answers.
type MoveError struct {
	Status  int
	Code    string
	Message string
}

func (e *MoveError) Error() string { return e.Message }

// ClusterStatus is GET /admin/cluster's body.
type ClusterStatus struct {
	Self      string           `json:"self"` // this node's gossip name
	Members   []ClusterMember  `json:"members"`
	Directory DirectoryStatus  `json:"directory"`
	Placement []NodePlacement  `json:"placement"` // rooms per node, by this node's directory
	Gossip    GossipStatus     `json:"gossip"`
	Routing   RoutingStatus    `json:"routing"`
	Decisions PlacementCounter `json:"placementDecisions"`
	Ownership OwnershipStatus  `json:"ownership"`
}

// OwnershipStatus is what this node does to keep rooms alive beyond it:
// checkpoints, witnesses, failovers and hand-offs.
type OwnershipStatus struct {
	Enabled  bool   `json:"enabled"`
	Reason   string `json:"reason,omitempty"` // why not, when disabled
	Draining bool   `json:"draining"`
	Hosted   int    `json:"hostedRooms"`
	// Witnessed is how many other hosts' rooms this node keeps a copy of,
	// in WitnessBytes of checkpoints.
	Witnessed    int             `json:"witnessedRooms"`
	WitnessBytes int             `json:"witnessBytes"`
	Rooms        []RoomOwnership `json:"rooms"` // this node's rooms, at most 100
	// MaxCheckpointAgeMs is the oldest latest-checkpoint among this node's
	// replicated rooms: the most game time a failover would lose now.
	MaxCheckpointAgeMs  float64 `json:"maxCheckpointAgeMs"`
	CheckpointsSent     uint64  `json:"checkpointsSent"`
	CheckpointBytesSent uint64  `json:"checkpointBytesSent"`
	CheckpointsStored   uint64  `json:"checkpointsStored"`
	CheckpointsRefused  uint64  `json:"checkpointsRefused"`
	Failovers           uint64  `json:"failovers"`
	FailoverFailures    uint64  `json:"failoverFailures"`
	HandOffs            uint64  `json:"handOffs"`
	HandOffFailures     uint64  `json:"handOffFailures"`
	HandOffsReceived    uint64  `json:"handOffsReceived"`
	Fenced              uint64  `json:"fenced"`
	Rewitnessed         uint64  `json:"rewitnessed"`
	FreezeP50Ms         float64 `json:"freezeP50Ms"`
	FreezeP99Ms         float64 `json:"freezeP99Ms"`
	FreezeMaxMs         float64 `json:"freezeMaxMs"`
}

// RoomOwnership is one of this node's rooms: its epoch, where its
// checkpoints go and how old the latest is.
type RoomOwnership struct {
	ID              string   `json:"id"`
	Epoch           uint64   `json:"epoch"`
	Witnesses       []string `json:"witnesses"`       // gossip names; fewer than two: not failed over (FAILOVER.md)
	CheckpointAgeMs float64  `json:"checkpointAgeMs"` // -1: none delivered yet
	Fenced          bool     `json:"fenced"`
	Frozen          bool     `json:"frozen"`
}

// ClusterMember is one node.
type ClusterMember struct {
	ID       string `json:"id"`    // gossip name, unique per process start
	Name     string `json:"name"`  // human name
	State    string `json:"state"` // alive, suspect, dead or left
	Self     bool   `json:"self"`
	Gossip   string `json:"gossipAddr"`
	GameURL  string `json:"gameUrl"`
	AdminURL string `json:"adminUrl,omitempty"`
	Ready    bool   `json:"ready"`
	Draining bool   `json:"draining"`
	Rooms    int    `json:"rooms"`
	Players  int    `json:"players"`
	Capacity int    `json:"capacity"` // rooms it may still create
	Since    string `json:"since"`    // RFC 3339: when this node saw the state begin
}

// DirectoryStatus is this node's copy of the room directory.
type DirectoryStatus struct {
	Rooms      int `json:"rooms"`      // live entries
	Tombstones int `json:"tombstones"` // closed rooms remembered for a while
	// Convergence lag: from a host's change to this node, over the recent
	// entries from other nodes (clocks of the nodes must agree).
	LagSamples int     `json:"lagSamples"`
	LagP50Ms   float64 `json:"lagP50Ms"`
	LagP99Ms   float64 `json:"lagP99Ms"`
	LagMaxMs   float64 `json:"lagMaxMs"`
}

// NodePlacement is how many rooms and players the directory puts on one
// node.
type NodePlacement struct {
	Node    string   `json:"node"` // gossip name
	Name    string   `json:"name"`
	Rooms   int      `json:"rooms"`
	Players int      `json:"players"`
	RoomIDs []string `json:"roomIds"` // at most 100
}

// GossipStatus counts this node's gossip traffic.
type GossipStatus struct {
	BytesIn    uint64 `json:"bytesIn"`
	BytesOut   uint64 `json:"bytesOut"`
	PacketsIn  uint64 `json:"packetsIn"`
	PacketsOut uint64 `json:"packetsOut"`
	Dropped    uint64 `json:"dropped"` // peers' messages that could not be decoded
}

// RoutingStatus counts joins this node sent elsewhere.
type RoutingStatus struct {
	Redirects uint64 `json:"redirects"`
	Proxied   uint64 `json:"proxied"`
}

// PlacementCounter counts this node's join-or-create placements.
type PlacementCounter struct {
	ToFreeSeat uint64 `json:"toFreeSeat"`
	ToNewRoom  uint64 `json:"toNewRoom"`
	Local      uint64 `json:"local"`
}

// clusterSlot holds the Cluster, set once before serving.
type clusterSlot struct{ p atomic.Pointer[Cluster] }

func (c *clusterSlot) load() Cluster {
	if p := c.p.Load(); p != nil {
		return *p
	}
	return nil
}

// SetCluster makes the listener show c at /admin/cluster, export its
// metrics and place rooms it creates through c.
func (s *Server) SetCluster(c Cluster) { s.cluster.p.Store(&c) }

func (s *Server) clusterStatus(w http.ResponseWriter, r *http.Request) {
	c := s.cluster.load()
	if c == nil {
		writeError(w, http.StatusNotFound, "no_cluster", "this node runs alone: start it with --gossip-listen to form a cluster")
		return
	}
	writeJSON(w, http.StatusOK, clusterBody(c.ClusterStatus()))
}

// clusterBody returns st with its lists never null, as the document
// promises, whatever the Cluster left nil.
func clusterBody(st ClusterStatus) ClusterStatus {
	if st.Members == nil {
		st.Members = []ClusterMember{}
	}
	if st.Placement == nil {
		st.Placement = []NodePlacement{}
	}
	for i := range st.Placement {
		if st.Placement[i].RoomIDs == nil {
			st.Placement[i].RoomIDs = []string{}
		}
	}
	if st.Ownership.Rooms == nil {
		st.Ownership.Rooms = []RoomOwnership{}
	}
	for i := range st.Ownership.Rooms {
		if st.Ownership.Rooms[i].Witnesses == nil {
			st.Ownership.Rooms[i].Witnesses = []string{}
		}
	}
	return st
}

// moveRoom is POST /admin/rooms/{id}/move?to=NODE: a live hand-off.
func (s *Server) moveRoom(w http.ResponseWriter, r *http.Request) {
	c := s.cluster.load()
	if c == nil {
		writeError(w, http.StatusNotFound, "no_cluster", "this node runs alone: a room can move only within a cluster")
		return
	}
	id := r.PathValue("id")
	if _, ok := s.reg.Get(id); !ok {
		writeError(w, http.StatusNotFound, "room_not_found", "no room "+id+" runs on this node")
		return
	}
	mv, err := c.MoveRoom(r.Context(), id, r.URL.Query().Get("to"))
	if err != nil {
		writeMoveError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, mv)
}

// drain is POST /admin/drain: the node hands its rooms away and exits.
func (s *Server) drain(w http.ResponseWriter, r *http.Request) {
	c := s.cluster.load()
	if c == nil {
		writeError(w, http.StatusNotFound, "no_cluster", "this node runs alone: there is nowhere to hand its rooms; stop it with SIGTERM")
		return
	}
	if err := c.RequestDrain(); err != nil {
		writeMoveError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"draining": true, "rooms": len(s.reg.List())})
}

func writeMoveError(w http.ResponseWriter, err error) {
	var me *MoveError
	if !errors.As(err, &me) {
		writeError(w, http.StatusBadGateway, "move_failed", err.Error())
		return
	}
	// The codes, spelt out, are the ones openapi.json documents.
	switch me.Code {
	case "not_replicated":
		writeError(w, http.StatusConflict, "not_replicated", me.Message)
	case "no_target":
		writeError(w, http.StatusConflict, "no_target", me.Message)
	case "room_not_found":
		writeError(w, http.StatusNotFound, "room_not_found", me.Message)
	default:
		writeError(w, http.StatusBadGateway, "move_failed", me.Message)
	}
}

// placeElsewhere answers a room creation that the cluster places on
// another node with a 307 to that node's admin API, which a client
// repeats with the same method and body (curl -L, Go's http.Client).
// A request this node would refuse is refused here, before the cluster
// counts a placement for it.
func (s *Server) placeElsewhere(w http.ResponseWriter, r *http.Request, mode string, size int) bool {
	c := s.cluster.load()
	if c == nil || r.URL.Query().Get("placed") != "" {
		return false
	}
	if err := s.creatable(mode, size); err != nil {
		s.roomError(w, err)
		return true
	}
	adminURL, node, ok := c.PlaceRoom(mode, size)
	if !ok {
		return false
	}
	if adminURL == "" {
		writeError(w, http.StatusServiceUnavailable, "no_admin_url", "the room is placed on node "+node+", which has no admin URL; retry, or create it there")
		return true
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		writeError(w, http.StatusBadGateway, "bad_admin_url", "node "+node+" gossips an admin URL that does not parse")
		return true
	}
	u.Path = "/admin/rooms"
	u.RawQuery = "placed=1" // the target creates it, whatever its own view
	w.Header().Set("Location", u.String())
	writeError(w, http.StatusTemporaryRedirect, "placed_elsewhere", "the cluster places this room on node "+node)
	return true
}

// creatable checks a room's mode and size as the registry's Create would,
// with its errors.
func (s *Server) creatable(mode string, size int) error {
	cfg := s.reg.Config()
	if _, ok := cfg.Modes[mode]; !ok {
		return fmt.Errorf("%w: %q (this server runs %s)", rooms.ErrUnknownMode, mode, strings.Join(s.reg.Modes(), ", "))
	}
	if size < 0 || size > cfg.MaxRoomSize {
		return fmt.Errorf("%w: MaxPlayers %d must be in 0..%d", rooms.ErrInvalidOptions, size, cfg.MaxRoomSize)
	}
	return nil
}
