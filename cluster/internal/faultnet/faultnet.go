// Package faultnet is a fault-injecting memberlist.Transport for tests of
// the cluster package. It runs real UDP/TCP sockets (normally on 127.0.0.1)
// and lets a test drop, delay and partition gossip traffic deterministically
// while counting what flows.
//
// A Network holds the fault settings shared by a set of Transports: which
// nodes are partitioned or isolated, a random packet drop rate and a packet
// delay. Every node of a test cluster gets its own Transport from the same
// Network, created with NewTransport (a memberlist.NetTransport bound to the
// given address) or Wrap (any memberlist.NodeAwareTransport). Nodes are
// identified by their advertised gossip address, "ip:port".
//
// What is cut:
//
//   - Packets are dropped on the send side by destination, and again on the
//     receive side by Packet.From, so even senders outside the Network are
//     filtered.
//   - Dials to a cut peer fail at once with an error wrapping ErrCut. An
//     incoming stream's source port is ephemeral, so the receiving side
//     cannot tell which node dialled; faultnet relies on the dial side
//     instead. Cuts are symmetric, so dials in both directions are refused.
//   - A stream opened by a Transport of this Network is closed as soon as
//     its two ends become cut, and its Read and Write return ErrCut from then
//     on. The accepting end sees the connection closed. Streams dialled by a
//     transport outside the Network are not tracked.
//
// All fault settings may be changed at any time while traffic flows.
//
// Goroutine model: each Transport owns three goroutines, started by its
// constructor and stopped and waited for by Transport.Shutdown: one forwards
// the inner transport's packets (filtering them) to PacketCh, one forwards
// incoming streams to StreamCh, and one holds delayed packets until they are
// due. A Network owns no goroutines. All methods of Network and Transport
// are safe for concurrent use.
package faultnet

