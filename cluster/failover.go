package cluster

import (
	"context"
	"slices"
	"time"

	"github.com/tickroom/tickroom/rooms"
)

// This file holds the keeper goroutine: it takes over rooms whose host's
// lease ran out (failover, from the latest checkpoint), gives this node's
// rooms new witnesses when theirs are gone, and prunes old copies.

func (o *ownership) keeper(ctx context.Context) {
	defer o.wg.Done()
	tick := time.NewTicker(o.n.cfg.ScanInterval)
	defer tick.Stop()
	var lastSlow time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		o.failover()
		if now := time.Now(); now.Sub(lastSlow) >= time.Second {
			lastSlow = now
			o.rewitness()
			o.pruneRecords(now)
			o.leases.forget(func(name string) bool { return o.memberNode(name) != nil })
		}
	}
}

// takeover is one room this node claims, with what it needs to restore it.
type takeover struct {
	claim
	data  []byte
	tick  uint64
	at    time.Time // when the checkpoint arrived
	votes int
	need  int
}

// failover claims, at the next epoch, every room this node witnesses
// whose host's lease has run out here (or that the host relinquished),
// for which this node is the designated successor, and restores those
// whose claim a majority of the room's group granted.
func (o *ownership) failover() {
	if o.n.draining.Load() || o.reg.Config().MaxRooms == 0 {
		return
	}
	alive := make(map[string]bool)
	for _, m := range o.n.Members() {
		if m.State == StateAlive || m.State == StateSuspect {
			alive[m.ID] = m.Self || m.Meta.Capacity > 0
		}
	}
	var mine []*takeover
	o.mu.Lock()
	for id, rec := range o.records {
		if rec.claiming || rec.host == o.n.name || len(rec.group) < 3 || rec.data == nil || len(mine) >= maxClaimsPerRound {
			continue
		}
		if o.leases.promised(rec.host) && !rec.relinquished {
			continue
		}
		if successor(rec.group, rec.host, alive) != o.n.name {
			continue
		}
		t := &takeover{
			claim: claim{room: id, epoch: rec.epoch + 1, host: o.n.name, prevEpoch: rec.epoch, prevHost: rec.host},
			data:  rec.data, tick: rec.tick, at: rec.at, need: majority(len(rec.group)),
		}
		// This node's own vote, recorded now so that it cannot vote for
		// another claim at the same epoch meanwhile.
		rec.claiming, rec.prevEpoch, rec.prevHost, rec.prevBy = true, rec.epoch, rec.host, rec.by
		rec.epoch, rec.host, rec.by = t.epoch, o.n.name, o.n.name
		t.votes = 1
		t.group = rec.group // voters: the old group; replaced by the new one below
		mine = append(mine, t)
	}
	o.mu.Unlock()
	if len(mine) == 0 {
		return
	}
	voters := make(map[string][]*takeover)
	for _, t := range mine {
		for _, v := range t.group {
			if v != o.n.name {
				voters[v] = append(voters[v], t)
			}
		}
		t.group = o.chooseGroup(t.room, o.n.name, nil, t.prevHost)
	}
	o.collectVotes(voters)
	for _, t := range mine {
		o.finishTakeover(t)
	}
}

// maxClaimsPerRound bounds the rooms one failover round claims, so that
// one round's messages stay small; the next round takes the rest.
const maxClaimsPerRound = 512

// successor is who takes over a room of group whose host is gone: the
// first member after the host, in the group's order, that is alive and
// can host rooms.
func successor(group []string, host string, alive map[string]bool) string {
	for _, g := range group {
		if g != host && alive[g] {
			return g
		}
	}
	return ""
}

// collectVotes sends each voter its claims, at once, and counts the
// grants into the takeovers.
func (o *ownership) collectVotes(voters map[string][]*takeover) {
	type answer struct {
		ts    []*takeover
		votes []vote
	}
	answers := make(chan answer, len(voters))
	for v, ts := range voters {
		cs := make([]claim, len(ts))
		for i, t := range ts {
			cs[i] = t.claim
		}
		if !o.goAsync(func() {
			m, err := o.call(v, o.n.cfg.ClaimTimeout, func(id uint64) []byte { return encodeClaims(o.n.name, id, cs) })
			if err != nil || len(m.votes) != len(ts) {
				answers <- answer{ts: ts}
				return
			}
			answers <- answer{ts: ts, votes: m.votes}
		}) {
			answers <- answer{ts: ts}
		}
	}
	for range voters {
		a := <-answers
		for i, v := range a.votes {
			if v.granted {
				a.ts[i].votes++
			}
		}
	}
}

