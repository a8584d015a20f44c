package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/tickroom/tickroom/rooms"
)

// Node is this process's membership of the cluster: its gossip, its copy
// of the room directory, and the placement and routing built on them. It
// implements rooms.Router.
type Node struct {
	cfg  Config
	log  *slog.Logger
	reg  *rooms.Registry
	name string // gossip name: NodeName plus a suffix drawn at start

	ml *memberlist.Memberlist
	// queue holds this node's own directory changes, sent to many peers;
	// relays holds other hosts' changes this node passes on, sent to a few
	// (dskit keeps the two apart too): with every node relaying, a few
	// sends each reach everyone, at a fraction of the bytes.
	queue, relays *memberlist.TransmitLimitedQueue
	dir           *directory
	listRooms     func() []roomInfo // the registry's rooms (a test hook may replace it)

	membersMu sync.RWMutex
	members   map[string]*Member // by gossip name, self and the departed included
	alives    atomic.Int32       // alive members in members, for the broadcast queues

	meta       atomic.Pointer[[]byte]
	draining   atomic.Bool
	ready      atomic.Bool
	metaDirty  chan struct{} // a flag changed: gossip the meta now
	metaBusy   atomic.Bool   // an UpdateNode is under way
	revived    chan string   // gossip addresses of members back from the dead, for the joiner
	events     chan Event    // Events; full: dropped and counted
	eventsLost atomic.Uint64

	own       *ownership // checkpoints, leases, failover, hand-off; nil without a key or Replicate
	drainReq  chan struct{}
	drainOnce sync.Once

	pushPulls atomic.Uint64 // LocalState calls, to send the full directory every few
	stats     GossipStats
	placement PlacementStats

	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
}

// PlacementStats count where this node sent join-or-creates.
type PlacementStats struct {
	ToFreeSeat atomic.Uint64 // to a node with a free seat in a room of the mode
	ToNewRoom  atomic.Uint64 // to the node chosen to create a room
	Local      atomic.Uint64 // of those, served here
}

// options are test hooks that no caller outside the package can set.
type options struct {
	transport memberlist.NodeAwareTransport
	listRooms func() []roomInfo
}

// New joins the cluster: it starts gossip on cfg.GossipListen, and, if
// cfg.Join is set, joins the seeds in the background, retrying until the
// first join succeeds. reg is this node's registry, whose rooms it
// publishes. The node starts not ready: call SetReady when it serves.
func New(cfg Config, reg *rooms.Registry) (*Node, error) {
	return newNode(cfg, reg, options{})
}

