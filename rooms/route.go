package rooms

import (
	"sync/atomic"

	"github.com/tickroom/tickroom/netcode"
	"github.com/tickroom/tickroom/netcode/wire"
)

// This file holds the hook through which joins reach rooms on other nodes:
// rooms declares Router, the cluster implements it, cmd wires it with
// Registry.SetRouter. Without a Router a node serves only its own rooms,
// as a single node always has.

// Router tells a node where joins go that its own rooms cannot serve. Its
// methods are called on connections' reader goroutines, concurrently, and
// must not block: they answer from what the cluster already knows.
type Router interface {
	// LocateRoom says where a room that this node does not run lives.
	LocateRoom(roomID string) Route
	// PlaceJoin says which node a join-or-create of mode (and of size
	// seats, unless 0) goes to, when this node has no free seat for it:
	// another node with a room that has one, or the node that should
	// create one.
	PlaceJoin(mode string, size int) Route
	// PlaceNewRoom says which node should create a room of mode and size.
	PlaceNewRoom(mode string, size int) Route
}

// Route is a Router's answer.
type Route struct {
	// Local: this node serves the join.
	Local bool
	// Node and URL name the node that does, and its game endpoint.
	Node, URL string
	// Moving: the room is between hosts; the client should retry soon.
	Moving bool
	// Relay: this node relays the connection to that node instead of
	// redirecting the client there (for clients that reach one address).
	Relay bool
}

// away turns a route to another node into the join's answer.
func (g *Registry) away(route Route) error {
	if route.Relay {
		g.routeStats.relayed.Add(1)
		return netcode.Relay(route.URL, route.Node)
	}
	g.routeStats.redirects.Add(1)
	return netcode.Redirect(route.URL, route.Node)
}

// routerSlot holds the Registry's Router, set once before serving.
type routerSlot struct{ p atomic.Pointer[Router] }

func (s *routerSlot) load() Router {
	if p := s.p.Load(); p != nil {
		return *p
	}
	return nil
}

// SetRouter makes joins that this node's rooms cannot serve go where r
// says. Call it before the node serves connections.
func (g *Registry) SetRouter(r Router) { g.router.p.Store(&r) }

// routeAway answers a join for a room this node does not run: a redirect
// to its host, or a retryable error while it moves. It returns nil if no
// other node knows the room, or if the join has been redirected enough:
// then this node answers it as if alone.
func (g *Registry) routeAway(roomID string, hops uint32) error {
	r := g.router.load()
	if r == nil || hops >= wire.MaxHops {
		return nil
	}
	route := r.LocateRoom(roomID)
	switch {
	case route.Moving:
		g.routeStats.moving.Add(1)
		return netcode.Reply(wire.CodeRoomMoving, "room %s is moving to another node; join again in a moment", roomID)
	case route.Local || route.URL == "":
		return nil
	}
	return g.away(route)
}

// placeAway answers a join-or-create that another node should serve with
// a redirect there; it returns nil when this node serves the join. A free
// seat here comes first; else a first try goes where the Router places
// it. A join redirected here for a free
// seat that is gone by now (the directory lags the seats by a gossip
// round) is not made to create a room here: it goes to the node that
// should create one, unless that is this node or the join has used its
// hops.
func (g *Registry) placeAway(mode string, size int, hops uint32) error {
	r := g.router.load()
	if r == nil || hops >= wire.MaxHops-1 {
		return nil
	}
	var route Route
	switch {
	case g.hasFreeSeat(mode, size): // this node's own seats, known exactly
		return nil
	case hops == 0:
		route = r.PlaceJoin(mode, size)
	default:
		route = r.PlaceNewRoom(mode, size)
	}
	if route.Local || route.URL == "" {
		return nil
	}
	return g.away(route)
}

// routeStats counts the joins this node sent elsewhere.
type routeStats struct {
	redirects atomic.Uint64
	relayed   atomic.Uint64
	moving    atomic.Uint64
}

// Redirects returns how many joins this node redirected to another node.
func (g *Registry) Redirects() uint64 { return g.routeStats.redirects.Load() }

// Relayed returns how many connections this node relayed to another node.
func (g *Registry) Relayed() uint64 { return g.routeStats.relayed.Load() }
