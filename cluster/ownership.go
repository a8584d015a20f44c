package cluster

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/tickroom/tickroom/rooms"
	"github.com/tickroom/tickroom/rooms/admin"
)

// ownership keeps a node's rooms alive beyond the node: it checkpoints
// the rooms this node hosts to their witnesses, keeps the witnesses'
// copies of other hosts' rooms, fences rooms with leases, takes over the
// rooms of hosts whose leases ran out, and hands rooms to other nodes
// (FAILOVER.md has the protocol and the argument for it).
//
// Goroutines, all owned by the ownership and stopped by close: the
// renewer (lease renewals), the keeper (failovers and new witnesses),
// one sender per peer that streams checkpoints, and short-lived
// goroutines for replies, restores and hand-offs, bounded by asyncSlots.
// memberlist's goroutines deliver messages to handle, which never blocks.
type ownership struct {
	n      *Node
	reg    *rooms.Registry
	leases *leases
	stats  OwnershipStats

	mu       sync.Mutex
	hosted   map[string]*hostedRoom // rooms this node runs
	records  map[string]*record     // witness copies of other hosts' rooms
	recBytes int                    // checkpoint bytes held in records
	released map[string]releasedRoom
	senders  map[string]*sender
	calls    map[uint64]chan *peerMessage
	moves    []admin.RoomMove // the latest, at most keepMoves

	reqID atomic.Uint64
	async chan struct{} // slots for short-lived goroutines
	// wgMu orders starting a goroutine (wg.Add) before close's wg.Wait:
	// none starts once closed is set.
	wgMu   sync.Mutex
	closed bool
	ctx    context.Context
	stop   context.CancelFunc
	wg     sync.WaitGroup
}

// asyncSlots bounds the goroutines handling replies, restores and
// hand-offs at once; beyond it work is refused and counted, never queued
// without bound.
const asyncSlots = 64

// hostedRoom is one of this node's rooms as ownership sees it.
type hostedRoom struct {
	room  *rooms.Room
	epoch uint64
	group []string // this node first, then the witnesses
	cpAt  atomic.Int64
	busy  bool // a hand-off or a change of witnesses is under way
}

// releasedRoom remembers a room this node no longer runs, so that its
// directory entry is not turned into a tombstone and joins for it are
// told it is moving.
type releasedRoom struct {
	at    time.Time
	epoch uint64 // the epoch it went on at, if known
}

// OwnershipStats count checkpoints, failovers and hand-offs.
type OwnershipStats struct {
	CheckpointsSent     atomic.Uint64
	CheckpointBytesSent atomic.Uint64
	CheckpointsStored   atomic.Uint64 // witness copies received
	CheckpointsRefused  atomic.Uint64 // received for a room known at a higher epoch
	SendErrors          atomic.Uint64
	Dropped             atomic.Uint64 // bad ownership messages, or work refused for lack of slots
	Failovers           atomic.Uint64 // rooms this node restored from a checkpoint after their host's lease ran out
	FailoverFailures    atomic.Uint64
	HandOffs            atomic.Uint64 // rooms this node handed to another node
	HandOffFailures     atomic.Uint64
	HandOffsReceived    atomic.Uint64
	Fenced              atomic.Uint64 // rooms stopped here because their lease no longer held
	Rewitnessed         atomic.Uint64 // rooms given new witnesses
	VotesGranted        atomic.Uint64
	VotesRefused        atomic.Uint64
	// Freeze is how long each hand-off kept its room frozen: from the
	// end of its last tick here to its players being told where it went.
	Freeze rooms.Histogram
}

func newOwnership(n *Node) *ownership {
	ctx, stop := context.WithCancel(context.Background())
	return &ownership{
		n:        n,
		reg:      n.reg,
		leases:   newLeases(n.cfg.LeaseDuration, n.cfg.LeaseMargin),
		hosted:   make(map[string]*hostedRoom),
		records:  make(map[string]*record),
		released: make(map[string]releasedRoom),
		senders:  make(map[string]*sender),
		calls:    make(map[uint64]chan *peerMessage),
		async:    make(chan struct{}, asyncSlots),
		ctx:      ctx,
		stop:     stop,
	}
}

func (o *ownership) start() {
	if o.track() {
		go o.renewer(o.ctx)
	}
	if o.track() {
		go o.keeper(o.ctx)
	}
}

// close stops every goroutine of the ownership and waits for them.
func (o *ownership) close() {
	o.stop()
	o.wgMu.Lock()
	o.closed = true
	o.wgMu.Unlock()
	o.wg.Wait()
}

// track counts a goroutine about to start, unless the ownership closed.
func (o *ownership) track() bool {
	o.wgMu.Lock()
	defer o.wgMu.Unlock()
	if o.closed {
		return false
	}
	o.wg.Add(1)
	return true
}

// goAsync runs f on a goroutine of its own, unless asyncSlots are taken:
// then it reports false and f does not run.
func (o *ownership) goAsync(f func()) bool {
	select {
	case o.async <- struct{}{}:
	default:
		o.stats.Dropped.Add(1)
		return false
	}
	if !o.track() {
		<-o.async
		return false
	}
	go func() {
		defer o.wg.Done()
		defer func() { <-o.async }()
		f()
	}()
	return true
}