import (
	"errors"
	"math"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// ErrCut is wrapped by the errors returned for dials to, and streams with, a
// peer that a partition or isolation has cut off.
var ErrCut = errors.New("faultnet: link cut")

// ErrClosed is wrapped by the errors returned by a Transport after Shutdown.
var ErrClosed = errors.New("faultnet: transport shut down")

// DefaultSeed is the seed of a new Network's random drop decisions.
const DefaultSeed = 1

// Network controls the faults applied to every Transport created from it.
// The zero value is not usable; call NewNetwork.
type Network struct {
	// faults is an immutable snapshot, replaced as a whole under mu, so
	// that the per-packet and per-Read checks need no lock.
	faults atomic.Pointer[faults]

	dropRate atomic.Uint64 // math.Float64bits of a value in [0, 1]
	delay    atomic.Int64  // time.Duration, >= 0

	// mu serialises fault changes with the registration of streams, so a
	// stream is either refused at dial time or closed by the change.
	mu      sync.Mutex
	streams map[*streamConn]struct{}

	rngMu sync.Mutex
	rng   *rand.Rand
}

// NewNetwork returns a Network with no faults: nothing cut, no drops, no
// delay, and random drops seeded with DefaultSeed.
func NewNetwork() *Network {
	n := &Network{
		streams: make(map[*streamConn]struct{}),
		rng:     newRand(DefaultSeed),
	}
	n.faults.Store(&faults{})
	return n
}

func newRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// Partition splits the nodes into groups: traffic then flows only between
// two addresses that share a group. Addresses in no group are cut from
// everyone, and so Partition with no groups cuts every link. An address may
// appear in several groups (a bridge node). A new call replaces the previous
// partition; isolation set by Isolate is kept. Addresses are "ip:port"
// gossip addresses as advertised.
func (n *Network) Partition(groups ...[]string) {
	sets := make([]map[string]struct{}, 0, len(groups))
	for _, g := range groups {
		set := make(map[string]struct{}, len(g))
		for _, addr := range g {
			set[canonical(addr)] = struct{}{}
		}
		sets = append(sets, set)
	}
	n.update(func(f *faults) {
		f.partitioned = true
		f.groups = sets
	})
}

// Isolate cuts addr from every other node in both directions, as if it had
// been killed or stalled. It adds to any partition in place.
func (n *Network) Isolate(addr string) {
	addr = canonical(addr)
	n.update(func(f *faults) {
		isolated := make(map[string]struct{}, len(f.isolated)+1)
		for a := range f.isolated {
			isolated[a] = struct{}{}
		}
		isolated[addr] = struct{}{}
		f.isolated = isolated
	})
}

// Heal removes every partition and isolation. It does not change the drop
// rate or the delay. Streams closed while cut stay closed.
func (n *Network) Heal() {
	n.update(func(f *faults) { *f = faults{} })
}

// SetDropRate makes every Transport drop this fraction of the packets it
// sends, chosen at random. p is clamped to [0, 1]; NaN counts as 0. Streams
// are not affected.
func (n *Network) SetDropRate(p float64) {
	switch {
	case math.IsNaN(p) || p < 0:
		p = 0
	case p > 1:
		p = 1
	}
	n.dropRate.Store(math.Float64bits(p))
}

// SetSeed restarts the random source of drop decisions from seed. The
// sequence of decisions is then fixed, but which packet gets which decision
// depends on the order in which goroutines send, so runs are only fully
// repeatable when packets are sent from one goroutine.
func (n *Network) SetSeed(seed uint64) {
	n.rngMu.Lock()
	defer n.rngMu.Unlock()
	n.rng = newRand(seed)
}

// SetDelay makes every Transport hold each packet it sends for d before
// writing it, without blocking the sender. A negative d counts as 0, which
// turns delay off for packets sent from then on. Packets already waiting
// keep their due time. Streams are not delayed.
func (n *Network) SetDelay(d time.Duration) {
	n.delay.Store(int64(max(d, 0)))
}

// update applies change to a copy of the faults, publishes it, and closes
// the tracked streams it cuts.
func (n *Network) update(change func(*faults)) {
	n.mu.Lock()
	f := *n.faults.Load()
	change(&f)
	n.faults.Store(&f)
	var cut []*streamConn
	for s := range n.streams {
		if f.cut(s.local, s.remote) {
			cut = append(cut, s)
		}
	}
	n.mu.Unlock()

	for _, s := range cut {
		s.cut()
	}
}

// isCut reports whether traffic between a and b, both canonical, is cut.
func (n *Network) isCut(a, b string) bool {
	return n.faults.Load().cut(a, b)
}

// shouldDrop decides at random whether to drop one packet.
func (n *Network) shouldDrop() bool {
	p := math.Float64frombits(n.dropRate.Load())
	switch {
	case p <= 0:
		return false
	case p >= 1:
		return true
	}
	n.rngMu.Lock()
	defer n.rngMu.Unlock()
	return n.rng.Float64() < p
}

// register tracks s so that fault changes can close it. It refuses, and
// returns false, if s's link is already cut.
func (n *Network) register(s *streamConn) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.isCut(s.local, s.remote) {
		return false
	}
	n.streams[s] = struct{}{}
	return true
}

func (n *Network) unregister(s *streamConn) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.streams, s)
}

// streamsOf returns the tracked streams dialled by owner.
func (n *Network) streamsOf(owner *Transport) []*streamConn {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []*streamConn
	for s := range n.streams {
		if s.owner == owner {
			out = append(out, s)
		}
	}
	return out
}

// faults is one immutable set of cut rules. The zero value cuts nothing.
type faults struct {
	isolated    map[string]struct{}
	partitioned bool
	groups      []map[string]struct{}
}

// cut reports whether traffic between a and b is cut. A node is never cut
// from itself.
func (f *faults) cut(a, b string) bool {
	if a == b {
		return false
	}
	if _, ok := f.isolated[a]; ok {
		return true
	}
	if _, ok := f.isolated[b]; ok {
		return true
	}
	if !f.partitioned {
		return false
	}
	for _, g := range f.groups {
		_, okA := g[a]
		_, okB := g[b]
		if okA && okB {
			return false
		}
	}
	return true
}

// canonical returns addr in one spelling, so that "127.0.0.1:7946" from a
// config, a net.UDPAddr and an IPv4-mapped IPv6 address all compare equal.
// Anything that is not an "ip:port" is returned unchanged.
func canonical(addr string) string {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return addr
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String()
}
