package cluster

import (
	"time"

	"github.com/hashicorp/memberlist"
)

// delegate receives memberlist's callbacks, on memberlist's goroutines.
// None of them blocks: they decode, merge into the directory and queue
// relays.
type delegate struct{ n *Node }

// NodeMeta implements memberlist.Delegate.
func (d *delegate) NodeMeta(limit int) []byte {
	p := *d.n.meta.Load()
	if len(p) > limit {
		return nil // cannot happen: the fields are bounded well below the limit
	}
	return p
}

// NotifyMsg implements memberlist.Delegate: a directory delta, relayed
// on first receipt.
func (d *delegate) NotifyMsg(p []byte) {
	n := d.n
	if len(p) > 0 && p[0] >= msgRenew && p[0] <= msgRelinquish {
		if n.own == nil {
			n.stats.Dropped.Add(1) // replication is off here
			return
		}
		n.own.handle(p)
		return
	}
	typ, es, err := decodeEntries(p)
	if err != nil || typ != msgEntries {
		n.stats.Dropped.Add(1)
		n.log.Debug("dropped a bad gossip message", "err", err, "type", typ, "bytes", len(p))
		return
	}
	now := time.Now()
	fresh := es[:0]
	for _, e := range es {
		if e.Host == n.name {
			continue // this node writes its own entries; a copy is old news
		}
		if n.dir.merge(e, now, true) {
			fresh = append(fresh, e)
		}
	}
	if len(fresh) > 0 {
		n.relay(fresh)
	}
}

// GetBroadcasts implements memberlist.Delegate.
// This node's own changes go first; relays fill what room is left.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	out := d.n.queue.GetBroadcasts(overhead, limit)
	used := 0
	for _, b := range out {
		used += overhead + len(b)
	}
	if limit-used > overhead {
		out = append(out, d.n.relays.GetBroadcasts(overhead, limit-used)...)
	}
	return out
}

// LocalState implements memberlist.Delegate: the whole directory, for a
// join's push/pull and every directoryRepairEvery-th other one; the rest
// carry only membership (memberlist's own part), which repairs a missed
// metadata update within a PushPullInterval.
func (d *delegate) LocalState(join bool) []byte {
	if !join && d.n.pushPulls.Add(1)%directoryRepairEvery != 0 {
		return encodeEntries(msgState, nil)
	}
	return encodeEntries(msgState, d.n.dir.all())
}

// directoryRepairEvery is how many push/pulls go by between full
// directories: at a 10 s PushPullInterval, one a minute, ~32 KB each way
// at 1,000 rooms. The relayed deltas are the directory's real channel.
const directoryRepairEvery = 6

// MergeRemoteState implements memberlist.Delegate. What a full state
// teaches is not relayed: every node repairs through its own push/pulls.
func (d *delegate) MergeRemoteState(p []byte, join bool) {
	n := d.n
	typ, es, err := decodeEntries(p)
	if err != nil || typ != msgState {
		n.stats.Dropped.Add(1)
		n.log.Debug("dropped a bad push/pull state", "err", err, "type", typ, "bytes", len(p))
		return
	}
	now := time.Now()
	for _, e := range es {
		if e.Host != n.name {
			n.dir.merge(e, now, true)
		}
	}
}

// NotifyJoin implements memberlist.EventDelegate. A member this node had
// taken for dead (a false death, or a healed partition) had its entries
// dropped here, and cannot know: the joiner joins it again, which swaps
// full directories at once rather than at the next repair.
func (d *delegate) NotifyJoin(node *memberlist.Node) {
	if d.n.dir.hostAlive(node.Name) && node.Name != d.n.name {
		select {
		case d.n.revived <- node.Address():
		default: // a burst of revivals: the periodic rejoin and push/pull repair the rest
		}
	}
	d.n.memberChanged(node, StateAlive)
}

// NotifyUpdate implements memberlist.EventDelegate.
func (d *delegate) NotifyUpdate(node *memberlist.Node) {
	d.n.memberChanged(node, StateAlive)
}