// memberNode returns memberlist's node of the named member, nil if it is
// not an alive or suspect member.
func (o *ownership) memberNode(name string) *memberlist.Node {
	for _, m := range o.n.ml.Members() {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// handle takes an ownership message off memberlist's goroutines: lease
// traffic and votes are answered in place (map updates); anything that
// sends on a stream or restores a room goes to a goroutine of its own.
func (o *ownership) handle(p []byte) {
	m, err := decodePeerMessage(p)
	if err != nil {
		o.stats.Dropped.Add(1)
		o.n.log.Debug("dropped a bad ownership message", "err", err, "bytes", len(p))
		return
	}
	if m.from == o.n.name {
		return
	}
	switch m.typ {
	case msgRenew:
		o.onRenew(m)
	case msgGrant:
		o.onGrant(m)
	case msgCheckpoints:
		o.onCheckpoints(m)
	case msgStale:
		o.onStale(m)
	case msgClaim:
		votes := o.vote(m.from, m.claims)
		o.goAsync(func() { o.reply(m.from, encodeVotes(o.n.name, m.seq, votes)) })
	case msgClaimReply, msgHandOffDone:
		o.deliver(m)
	case msgHandOff:
		if !o.goAsync(func() { o.onHandOff(m) }) {
			o.goAsync(func() { o.reply(m.from, encodeHandOffDone(o.n.name, m.seq, "the target is busy")) })
		}
	case msgRelinquish:
		o.onRelinquish(m)
	}
}

// reply sends msg to the named member on a stream.
func (o *ownership) reply(to string, msg []byte) {
	node := o.memberNode(to)
	if node == nil {
		o.stats.SendErrors.Add(1)
		return
	}
	if err := o.n.ml.SendReliable(node, msg); err != nil {
		o.stats.SendErrors.Add(1)
		o.n.log.Debug("ownership reply not sent", "to", to, "err", err)
	}
}

// call sends a request built for a fresh request id to the named member
// and waits for its reply, or for timeout.
func (o *ownership) call(to string, timeout time.Duration, build func(reqID uint64) []byte) (*peerMessage, error) {
	node := o.memberNode(to)
	if node == nil {
		return nil, errNotMember
	}
	id := o.reqID.Add(1)
	ch := make(chan *peerMessage, 1)
	o.mu.Lock()
	o.calls[id] = ch
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		delete(o.calls, id)
		o.mu.Unlock()
	}()
	if err := o.n.ml.SendReliable(node, build(id)); err != nil {
		o.stats.SendErrors.Add(1)
		return nil, err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case m := <-ch:
		return m, nil
	case <-t.C:
		return nil, errTimeout
	case <-o.ctx.Done():
		return nil, errClosing
	}
}

func (o *ownership) deliver(m *peerMessage) {
	o.mu.Lock()
	ch := o.calls[m.seq]
	o.mu.Unlock()
	if ch != nil {
		select {
		case ch <- m:
		default:
		}
	}
}

// healthyPeer reports whether a member may witness or take rooms: alive,
// not draining, and holding a lease with this node right now.
func (o *ownership) healthyPeer(m *Member) bool {
	return !m.Self && m.State == StateAlive && !m.Meta.Draining &&
		o.leases.peer(m.ID).heldUntil.Load() > o.leases.now()
}

// chooseGroup returns host followed by up to Witnesses witnesses for a
// room: the members in keep that are still healthy, then others by
// rendezvous hash of the room, nodes that can host rooms before
// witness-only ones (a witness may have to take the room over), never
// one in exclude.
func (o *ownership) chooseGroup(roomID, host string, keep []string, exclude ...string) []string {
	type cand struct {
		id      string
		canHost bool
		score   uint64
	}
	var cands []cand
	healthy := make(map[string]bool)
	for _, m := range o.n.Members() {
		if m.ID == host || slices.Contains(exclude, m.ID) || !o.healthyPeer(&m) {
			continue
		}
		healthy[m.ID] = true
		cands = append(cands, cand{id: m.ID, canHost: m.Meta.Capacity > 0, score: rendezvous(roomID, m.ID)})
	}
	group := []string{host}
	for _, k := range keep {
		if k != host && healthy[k] && len(group) <= o.n.cfg.Witnesses && !slices.Contains(group, k) {
			group = append(group, k)
		}
	}
	slices.SortFunc(cands, func(a, b cand) int {
		switch {
		case a.canHost != b.canHost:
			if a.canHost {
				return -1
			}
			return 1
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		}
		return 0
	})
	for _, c := range cands {
		if len(group) > o.n.cfg.Witnesses {
			break
		}
		if !slices.Contains(group, c.id) {
			group = append(group, c.id)
		}
	}
	return group
}

// majority is how many of a group of size n make a majority.
func majority(n int) int { return n/2 + 1 }

// keepMoves is how many room moves an ownership remembers for operators.
const keepMoves = 32

// noteMove remembers a room move for operators and emits its event.
func (o *ownership) noteMove(e Event) {
	kind := map[EventKind]string{RoomFailedOver: "failover", RoomHandedOff: "handoff", RoomReceived: "received"}[e.Kind]
	mv := admin.RoomMove{Kind: kind, Room: e.Room, From: e.From, To: e.To, Epoch: e.Epoch, FreezeMs: ms(e.Freeze), TimeMs: time.Now().UnixMilli()}
	o.mu.Lock()
	if len(o.moves) >= keepMoves {
		o.moves = slices.Delete(o.moves, 0, 1)
	}
	o.moves = append(o.moves, mv)
	o.mu.Unlock()
	o.n.emit(e)
}

func (o *ownership) recentMoves() []admin.RoomMove {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.moves)
}