// finishTakeover restores a won room, or gives a lost claim up.
func (o *ownership) finishTakeover(t *takeover) {
	won := t.votes >= t.need
	var room *rooms.Room
	var err error
	if won {
		room, err = o.reg.Restore(t.data, rooms.RestoreOptions{Epoch: t.epoch, Lease: o.leaseFor(t.group)})
	}
	o.mu.Lock()
	rec := o.records[t.room]
	if rec == nil || !rec.claiming {
		o.mu.Unlock()
		return
	}
	if !won || err != nil {
		rec.claiming = false
		if !won { // nobody else counted this vote: put the record back
			rec.epoch, rec.host, rec.by = rec.prevEpoch, rec.prevHost, rec.prevBy
		}
		o.mu.Unlock()
		if err != nil {
			o.stats.FailoverFailures.Add(1)
			o.n.log.Error("failover: room won but not restored", "room", t.room, "epoch", t.epoch, "err", err)
		}
		return
	}
	o.recBytes -= len(rec.data)
	delete(o.records, t.room)
	h := &hostedRoom{room: room, epoch: t.epoch, group: t.group}
	o.hosted[t.room] = h
	o.mu.Unlock()
	o.stats.Failovers.Add(1)
	o.n.log.Info("failover: room restored from its checkpoint", "room", t.room, "epoch", t.epoch,
		"from", t.prevHost, "tick", t.tick, "checkpoint_age", time.Since(t.at), "witnesses", t.group[1:])
	o.noteMove(Event{Kind: RoomFailedOver, Room: t.room, Epoch: t.epoch, From: t.prevHost, To: o.n.name})
}

// rewitness gives this node's rooms new groups when a witness is gone,
// draining or cut off, or when more witnesses are to be had: the room
// moves to the next epoch with the new group once a majority of its old
// group has recorded it (FAILOVER.md).
func (o *ownership) rewitness() {
	type change struct {
		h        *hostedRoom
		c        claim
		oldGroup []string
		votes    int
		need     int
	}
	var changes []*change
	o.mu.Lock()
	for id, h := range o.hosted {
		if h.busy || h.room.Fenced() || h.room.Frozen() || len(changes) >= maxClaimsPerRound {
			continue
		}
		g := o.chooseGroup(id, o.n.name, h.group[1:])
		if slices.Equal(g, h.group) || len(g) < len(h.group) && o.groupHealthy(h.group) {
			continue
		}
		need := 0
		if len(h.group) >= 3 {
			need = majority(len(h.group)) - 1 // this node is one
		}
		epoch := h.room.Epoch()
		h.busy = true
		changes = append(changes, &change{h: h, oldGroup: h.group, need: need,
			c: claim{room: id, epoch: epoch + 1, host: o.n.name, group: g, prevEpoch: epoch, prevHost: o.n.name}})
	}
	o.mu.Unlock()
	if len(changes) == 0 {
		return
	}
	voters := make(map[string][]*takeover)
	shadow := make(map[*takeover]*change)
	for _, ch := range changes {
		for _, v := range ch.oldGroup[1:] {
			t := &takeover{claim: ch.c}
			shadow[t] = ch
			voters[v] = append(voters[v], t)
		}
	}
	o.collectVotes(voters)
	for t, ch := range shadow {
		ch.votes += t.votes
	}
	for _, ch := range changes {
		o.mu.Lock()
		ch.h.busy = false
		ok := ch.votes >= ch.need && o.hosted[ch.c.room] == ch.h && ch.h.room.Epoch() == ch.c.prevEpoch
		if ok {
			ch.h.epoch, ch.h.group = ch.c.epoch, ch.c.group
			ch.h.room.SetEpoch(ch.c.epoch)
			o.setLease(ch.h.room, ch.c.group)
		}
		o.mu.Unlock()
		if !ok {
			continue
		}
		o.stats.Rewitnessed.Add(1)
		var dropped []string
		for _, g := range ch.oldGroup[1:] {
			if !slices.Contains(ch.c.group, g) {
				dropped = append(dropped, g)
			}
		}
		o.forgetAt(ch.c.room, ch.c.epoch, dropped)
		o.n.log.Debug("room has new witnesses", "room", ch.c.room, "epoch", ch.c.epoch, "witnesses", ch.c.group[1:])
	}
}

// groupHealthy reports whether every witness of group is still healthy.
// The caller holds o.mu.
func (o *ownership) groupHealthy(group []string) bool {
	for _, g := range group[1:] {
		m, ok := o.n.member(g)
		if !ok || !o.healthyPeer(&m) {
			return false
		}
	}
	return true
}
