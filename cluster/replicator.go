package cluster

import (
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/tickroom/tickroom/rooms"
)

// This file holds the host's side of checkpoints: ownership implements
// rooms.Replicator, and a sender per peer streams each room's latest
// checkpoint to that peer.

var (
	errNotMember = errors.New("cluster: not an alive member")
	errTimeout   = errors.New("cluster: no reply in time")
	errClosing   = errors.New("cluster: node closing")
)

// hostedFor returns r's hostedRoom, choosing its group on first sight.
// The caller holds o.mu.
func (o *ownership) hostedForLocked(r *rooms.Room) *hostedRoom {
	h := o.hosted[r.ID()]
	if h != nil && h.room == r {
		return h
	}
	group := o.chooseGroup(r.ID(), o.n.name, nil)
	h = &hostedRoom{room: r, epoch: r.Epoch(), group: group}
	o.hosted[r.ID()] = h
	o.setLease(r, group)
	return h
}

// setLease fences r by the leases of its group (none for a group of two
// or fewer: FAILOVER.md).
func (o *ownership) setLease(r *rooms.Room, group []string) { r.SetLease(o.leaseFor(group)) }

// leaseFor returns the lease of a room of group, or nil (an untyped nil:
// no lease) for a group too small to fence.
func (o *ownership) leaseFor(group []string) rooms.Lease {
	if rl := o.leases.newRoomLease(group[1:]); rl != nil {
		return rl
	}
	return nil
}

// Checkpoint implements rooms.Replicator: the room's latest checkpoint
// goes to each of its witnesses, replacing one not yet sent.
func (o *ownership) Checkpoint(r *rooms.Room, epoch, tick uint64, data []byte) {
	o.mu.Lock()
	h := o.hostedForLocked(r)
	group := h.group
	var senders []*sender
	for _, peer := range group[1:] {
		senders = append(senders, o.senderLocked(peer))
	}
	o.mu.Unlock()
	for _, s := range senders {
		s.offer(cpItem{room: r.ID(), epoch: epoch, tick: tick, group: group, data: data}, h)
	}
}

// Fenced implements rooms.Replicator: the room stopped because its lease
// no longer holds. Its witnesses are told, so they need not wait for the
// lease to run out on their side, and its players are sent to wherever
// it goes on.
func (o *ownership) Fenced(r *rooms.Room) {
	o.stats.Fenced.Add(1)
	o.n.log.Warn("room fenced: its lease no longer holds; it stops here", "room", r.ID(), "epoch", r.Epoch())
	if !o.goAsync(func() { o.afterFence(r) }) {
		o.n.log.Error("no slot to hand a fenced room's players on; they reconnect when their connections end", "room", r.ID())
	}
}

// Closed implements rooms.Replicator: the witnesses drop their copies.
func (o *ownership) Closed(r *rooms.Room) {
	o.mu.Lock()
	h := o.hosted[r.ID()]
	if h == nil || h.room != r {
		o.mu.Unlock()
		return
	}
	delete(o.hosted, r.ID())
	var senders []*sender
	for _, peer := range h.group[1:] {
		senders = append(senders, o.senderLocked(peer))
	}
	o.mu.Unlock()
	for _, s := range senders {
		s.offer(cpItem{room: r.ID(), epoch: h.epoch}, nil)
	}
}

// forgetAt tells peers to drop their copies of a room.
func (o *ownership) forgetAt(roomID string, epoch uint64, peers []string) {
	o.mu.Lock()
	var senders []*sender
	for _, p := range peers {
		if p != o.n.name {
			senders = append(senders, o.senderLocked(p))
		}
	}
	o.mu.Unlock()
	for _, s := range senders {
		s.offer(cpItem{room: roomID, epoch: epoch}, nil)
	}
}

// afterFence relinquishes a fenced room, waits (up to FenceWait) to learn
// where it runs on, and releases its players there.
func (o *ownership) afterFence(r *rooms.Room) {
	o.mu.Lock()
	h := o.hosted[r.ID()]
	var group []string
	if h != nil && h.room == r {
		group = h.group
	}
	o.mu.Unlock()
	msg := encodeRelinquish(o.n.name, []staleRoom{{room: r.ID(), epoch: r.Epoch()}})
	for _, peer := range group[min(1, len(group)):] {
		o.reply(peer, msg)
	}
	deadline := time.Now().Add(o.n.cfg.FenceWait)
	to := rooms.MovedTo{}
	for time.Now().Before(deadline) {
		if e, ok := o.n.dir.get(r.ID()); ok && e.Host != o.n.name && e.Epoch > r.Epoch() && !e.Closed {
			if m, ok := o.n.member(e.Host); ok && m.State == StateAlive {
				to = rooms.MovedTo{URL: m.Meta.GameURL, Node: m.Meta.Name, Epoch: e.Epoch}
				break
			}
		}
		select {
		case <-o.ctx.Done():
			return
		case <-time.After(o.n.cfg.ScanInterval):
		}
	}
	o.markReleased(r.ID(), to.Epoch)
	if err := r.Release(to); err != nil {
		o.n.log.Warn("fenced room not released", "room", r.ID(), "err", err)
	}
	o.mu.Lock()
	if h := o.hosted[r.ID()]; h != nil && h.room == r {
		delete(o.hosted, r.ID())
	}
	o.mu.Unlock()
	o.n.log.Info("fenced room's players sent on", "room", r.ID(), "to", to.Node, "epoch", to.Epoch)
}

