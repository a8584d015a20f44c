package cluster

import (
	"hash/fnv"
	"slices"
	"strconv"

	"github.com/tickroom/tickroom/rooms"
)

// This file holds placement (where a join-or-create goes) and lookup
// (where a room lives): Node's implementation of rooms.Router. Both read
// only what this node already knows, and never block.

// LocateRoom implements rooms.Router.
func (n *Node) LocateRoom(roomID string) rooms.Route {
	e, ok := n.dir.get(roomID)
	if !ok {
		return rooms.Route{}
	}
	if e.Host == n.name {
		if n.own != nil && n.own.wasReleased(roomID) {
			return rooms.Route{Moving: true} // handed on; its new entry is on its way
		}
		return rooms.Route{Local: true} // it closed a moment ago: the registry answers
	}
	m, ok := n.member(e.Host)
	if n.own != nil && ok && m.State != StateDead && m.State != StateLeft && n.own.leases.silentFor(e.Host) > 3*n.cfg.RenewInterval {
		// Its host stopped renewing: it is dead or cut off, and the room
		// is being taken over (or it lost the room).
		return rooms.Route{Moving: true}
	}
	if !ok || m.State != StateAlive || m.Meta.GameURL == "" {
		if n.own != nil && ok && !e.Closed {
			return rooms.Route{Moving: true} // a dead host's room: a witness takes it over
		}
		return rooms.Route{}
	}
	return rooms.Route{Node: m.Meta.Name, URL: m.Meta.GameURL, Relay: n.cfg.Relay}
}

// candidate is a node placement may choose.
type candidate struct {
	id, name, url string
	self          bool
	load          int // players plus rooms hosted, by the directory
	score         uint64
	freeRoom      int // fewest free seats of a fitting room; 0: none
}

// PlaceJoin implements rooms.Router: a join-or-create that this node has
// no free seat for goes to the node whose room of the mode is closest to
// full (to pack rooms), else to the node chosen to create one (choose).
// This node's own entries lag its registry, which the caller has asked
// already, so they count for load only.
func (n *Node) PlaceJoin(mode string, size int) rooms.Route {
	cands := n.candidates()
	if len(cands) == 0 {
		return rooms.Route{Local: true}
	}
	n.weigh(cands, mode, size)
	var best *candidate
	for i := range cands {
		c := &cands[i]
		if c.freeRoom == 0 || c.self {
			continue
		}
		if best == nil || c.freeRoom < best.freeRoom {
			best = c
		}
	}
	if best != nil {
		n.placement.ToFreeSeat.Add(1)
	} else {
		best = n.choose(cands, mode+"/"+strconv.Itoa(size))
		n.placement.ToNewRoom.Add(1)
	}
	if best.self {
		n.placement.Local.Add(1)
		return rooms.Route{Local: true}
	}
	return rooms.Route{Node: best.name, URL: best.url, Relay: n.cfg.Relay}
}

// weigh fills in each candidate's load and its fullest fitting room with
// a free seat, from the directory.
func (n *Node) weigh(cands []candidate, mode string, size int) {
	byID := make(map[string]*candidate, len(cands))
	for i := range cands {
		byID[cands[i].id] = &cands[i]
	}
	n.dir.live(func(e *Entry) {
		c := byID[e.Host]
		if c == nil {
			return
		}
		c.load += e.Players + 1 // an empty room costs a little too
		if !e.Private && e.Mode == mode && (size == 0 || e.MaxPlayers == size) {
			if free := e.FreeSeats(); free > 0 && (c.freeRoom == 0 || free < c.freeRoom) {
				c.freeRoom = free
			}
		}
	})
}

// PlaceNewRoom implements rooms.Router: the node that should create a
// room of mode and size.
func (n *Node) PlaceNewRoom(mode string, size int) rooms.Route {
	best := n.placeNew(mode, size)
	if best == nil || best.self {
		return rooms.Route{Local: true}
	}
	return rooms.Route{Node: best.name, URL: best.url, Relay: n.cfg.Relay}
}

// placeNew chooses the node that creates a room of mode and size; nil if
// no node can (then this one tries).
func (n *Node) placeNew(mode string, size int) *candidate {
	cands := n.candidates()
	if len(cands) == 0 {
		return nil
	}
	n.weigh(cands, mode, size)
	best := n.choose(cands, mode+"/"+strconv.Itoa(size))
	n.placement.ToNewRoom.Add(1)
	if best.self {
		n.placement.Local.Add(1)
	}
	return best
}

// choose picks the node that creates a room for key: the least loaded of
// the Candidates highest by rendezvous hash, skipping nodes above LoadCap
// times the mean while one below it remains. Every node with the same
// view chooses the same node, so concurrent join-or-creates gather there.
func (n *Node) choose(cands []candidate, key string) *candidate {
	total := 0
	for i := range cands {
		cands[i].score = rendezvous(key, cands[i].id)
		total += cands[i].load
	}
	slices.SortFunc(cands, func(a, b candidate) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		}
		return 0
	})
	capLoad := n.cfg.LoadCap * float64(total) / float64(len(cands))
	within := func(c *candidate) bool { return total == 0 || float64(c.load) <= capLoad }
	var best *candidate
	for i := range cands[:min(n.cfg.Candidates, len(cands))] {
		c := &cands[i]
		if within(c) && (best == nil || c.load < best.load) {
			best = c
		}
	}
	for i := range cands {
		if best != nil {
			break
		}
		if within(&cands[i]) {
			best = &cands[i]
		}
	}
	if best == nil { // unreachable: the least loaded is always within the mean
		best = &cands[0]
	}
	return best
}

// candidates lists the nodes placement may choose: alive, ready, not
// draining, with a game URL and room for one more room; this node among
// them if it is ready, not draining and runs rooms at all.
func (n *Node) candidates() []candidate {
	var out []candidate
	if n.ready.Load() && !n.draining.Load() && n.reg.Config().MaxRooms > 0 {
		out = append(out, candidate{id: n.name, name: n.cfg.NodeName, url: n.cfg.GameURL, self: true})
	}
	n.membersMu.RLock()
	defer n.membersMu.RUnlock()
	for _, m := range n.members {
		if m.Self || m.State != StateAlive || !m.Meta.Ready || m.Meta.Draining || m.Meta.GameURL == "" || m.Meta.Capacity == 0 {
			continue
		}
		out = append(out, candidate{id: m.ID, name: m.Meta.Name, url: m.Meta.GameURL})
	}
	return out
}

// rendezvous is the rendezvous (highest random weight) hash of a key on a
// node: FNV-1a, then a 64-bit finaliser so that similar names spread.
func rendezvous(key, node string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(node))
	x := h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}
