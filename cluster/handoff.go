package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/tickroom/tickroom/rooms"
)

// This file holds live hand-off: moving a running room to another node
// without losing a tick of it (FAILOVER.md), one room at a time (Move) or
// every room of a draining node (Drain).

// Sentinel errors of Move and Drain.
var (
	// ErrNoOwnership: the node does not checkpoint or hand rooms off
	// (no cluster key, or replication turned off).
	ErrNoOwnership = errors.New("cluster: rooms are not replicated on this node (no cluster key)")
	// ErrNoTarget: no other node can take the room.
	ErrNoTarget = errors.New("cluster: no node can take the room")
	// ErrRoomNotHere: the room does not run on this node.
	ErrRoomNotHere = errors.New("cluster: the room does not run on this node")
)

// MoveResult describes a finished hand-off.
type MoveResult struct {
	Room   string
	To     string // the target's human name
	ToID   string // its gossip name
	Epoch  uint64 // the room's epoch on the target
	Tick   uint64 // the last tick it ran here; it runs tick+1 on the target
	Freeze time.Duration
}

// Move hands the room roomID to the node named to (a human or gossip
// name; empty: placement chooses) and tells its players to follow. On
// failure the room stays here and runs on.
func (n *Node) Move(ctx context.Context, roomID, to string) (MoveResult, error) {
	o := n.own
	if o == nil {
		return MoveResult{}, ErrNoOwnership
	}
	r, ok := n.reg.Get(roomID)
	if !ok {
		return MoveResult{}, fmt.Errorf("%w: %s", ErrRoomNotHere, roomID)
	}
	target, err := o.target(to)
	if err != nil {
		return MoveResult{}, err
	}
	return o.move(ctx, r, target)
}

// target picks the member a room goes to: the one named, or the least
// loaded node placement would create a room on.
func (o *ownership) target(to string) (Member, error) {
	for _, m := range o.n.Members() {
		if to != "" && m.ID != to && m.Meta.Name != to {
			continue
		}
		if m.Self {
			if to != "" {
				return Member{}, fmt.Errorf("%w: %s is this node", ErrNoTarget, to)
			}
			continue
		}
		if to != "" {
			if !o.healthyPeer(&m) || m.Meta.Capacity == 0 || m.Meta.GameURL == "" {
				return Member{}, fmt.Errorf("%w: %s is not an alive, ready node with room to spare", ErrNoTarget, to)
			}
			return m, nil
		}
	}
	if to != "" {
		return Member{}, fmt.Errorf("%w: no member %s", ErrNoTarget, to)
	}
	var best *Member
	for _, m := range o.n.Members() {
		if !o.healthyPeer(&m) || !m.Meta.Ready || m.Meta.Capacity == 0 || m.Meta.GameURL == "" {
			continue
		}
		if best == nil || m.Meta.Rooms+m.Meta.Players < best.Meta.Rooms+best.Meta.Players {
			best = &m
		}
	}
	if best == nil {
		return Member{}, ErrNoTarget
	}
	return *best, nil
}

