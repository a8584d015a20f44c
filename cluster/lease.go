package cluster

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// This file holds the node-pair leases that fence room ownership
// (FAILOVER.md). Every node renews a lease with every other node every
// RenewInterval, in a small gossip packet. The receiver grants it for
// LeaseDuration from when the renewal arrived, and promises not to vote
// for a takeover of the sender's rooms until then. The sender counts the
// lease as held until it sent the renewal plus LeaseDuration minus
// LeaseMargin: the renewal left before it arrived, so the holder's
// deadline always falls before the granter's, by at least LeaseMargin.
// A room's host ticks it only while a majority of the room's group holds
// such a lease for it (roomLease).

// peerLease is the lease state between this node and one peer. Times are
// nanoseconds since the owner's start, read from the monotonic clock.
type peerLease struct {
	// heldUntil: this node holds the peer's lease until then.
	heldUntil atomic.Int64
	// grantedUntil: this node promised the peer not to vote for a
	// takeover of its rooms until then.
	grantedUntil atomic.Int64
	// seq numbers renewals; sent remembers when recent ones left, so a
	// grant counts from its own renewal's send time.
	seq  atomic.Uint64
	sent [renewMemory]sentRenewal
}

// renewMemory is how many renewals in flight a grant can still answer:
// a grant that comes back later than this many renewal periods is old
// news anyway.
const renewMemory = 8

type sentRenewal struct {
	seq atomic.Uint64
	at  atomic.Int64
}

// leases is a node's table of peer leases. Its methods are safe for
// concurrent use; the per-tick check (roomLease.Holds) reads atomics only.
type leases struct {
	start  time.Time
	lease  time.Duration
	margin time.Duration

	mu    sync.Mutex
	peers map[string]*peerLease
}

func newLeases(lease, margin time.Duration) *leases {
	return &leases{start: time.Now(), lease: lease, margin: margin, peers: make(map[string]*peerLease)}
}

// now returns nanoseconds since start on the monotonic clock.
func (l *leases) now() int64 { return int64(time.Since(l.start)) }

func (l *leases) at(t time.Time) int64 { return int64(t.Sub(l.start)) }

// peer returns the lease state with the named peer, made on first use.
// The table grows with the members a node has known; forget trims it.
func (l *leases) peer(name string) *peerLease {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.peers[name]
	if p == nil {
		p = &peerLease{}
		l.peers[name] = p
	}
	return p
}

// forget drops the lease state of peers for which keep is false. A
// granted lease that has not run out is kept: the promise stands.
func (l *leases) forget(keep func(name string) bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for name, p := range l.peers {
		if !keep(name) && p.grantedUntil.Load() < now && p.heldUntil.Load() < now {
			delete(l.peers, name)
		}
	}
}

// renewing records a renewal to p about to leave and returns its seq.
func (l *leases) renewing(p *peerLease) uint64 {
	seq := p.seq.Add(1)
	s := &p.sent[seq%renewMemory]
	s.at.Store(l.now())
	s.seq.Store(seq)
	return seq
}

// granted records a grant for renewal seq from p.
func (l *leases) granted(p *peerLease, seq uint64) {
	s := &p.sent[seq%renewMemory]
	at := s.at.Load()
	if s.seq.Load() != seq {
		return // older than renewMemory renewals, or never sent
	}
	until := at + int64(l.lease-l.margin)
	for {
		old := p.heldUntil.Load()
		if until <= old || p.heldUntil.CompareAndSwap(old, until) {
			return
		}
	}
}

// grant records a renewal that arrived from p now.
func (l *leases) grant(p *peerLease) {
	until := l.now() + int64(l.lease)
	for {
		old := p.grantedUntil.Load()
		if until <= old || p.grantedUntil.CompareAndSwap(old, until) {
			return
		}
	}
}

// promised reports whether this node's promise to the named peer still
// stands: it must not vote for a takeover of the peer's rooms.
func (l *leases) promised(name string) bool {
	l.mu.Lock()
	p := l.peers[name]
	l.mu.Unlock()
	return p != nil && p.grantedUntil.Load() >= l.now()
}

// silentFor reports how long the named peer has not renewed, measured
// from when its lease here would have been granted: zero while it
// renews on time.
func (l *leases) silentFor(name string) time.Duration {
	l.mu.Lock()
	p := l.peers[name]
	l.mu.Unlock()
	if p == nil {
		return 0
	}
	lastRenew := p.grantedUntil.Load() - int64(l.lease)
	return time.Duration(max(l.now()-lastRenew, 0))
}

// roomLease is a room's rooms.Lease: the host holds it while a majority
// of the room's group, the host itself included, holds a lease for it.
type roomLease struct {
	l     *leases
	peers []*peerLease // the group but this node
	need  int          // leases needed from peers
}

// newRoomLease returns the lease of a room whose group is self plus
// others, or nil when the group has no majority to ask (FAILOVER.md: a
// group of two runs unfenced and is never taken over).
func (l *leases) newRoomLease(others []string) *roomLease {
	if len(others) < 2 {
		return nil
	}
	// A majority of the group is (len(others)+1)/2+1; the host is one.
	rl := &roomLease{l: l, need: (len(others) + 1) / 2}
	for _, o := range others {
		rl.peers = append(rl.peers, l.peer(o))
	}
	return rl
}

// Holds implements rooms.Lease; it runs before every tick of the room.
func (rl *roomLease) Holds(now time.Time) bool {
	t := rl.l.at(now)
	held := 0
	for _, p := range rl.peers {
		if p.heldUntil.Load() > t {
			held++
		}
	}
	return held >= rl.need
}

// renewer renews this node's leases with every alive member every
// RenewInterval, in gossip packets.
func (o *ownership) renewer(ctx context.Context) {
	defer o.wg.Done()
	tick := time.NewTicker(o.n.cfg.RenewInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, m := range o.n.ml.Members() {
			if m.Name == o.n.name || m.State != memberlist.StateAlive {
				continue
			}
			p := o.leases.peer(m.Name)
			msg := encodeLease(msgRenew, o.n.name, o.leases.renewing(p))
			if err := o.n.ml.SendBestEffort(m, msg); err != nil {
				o.stats.SendErrors.Add(1)
			}
		}
	}
}

// onRenew grants a peer's renewal and answers it. memberlist's packet
// goroutine: quick.
func (o *ownership) onRenew(m *peerMessage) {
	node := o.memberNode(m.from)
	if node == nil {
		return // not a member (yet): no promise to a stranger
	}
	p := o.leases.peer(m.from)
	o.leases.grant(p)
	if err := o.n.ml.SendBestEffort(node, encodeLease(msgGrant, o.n.name, m.seq)); err != nil {
		o.stats.SendErrors.Add(1)
	}
}

func (o *ownership) onGrant(m *peerMessage) {
	o.leases.granted(o.leases.peer(m.from), m.seq)
}