// NotifyLeave implements memberlist.EventDelegate: the member died or
// left, and its rooms leave the directory with it.
func (d *delegate) NotifyLeave(node *memberlist.Node) {
	n := d.n
	state := memberState(node.State)
	if state == StateAlive {
		state = StateDead
	}
	n.memberChanged(node, state)
	if node.Name != n.name {
		dropped := n.dir.hostGone(node.Name, time.Now())
		n.log.Info("member gone", "member", node.Name, "state", state, "rooms_dropped", dropped)
	}
}

// memberChanged records a member's state and metadata.
func (n *Node) memberChanged(node *memberlist.Node, state MemberState) {
	meta, err := decodeMeta(node.Meta)
	m := &Member{
		ID:      node.Name,
		Addr:    node.Address(),
		State:   state,
		Meta:    meta,
		Self:    node.Name == n.name,
		Since:   time.Now(),
		BadMeta: err != nil,
	}
	if err != nil && len(node.Meta) > 0 {
		n.stats.Dropped.Add(1)
	}
	n.membersMu.Lock()
	old := n.members[node.Name]
	if old != nil && old.State == state {
		m.Since = old.Since
	}
	n.members[node.Name] = m
	// Forget the long departed, so that a churning cluster's table stays
	// bounded.
	alive := int32(0)
	for id, o := range n.members {
		if (o.State == StateDead || o.State == StateLeft) && time.Since(o.Since) > n.cfg.TombstoneTTL {
			delete(n.members, id)
		}
		if o.State == StateAlive {
			alive++
		}
	}
	n.alives.Store(alive)
	n.membersMu.Unlock()
	var kind EventKind
	switch {
	case state == StateAlive && (old == nil || old.State != StateAlive):
		kind = MemberJoined
	case state == StateAlive:
		kind = MemberUpdated
	case old != nil && old.State == state:
		return // the same departure, told twice
	case state == StateLeft:
		kind = MemberLeft
	default:
		kind = MemberFailed
	}
	if kind != MemberUpdated {
		n.log.Info("member "+state.String(), "member", node.Name, "name", meta.Name, "addr", m.Addr)
	}
	n.emit(Event{Kind: kind, Member: *m})
}

// emit queues e for Events, or counts it lost when nobody keeps up.
func (n *Node) emit(e Event) {
	select {
	case n.events <- e:
	default:
		n.eventsLost.Add(1)
	}
}

// broadcast queues this node's changed entries for gossip, in messages
// that each fit a gossip packet.
func (n *Node) broadcast(es []Entry) { queueEntries(n.queue, es) }

// relay queues other hosts' entries, learnt just now, to pass them on.
func (n *Node) relay(es []Entry) { queueEntries(n.relays, es) }

// maxQueued bounds each broadcast queue, in messages: more changes than
// gossip carries (a few KB/s) would otherwise grow it, and the lag, for
// ever. memberlist prunes the most sent first; push/pull repairs what the
// pruned carried.
const maxQueued = 4096

// maxBroadcast bounds one directory message: with memberlist's headers
// it fits the 1,400-byte gossip packet beside others.
const maxBroadcast = 1000

// queueEntries queues es in as few messages as fit maxBroadcast. Few
// messages matter: memberlist drops user messages beyond a queue of 1,024
// on the receiving side, however small they are.
func queueEntries(q *memberlist.TransmitLimitedQueue, es []Entry) {
	defer q.Prune(maxQueued)
	for len(es) > 0 {
		k := len(es)
		msg := encodeEntries(msgEntries, es[:k])
		for len(msg) > maxBroadcast && k > 1 {
			k = max(k*maxBroadcast/len(msg), 1)
			msg = encodeEntries(msgEntries, es[:k])
		}
		q.QueueBroadcast(entriesBroadcast(msg))
		es = es[k:]
	}
}

// entriesBroadcast is one queued directory message. Messages never
// replace each other (memberlist.UniqueBroadcast): a receiver keeps the
// newest version of each entry whatever order they come in.
type entriesBroadcast []byte

func (b entriesBroadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b entriesBroadcast) Message() []byte                       { return b }
func (b entriesBroadcast) Finished()                             {}
func (b entriesBroadcast) UniqueBroadcast()                      {}
