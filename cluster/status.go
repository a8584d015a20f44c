package cluster

import (
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
	return st
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