// move runs one hand-off: freeze at the end of tick T, have a majority of
// the room's group record (epoch+1, target), send the target the room as
// it stands (with the inputs that arrived meanwhile), and once the target
// runs it from T+1, tell the players where it went. Until the group has
// recorded the move, a failure thaws the room here; after, the room is
// sent again, or put back here at the epoch after that.
func (o *ownership) move(ctx context.Context, r *rooms.Room, target Member) (MoveResult, error) {
	o.mu.Lock()
	h := o.hostedForLocked(r)
	if h.busy {
		o.mu.Unlock()
		return MoveResult{}, fmt.Errorf("cluster: room %s is already moving", r.ID())
	}
	h.busy = true
	oldGroup := h.group
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		h.busy = false
		o.mu.Unlock()
	}()

	frozenAt := time.Now()
	if _, err := r.Freeze(); err != nil {
		return MoveResult{}, fmt.Errorf("cluster: move %s: %w", r.ID(), err)
	}
	epoch := r.Epoch()
	newGroup := o.chooseGroup(r.ID(), target.ID, nil, o.n.name)
	c := claim{room: r.ID(), epoch: epoch + 1, host: target.ID, group: newGroup, prevEpoch: epoch, prevHost: o.n.name}
	if !o.recordMove(oldGroup, c) {
		_ = r.Thaw()
		o.stats.HandOffFailures.Add(1)
		return MoveResult{}, fmt.Errorf("cluster: move %s: the room's witnesses did not record the move", r.ID())
	}
	var sendErr error
	for attempt := range handOffAttempts {
		cp, err := r.Checkpoint() // frozen: the state of tick T, and the inputs queued since
		if err != nil {
			sendErr = err
			break
		}
		if sendErr = o.sendRoom(ctx, target.ID, c, cp); sendErr == nil {
			break
		}
		o.n.log.Warn("hand-off not taken; trying again", "room", r.ID(), "to", target.Meta.Name, "attempt", attempt+1, "err", sendErr)
	}
	if sendErr != nil {
		o.stats.HandOffFailures.Add(1)
		// Take it back at the epoch after the move: the voters that
		// recorded the move grant this node, its author, the undo.
		back := claim{room: r.ID(), epoch: epoch + 2, host: o.n.name, group: oldGroup, prevEpoch: epoch + 1, prevHost: target.ID}
		if o.recordMove(oldGroup, back) {
			r.SetEpoch(back.epoch)
			o.mu.Lock()
			h.epoch = back.epoch
			o.mu.Unlock()
			_ = r.Thaw()
			return MoveResult{}, fmt.Errorf("cluster: move %s to %s failed; it runs here again: %w", r.ID(), target.Meta.Name, sendErr)
		}
		o.n.log.Error("hand-off failed and the room cannot be taken back; its players are sent to reconnect", "room", r.ID(), "err", sendErr)
		o.markReleased(r.ID(), 0)
		_ = r.Release(rooms.MovedTo{})
		return MoveResult{}, fmt.Errorf("cluster: move %s: %w", r.ID(), sendErr)
	}
	tick := r.Stats().Ticks.Load()
	o.markReleased(r.ID(), c.epoch)
	o.n.dir.merge(o.movedEntry(r, c), time.Now(), false)
	if err := r.Release(rooms.MovedTo{URL: target.Meta.GameURL, Node: target.Meta.Name, Epoch: c.epoch}); err != nil {
		o.n.log.Warn("moved room not released here", "room", r.ID(), "err", err)
	}
	freeze := time.Since(frozenAt)
	o.stats.Freeze.Record(freeze)
	o.stats.HandOffs.Add(1)
	o.mu.Lock()
	if o.hosted[r.ID()] == h {
		delete(o.hosted, r.ID())
	}
	o.mu.Unlock()
	var dropped []string
	for _, g := range oldGroup[1:] {
		if !slices.Contains(newGroup, g) {
			dropped = append(dropped, g)
		}
	}
	o.forgetAt(r.ID(), c.epoch, dropped)
	o.n.log.Info("room handed off", "room", r.ID(), "to", target.Meta.Name, "epoch", c.epoch, "freeze", freeze)
	o.noteMove(Event{Kind: RoomHandedOff, Room: r.ID(), Epoch: c.epoch, From: o.n.name, To: target.ID, Freeze: freeze})
	return MoveResult{Room: r.ID(), To: target.Meta.Name, ToID: target.ID, Epoch: c.epoch, Tick: tick, Freeze: freeze}, nil
}

// handOffAttempts is how often a hand-off's room is sent before it is put
// back.
const handOffAttempts = 3

// movedEntry is the directory entry of a room this node just handed to
// c.host, so that lookups here point there before the target's own entry
// arrives (which supersedes it: version 0).
func (o *ownership) movedEntry(r *rooms.Room, c claim) Entry {
	return Entry{Room: r.ID(), Host: c.host, Epoch: c.epoch, Mode: r.Mode(), MaxPlayers: r.MaxPlayers(),
		Players: r.Players(), Private: r.Private(), Changed: time.Now().UnixMilli()}
}

