package cluster

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/tickroom/tickroom/rooms/admin"
)

// This file holds what the admin listener shows of the cluster: Node
// implements admin.Cluster.

// ClusterStatus implements admin.Cluster.
func (n *Node) ClusterStatus() admin.ClusterStatus {
	members := n.Members()
	st := admin.ClusterStatus{Self: n.name, Members: make([]admin.ClusterMember, 0, len(members))}
	names := make(map[string]string, len(members))
	for _, m := range members {
		names[m.ID] = m.Meta.Name
		st.Members = append(st.Members, admin.ClusterMember{
			ID: m.ID, Name: m.Meta.Name, State: m.State.String(), Self: m.Self, Gossip: m.Addr,
			GameURL: m.Meta.GameURL, AdminURL: m.Meta.AdminURL, Ready: m.Meta.Ready, Draining: m.Meta.Draining,
			Rooms: m.Meta.Rooms, Players: m.Meta.Players, Capacity: m.Meta.Capacity,
			Since: m.Since.UTC().Format(time.RFC3339),
		})
	}
	live, tombs := n.dir.size()
	lag := n.dir.lagSummary()
	st.Directory = admin.DirectoryStatus{
		Rooms: live, Tombstones: tombs, LagSamples: lag.Samples,
		LagP50Ms: ms(lag.P50), LagP99Ms: ms(lag.P99), LagMaxMs: ms(lag.Max),
	}
	byHost := make(map[string]*admin.NodePlacement)
	n.dir.live(func(e *Entry) {
		p := byHost[e.Host]
		if p == nil {
			p = &admin.NodePlacement{Node: e.Host, Name: names[e.Host], RoomIDs: []string{}}
			byHost[e.Host] = p
		}
		p.Rooms++
		p.Players += e.Players
		if len(p.RoomIDs) < 100 {
			p.RoomIDs = append(p.RoomIDs, e.Room)
		}
	})
	for _, p := range byHost {
		slices.Sort(p.RoomIDs)
		st.Placement = append(st.Placement, *p)
	}
	slices.SortFunc(st.Placement, func(a, b admin.NodePlacement) int {
		if a.Node < b.Node {
			return -1
		}
		return 1
	})
	if st.Placement == nil {
		st.Placement = []admin.NodePlacement{}
	}
	s := &n.stats
	st.Gossip = admin.GossipStatus{
		BytesIn: s.BytesIn.Load(), BytesOut: s.BytesOut.Load(),
		PacketsIn: s.PacketsIn.Load(), PacketsOut: s.PacketsOut.Load(), Dropped: s.Dropped.Load(),
	}
	st.Routing = admin.RoutingStatus{Redirects: n.reg.Redirects(), Proxied: n.reg.Relayed()}
	p := &n.placement
	st.Decisions = admin.PlacementCounter{ToFreeSeat: p.ToFreeSeat.Load(), ToNewRoom: p.ToNewRoom.Load(), Local: p.Local.Load()}
	st.Ownership = n.ownershipStatus()
	return st
}