func newNode(cfg Config, reg *rooms.Registry, opt options) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if reg == nil {
		return nil, errors.New("cluster: a registry is required")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix) // crypto/rand never fails on Linux
	n := &Node{
		cfg:       cfg,
		reg:       reg,
		name:      cfg.NodeName + "-" + hex.EncodeToString(suffix),
		dir:       newDirectory(),
		members:   make(map[string]*Member),
		metaDirty: make(chan struct{}, 1),
		revived:   make(chan string, 16),
		events:    make(chan Event, eventBuffer),
		drainReq:  make(chan struct{}),
	}
	n.log = logger.With("node", n.name)
	n.listRooms = opt.listRooms
	if n.listRooms == nil {
		n.listRooms = n.registryRooms
	}
	if err := n.publishMeta(); err != nil {
		return nil, err
	}

	mc, err := n.memberlistConfig(opt)
	if err != nil {
		return nil, err
	}
	// Not n.ml.NumMembers: memberlist may gossip (and so ask) before
	// Create returns, and it takes memberlist's node lock on every packet.
	numNodes := func() int { return max(int(n.alives.Load()), 1) }
	n.queue = &memberlist.TransmitLimitedQueue{NumNodes: numNodes, RetransmitMult: mc.RetransmitMult}
	n.relays = &memberlist.TransmitLimitedQueue{NumNodes: numNodes, RetransmitMult: relayRetransmitMult}
	if cfg.Replicate && len(cfg.SecretKey) > 0 {
		n.own = newOwnership(n)
	} else if cfg.Replicate {
		n.log.Warn("rooms are not checkpointed, failed over or handed off: that needs a cluster key (checkpoints carry reconnect tokens)")
	}
	d := &delegate{n: n}
	mc.Delegate, mc.Events = d, d
	if n.ml, err = memberlist.Create(mc); err != nil {
		_ = mc.Transport.Shutdown() // Create does not, when it fails
		return nil, fmt.Errorf("cluster: start gossip on %s: %w", cfg.GossipListen, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.wg.Add(2)
	go n.joiner(ctx)
	go n.scanner(ctx)
	if n.own != nil {
		reg.SetReplicator(n.own)
		n.own.start()
	}
	n.log.Info("cluster gossip started", "gossip", n.GossipAddr(), "game_url", cfg.GameURL, "seeds", cfg.Join, "encrypted", len(cfg.SecretKey) > 0)
	return n, nil
}

func (n *Node) advertise() string {
	if n.cfg.Advertise != "" {
		return n.cfg.Advertise
	}
	return n.cfg.GossipListen
}

func (n *Node) memberlistConfig(opt options) (*memberlist.Config, error) {
	c := n.cfg
	mc := memberlist.DefaultLANConfig()
	mc.Name = n.name
	bindHost, bindPort, _ := splitHostPort(c.GossipListen) // validated
	advHost, advPort, _ := splitHostPort(n.advertise())
	mc.BindAddr, mc.BindPort = bindHost, bindPort
	mc.AdvertiseAddr, mc.AdvertisePort = advHost, advPort
	mc.ProbeInterval, mc.ProbeTimeout = c.ProbeInterval, c.ProbeTimeout
	mc.SuspicionMult, mc.SuspicionMaxTimeoutMult = c.SuspicionMult, c.SuspicionMaxMult
	mc.GossipInterval, mc.PushPullInterval = c.GossipInterval, c.PushPullInterval
	mc.GossipToTheDeadTime = 15 * time.Second // names are unique per start: no need to remember the dead long
	mc.TCPTimeout = 2 * time.Second           // a push/pull of a big directory on a busy node
	mc.Label = c.Label
	mc.SecretKey = c.SecretKey
	mc.Logger = log.New(&logWriter{log: n.log.With("component", "memberlist"), dropped: &n.stats.Dropped}, "", 0)
	inner := opt.transport
	if inner == nil {
		nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{bindHost},
			BindPort:  bindPort,
			Logger:    mc.Logger,
		})
		if err != nil {
			return nil, fmt.Errorf("cluster: listen for gossip on %s: %w", c.GossipListen, err)
		}
		inner = nt
		if bindPort == 0 { // tests: the kernel chose the port
			mc.BindPort = nt.GetAutoBindPort()
			if advPort == 0 {
				mc.AdvertisePort = mc.BindPort
			}
		}
	}
	mc.Transport = newCountingTransport(inner, &n.stats)
	return mc, nil
}

// relayRetransmitMult sets how many peers a relayed directory change is
// sent to: as many as the origin sends it to (4 x ceil(log10(N+1))).
// Measured at 10 nodes (BENCHMARKS.md), relaying to fewer saves bytes
// but misses nodes: at 2 x, 1 change in a few thousand waited for a
// push/pull, 10 s and more; at 4 x none did, p99 0.3 s.
const relayRetransmitMult = 4

// eventBuffer is how many membership events wait for a slow reader of
// Events before newer ones are dropped.
const eventBuffer = 256

// Events returns the membership changes this node sees, in order. Nobody
// need read it: when it is full, events are dropped (EventsLost counts
// them) and Members still tells the state.
func (n *Node) Events() <-chan Event { return n.events }

// EventsLost returns how many events were dropped for a full Events.
func (n *Node) EventsLost() uint64 { return n.eventsLost.Load() }

// Name returns the node's gossip name (its human name plus a suffix drawn
// at start).
func (n *Node) Name() string { return n.name }

// GossipAddr returns the host:port other nodes gossip with.
func (n *Node) GossipAddr() string {
	ln := n.ml.LocalNode()
	return net.JoinHostPort(ln.Addr.String(), strconv.Itoa(int(ln.Port)))
}