// recordMove has the voters of group record c; it reports whether a
// majority of the group did (this node, the room's host, is one).
func (o *ownership) recordMove(group []string, c claim) bool {
	need := 0
	if len(group) >= 3 {
		need = majority(len(group)) - 1
	}
	voters := make(map[string][]*takeover)
	var ts []*takeover
	for _, v := range group[1:] {
		t := &takeover{claim: c}
		ts = append(ts, t)
		voters[v] = append(voters[v], t)
	}
	o.collectVotes(voters)
	votes := 0
	for _, t := range ts {
		votes += t.votes
	}
	return votes >= need
}

// sendRoom sends the target the room and waits until it runs there.
func (o *ownership) sendRoom(ctx context.Context, target string, c claim, cp []byte) error {
	timeout := o.n.cfg.HandOffTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	m, err := o.call(target, timeout, func(id uint64) []byte { return encodeHandOff(o.n.name, id, c.epoch, c.group, cp) })
	if err != nil {
		return err
	}
	if m.errText != "" {
		return errors.New(m.errText)
	}
	return nil
}

// onHandOff takes a room another node hands to this one: it restores it
// at the hand-off's epoch, fenced by its new group, and answers.
func (o *ownership) onHandOff(m *peerMessage) {
	errText := ""
	if len(m.group) == 0 || m.group[0] != o.n.name {
		errText = "the hand-off names another host"
	} else if o.n.draining.Load() {
		errText = "the target is draining"
	}
	if errText == "" {
		room, err := o.reg.Restore(m.data, rooms.RestoreOptions{Epoch: m.epoch, Lease: o.leaseFor(m.group)})
		if errors.Is(err, rooms.ErrRoomExists) {
			// A retried hand-off whose first attempt arrived: it runs.
			if r, ok := o.reg.Get(roomIDOf(m.data)); ok && r.Epoch() == m.epoch {
				err, room = nil, nil
			}
		}
		if err != nil {
			errText = err.Error()
		} else if room != nil {
			o.mu.Lock()
			if rec := o.records[room.ID()]; rec != nil {
				o.recBytes -= len(rec.data)
				delete(o.records, room.ID())
			}
			o.hosted[room.ID()] = &hostedRoom{room: room, epoch: m.epoch, group: m.group}
			delete(o.released, room.ID())
			o.mu.Unlock()
			o.stats.HandOffsReceived.Add(1)
			o.n.log.Info("room received", "room", room.ID(), "from", m.from, "epoch", m.epoch)
			o.noteMove(Event{Kind: RoomReceived, Room: room.ID(), Epoch: m.epoch, From: m.from, To: o.n.name})
		}
	}
	o.reply(m.from, encodeHandOffDone(o.n.name, m.seq, errText))
}

// roomIDOf returns the room id in an encoded checkpoint, or "".
func roomIDOf(cp []byte) string {
	c, err := rooms.DecodeCheckpoint(cp)
	if err != nil {
		return ""
	}
	return c.RoomID
}

// Drain makes the node take no new rooms and hands every room it runs to
// other nodes, a few at a time, until none is left or ctx ends. Rooms
// that cannot move are tried again until then.
func (n *Node) Drain(ctx context.Context) error {
	n.SetDraining(true)
	o := n.own
	if o == nil {
		return ErrNoOwnership
	}
	for {
		list := n.reg.List()
		if len(list) == 0 {
			return nil
		}
		sem := make(chan struct{}, n.cfg.DrainConcurrency)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var errs []error
		for _, r := range list {
			if r.Fenced() {
				continue // its own path sends its players on
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				wg.Wait()
				return fmt.Errorf("cluster: drain: %d rooms left: %w", len(n.reg.List()), ctx.Err())
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				target, err := o.target("")
				if err == nil {
					_, err = o.move(ctx, r, target)
				}
				if err != nil && !errors.Is(err, rooms.ErrRoomClosed) {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(errs) > 0 {
			n.log.Warn("drain: some rooms did not move; trying again", "failed", len(errs), "first", errs[0])
			select {
			case <-time.After(500 * time.Millisecond):
			case <-ctx.Done():
				return fmt.Errorf("cluster: drain: %d rooms left: %w", len(n.reg.List()), errors.Join(ctx.Err(), errs[0]))
			}
		} else {
			select {
			case <-time.After(n.cfg.ScanInterval):
			case <-ctx.Done():
				return fmt.Errorf("cluster: drain: %d rooms left: %w", len(n.reg.List()), ctx.Err())
			}
		}
	}
}