func (n *Node) ownershipStatus() admin.OwnershipStatus {
	o := n.own
	if o == nil {
		reason := "replication is off (--replicate=false)"
		if n.cfg.Replicate {
			reason = "no cluster key: checkpoints carry reconnect tokens and are never sent in the clear"
		}
		return admin.OwnershipStatus{Reason: reason, Draining: n.draining.Load()}
	}
	st := admin.OwnershipStatus{Enabled: true, Draining: n.draining.Load()}
	now := time.Now().UnixNano()
	o.mu.Lock()
	st.Hosted, st.Witnessed, st.WitnessBytes = len(o.hosted), len(o.records), o.recBytes
	ids := make([]string, 0, len(o.hosted))
	for id := range o.hosted {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for i, id := range ids {
		h := o.hosted[id]
		age := -1.0
		if at := h.cpAt.Load(); at != 0 {
			age = ms(time.Duration(now - at))
			if len(h.group) > 1 {
				st.MaxCheckpointAgeMs = max(st.MaxCheckpointAgeMs, age)
			}
		}
		if i < 100 {
			st.Rooms = append(st.Rooms, admin.RoomOwnership{ID: id, Epoch: h.room.Epoch(), Witnesses: slices.Clone(h.group[1:]),
				CheckpointAgeMs: age, Fenced: h.room.Fenced(), Frozen: h.room.Frozen()})
		}
	}
	o.mu.Unlock()
	s := &o.stats
	st.CheckpointsSent, st.CheckpointBytesSent = s.CheckpointsSent.Load(), s.CheckpointBytesSent.Load()
	st.CheckpointsStored, st.CheckpointsRefused = s.CheckpointsStored.Load(), s.CheckpointsRefused.Load()
	st.Failovers, st.FailoverFailures = s.Failovers.Load(), s.FailoverFailures.Load()
	st.HandOffs, st.HandOffFailures, st.HandOffsReceived = s.HandOffs.Load(), s.HandOffFailures.Load(), s.HandOffsReceived.Load()
	st.Fenced, st.Rewitnessed = s.Fenced.Load(), s.Rewitnessed.Load()
	st.FreezeP50Ms, st.FreezeP99Ms, st.FreezeMaxMs = ms(s.Freeze.Quantile(0.5)), ms(s.Freeze.Quantile(0.99)), ms(s.Freeze.Max())
	return st
}

// MoveRoom implements admin.Cluster.
func (n *Node) MoveRoom(ctx context.Context, roomID, to string) (admin.RoomMove, error) {
	res, err := n.Move(ctx, roomID, to)
	switch {
	case err == nil:
		return admin.RoomMove{Kind: "handoff", Room: res.Room, From: n.name, To: res.ToID, Epoch: res.Epoch,
			Tick: res.Tick, FreezeMs: ms(res.Freeze), TimeMs: time.Now().UnixMilli()}, nil
	case errors.Is(err, ErrNoOwnership):
		return admin.RoomMove{}, &admin.MoveError{Status: http.StatusConflict, Code: "not_replicated", Message: err.Error()}
	case errors.Is(err, ErrRoomNotHere):
		return admin.RoomMove{}, &admin.MoveError{Status: http.StatusNotFound, Code: "room_not_found", Message: err.Error()}
	case errors.Is(err, ErrNoTarget):
		return admin.RoomMove{}, &admin.MoveError{Status: http.StatusConflict, Code: "no_target", Message: err.Error()}
	}
	return admin.RoomMove{}, &admin.MoveError{Status: http.StatusBadGateway, Code: "move_failed", Message: err.Error()}
}

// RequestDrain implements admin.Cluster: DrainRequested fires, and the
// process (cmd) drains and exits.
func (n *Node) RequestDrain() error {
	if n.own == nil {
		return &admin.MoveError{Status: http.StatusConflict, Code: "not_replicated", Message: ErrNoOwnership.Error() + "; stop the node with SIGTERM"}
	}
	n.drainOnce.Do(func() { close(n.drainReq) })
	return nil
}

// DrainRequested is closed when an operator asked the node to drain
// (POST /admin/drain).
func (n *Node) DrainRequested() <-chan struct{} { return n.drainReq }

// Replicating reports whether the node checkpoints and hands off its
// rooms (it has a cluster key and replication is on).
func (n *Node) Replicating() bool { return n.own != nil }

// RecentRoomMoves implements admin.Cluster.
func (n *Node) RecentRoomMoves() []admin.RoomMove {
	if n.own == nil {
		return nil
	}
	return n.own.recentMoves()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// PlaceRoom implements admin.Cluster: a room an operator creates goes
// where a join-or-create of its mode would create one.
func (n *Node) PlaceRoom(mode string, size int) (adminURL, node string, ok bool) {
	best := n.placeNew(mode, size)
	if best == nil || best.self {
		return "", "", false
	}
	m, _ := n.member(best.id)
	return m.Meta.AdminURL, best.name, true
}