// Stats returns the node's gossip counters.
func (n *Node) Stats() *GossipStats { return &n.stats }

// Placements returns the node's placement counters.
func (n *Node) Placements() *PlacementStats { return &n.placement }

// SetReady says whether this node serves players; placement skips nodes
// that do not.
func (n *Node) SetReady(ok bool) {
	if n.ready.Swap(ok) != ok {
		n.flagChanged()
	}
}

// SetDraining makes placement skip this node (or take it back).
func (n *Node) SetDraining(ok bool) {
	if n.draining.Swap(ok) != ok {
		n.flagChanged()
	}
}

func (n *Node) flagChanged() {
	select {
	case n.metaDirty <- struct{}{}:
	default:
	}
}

// Close stops the node's goroutines, leaves the cluster (telling the
// others, within timeout) and shuts gossip down.
func (n *Node) Close(timeout time.Duration) error {
	if n.closed.Swap(true) {
		return nil
	}
	n.cancel()
	n.wg.Wait()
	if n.own != nil {
		n.own.close()
	}
	leaveErr := n.ml.Leave(timeout)
	if leaveErr != nil {
		leaveErr = fmt.Errorf("cluster: leave: %w", leaveErr)
	}
	return errors.Join(leaveErr, n.ml.Shutdown())
}

// joiner joins the seeds until the first join succeeds, then again every
// RejoinInterval, so that a cluster split by a partition (whose halves
// have forgotten each other) heals; and it joins each member back from
// the dead at once, for its directory.
func (n *Node) joiner(ctx context.Context) {
	defer n.wg.Done()
	if len(n.cfg.Join) == 0 {
		for {
			select {
			case addr := <-n.revived:
				n.rejoin(addr)
			case <-ctx.Done():
				return
			}
		}
	}
	wait := n.cfg.JoinRetry
	joined := false
	for {
		count, err := n.ml.Join(n.cfg.Join)
		switch {
		case err == nil && !joined:
			joined = true
			n.log.Info("joined the cluster", "contacted", count, "members", n.ml.NumMembers())
		case err != nil && !joined:
			n.log.Warn("cannot join the cluster yet; retrying", "seeds", n.cfg.Join, "retry_in", wait, "err", err)
		case err != nil:
			n.log.Debug("rejoin failed", "err", err)
		}
		if joined {
			wait = n.cfg.RejoinInterval
		}
		timer := time.NewTimer(wait)
	waiting:
		for {
			select {
			case <-timer.C:
				break waiting
			case addr := <-n.revived:
				n.rejoin(addr)
			case <-ctx.Done():
				timer.Stop()
				return
			}
		}
		if !joined {
			wait = min(2*wait, n.cfg.RejoinInterval)
		}
	}
}

// rejoin joins one member again: a join's push/pull carries both full
// directories.
func (n *Node) rejoin(addr string) {
	if _, err := n.ml.Join([]string{addr}); err != nil {
		n.log.Debug("rejoin of a revived member failed", "addr", addr, "err", err)
	}
}

// Members returns every member this node knows, itself included, sorted
// by human name.
func (n *Node) Members() []Member {
	states := make(map[string]MemberState)
	for _, m := range n.ml.Members() {
		states[m.Name] = memberState(m.State)
	}
	n.membersMu.RLock()
	out := make([]Member, 0, len(n.members))
	for _, m := range n.members {
		c := *m
		if s, ok := states[c.ID]; ok {
			c.State = s
		}
		out = append(out, c)
	}
	n.membersMu.RUnlock()
	slices.SortFunc(out, func(a, b Member) int {
		if a.Meta.Name != b.Meta.Name {
			if a.Meta.Name < b.Meta.Name {
				return -1
			}
			return 1
		}
		if a.ID < b.ID {
			return -1
		}
		return 1
	})
	return out
}

func (n *Node) member(id string) (Member, bool) {
	n.membersMu.RLock()
	defer n.membersMu.RUnlock()
	m, ok := n.members[id]
	if !ok {
		return Member{}, false
	}
	return *m, true
}

func (n *Node) alive(id string) bool {
	m, ok := n.member(id)
	return ok && m.State == StateAlive
}