// markReleased records that this node no longer runs roomID.
func (o *ownership) markReleased(roomID string, epoch uint64) {
	o.mu.Lock()
	o.released[roomID] = releasedRoom{at: time.Now(), epoch: epoch}
	o.mu.Unlock()
}

// wasReleased reports whether this node released roomID lately.
func (o *ownership) wasReleased(roomID string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, ok := o.released[roomID]
	return ok
}

// onStale fences rooms that a witness knows at a higher epoch elsewhere:
// this node lost them (a takeover while it was cut off).
func (o *ownership) onStale(m *peerMessage) {
	for _, s := range m.stale {
		o.mu.Lock()
		h := o.hosted[s.room]
		o.mu.Unlock()
		if h != nil && h.room.Epoch() < s.epoch {
			o.n.log.Warn("room runs elsewhere at a higher epoch; fencing it here", "room", s.room, "epoch", h.room.Epoch(), "elsewhere", s.host, "their_epoch", s.epoch)
			h.room.SetLease(fenced{})
		}
	}
}

// fenced is a lease that never holds.
type fenced struct{}

func (fenced) Holds(time.Time) bool { return false }

func (o *ownership) senderLocked(peer string) *sender {
	s := o.senders[peer]
	if s == nil {
		s = &sender{o: o, peer: peer, pending: make(map[string]pendingCP), wake: make(chan struct{}, 1)}
		o.senders[peer] = s
		if o.track() {
			go s.run()
		}
	}
	return s
}

// sender streams checkpoints to one peer. Each room has at most one
// checkpoint waiting: a newer one replaces it (latest wins), so a slow
// link costs freshness, never memory or the tick.
type sender struct {
	o    *ownership
	peer string

	mu      sync.Mutex
	pending map[string]pendingCP
	wake    chan struct{}
}

type pendingCP struct {
	item cpItem
	h    *hostedRoom // to stamp its checkpoint age; nil for a forget
}

// maxCheckpointMessage bounds one stream message of checkpoints; a batch
// above it is split.
const maxCheckpointMessage = 1 << 20

func (s *sender) offer(it cpItem, h *hostedRoom) {
	s.mu.Lock()
	s.pending[it.room] = pendingCP{item: it, h: h}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run sends what is pending whenever there is some; it exits with the
// ownership, or once its peer has been gone and idle for a while.
func (s *sender) run() {
	defer s.o.wg.Done()
	idle := time.NewTimer(senderIdle)
	defer idle.Stop()
	for {
		select {
		case <-s.o.ctx.Done():
			return
		case <-idle.C:
			if s.retire() {
				return
			}
			idle.Reset(senderIdle)
			continue
		case <-s.wake:
		}
		s.mu.Lock()
		batch := s.pending
		s.pending = make(map[string]pendingCP, len(batch))
		s.mu.Unlock()
		s.send(batch)
		idle.Reset(senderIdle)
	}
}

// senderIdle is how long a sender waits without work before it checks
// whether its peer is still a member.
const senderIdle = 30 * time.Second

// retire removes the sender if its peer is gone and nothing is pending.
func (s *sender) retire() bool {
	if s.o.memberNode(s.peer) != nil {
		return false
	}
	s.o.mu.Lock()
	defer s.o.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) > 0 {
		return false
	}
	delete(s.o.senders, s.peer)
	return true
}

func (s *sender) send(batch map[string]pendingCP) {
	node := s.o.memberNode(s.peer)
	if node == nil {
		return // gone: what it held is of no use to anyone
	}
	items := make([]cpItem, 0, len(batch))
	stamps := make([]*hostedRoom, 0, len(batch))
	size := 0
	flush := func() {
		if len(items) == 0 {
			return
		}
		msg := encodeCheckpoints(s.o.n.name, items)
		if err := s.o.n.ml.SendReliable(node, msg); err != nil {
			s.o.stats.SendErrors.Add(1)
			s.o.n.log.Debug("checkpoints not sent", "peer", s.peer, "rooms", len(items), "err", err)
		} else {
			now := time.Now().UnixNano()
			for _, h := range stamps {
				if h != nil {
					h.cpAt.Store(now)
				}
			}
			s.o.stats.CheckpointsSent.Add(uint64(len(items)))
			s.o.stats.CheckpointBytesSent.Add(uint64(len(msg)))
		}
		items, stamps, size = items[:0], stamps[:0], 0
	}
	keys := make([]string, 0, len(batch))
	for k := range batch {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		p := batch[k]
		if size+len(p.item.data) > maxCheckpointMessage {
			flush()
		}
		items = append(items, p.item)
		stamps = append(stamps, p.h)
		size += len(p.item.data) + 64
	}
	flush()
}
