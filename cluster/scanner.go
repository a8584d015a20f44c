package cluster

import (
	"context"
	"time"
)

// This file holds the scanner goroutine: the host's side of the
// directory (publishing its rooms' changes), its gossiped metadata, and
// the sweep of entries whose host is gone.

// scanner publishes, every ScanInterval, what changed in this node's
// rooms; gossips the metadata when a flag changes or, for load, at most
// every MetaInterval; and sweeps the directory once a second.
func (n *Node) scanner(ctx context.Context) {
	defer n.wg.Done()
	own := make(map[string]Entry) // this node's rooms as last published
	seen := make(map[string]bool)
	tick := time.NewTicker(n.cfg.ScanInterval)
	defer tick.Stop()
	var lastMeta, lastSweep time.Time
	members := 0
	metaPending := false // a flag change or a forced update waits for the one under way
	for {
		metaNow := false
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-n.metaDirty:
			metaNow = true
		}
		now := time.Now()
		n.publishRooms(own, seen, now)
		// A member joining may have missed the last metadata update (one
		// gossiped while the cluster was smaller): say it again.
		force := false
		if m := int(n.alives.Load()); m > members {
			force = m > 1
			members = m
		} else {
			members = m
		}
		if force || metaNow || metaPending || now.Sub(lastMeta) >= n.cfg.MetaInterval {
			published, busy := n.publishMetaIfChanged(force || metaPending)
			metaPending = busy && (force || metaNow || metaPending)
			if published {
				lastMeta = now
			}
		}
		if now.Sub(lastSweep) >= time.Second {
			lastSweep = now
			if dropped := n.dir.sweep(now, n.cfg.TombstoneTTL, n.cfg.OrphanGrace, n.alive); dropped > 0 {
				n.log.Info("dropped directory entries whose host is gone", "entries", dropped)
			}
		}
	}
}

// publishRooms compares the registry's rooms with own, the entries last
// published, and merges and broadcasts every difference: new and changed
// rooms with a higher version, closed ones as tombstones.
func (n *Node) publishRooms(own map[string]Entry, seen map[string]bool, now time.Time) {
	clear(seen)
	ms := now.UnixMilli()
	var changed []Entry
	for _, r := range n.listRooms() {
		id := r.id
		seen[id] = true
		cur := Entry{
			Room: id, Host: n.name, Epoch: r.epoch, Mode: r.mode,
			MaxPlayers: r.maxPlayers, Players: r.players, Private: r.private,
		}
		old, ok := own[id]
		if ok && old.Epoch == cur.Epoch && old.Players == cur.Players && old.MaxPlayers == cur.MaxPlayers && old.Private == cur.Private {
			continue
		}
		cur.Version = old.Version + 1
		cur.Changed = ms
		own[id] = cur
		n.dir.merge(cur, now, false)
		changed = append(changed, cur)
	}
	for id, old := range own {
		if seen[id] {
			continue
		}
		if n.own != nil && n.own.wasReleased(id) {
			delete(own, id) // it runs on elsewhere: no tombstone
			continue
		}
		old.Closed = true
		old.Version++
		old.Changed = ms
		delete(own, id)
		n.dir.merge(old, now, false)
		changed = append(changed, old)
	}
	if len(changed) > 0 {
		n.broadcast(changed)
	}
}

// roomInfo is what the directory publishes of one of this node's rooms.
type roomInfo struct {
	id, mode            string
	maxPlayers, players int
	private             bool
	epoch               uint64
}

// registryRooms lists the registry's rooms.
func (n *Node) registryRooms() []roomInfo {
	list := n.reg.List()
	out := make([]roomInfo, len(list))
	for i, r := range list {
		out[i] = roomInfo{id: r.ID(), mode: r.Mode(), maxPlayers: r.MaxPlayers(), players: r.Players(), private: r.Private(), epoch: r.Epoch()}
	}
	return out
}

// currentMeta is this node's metadata now.
func (n *Node) currentMeta() Meta {
	rooms := n.listRooms()
	players := 0
	for _, r := range rooms {
		players += r.players
	}
	return Meta{
		Name:     n.cfg.NodeName,
		GameURL:  n.cfg.GameURL,
		AdminURL: n.cfg.AdminURL,
		Draining: n.draining.Load(),
		Ready:    n.ready.Load(),
		Rooms:    len(rooms),
		Players:  players,
		Capacity: max(n.reg.Config().MaxRooms-len(rooms), 0),
	}
}

// publishMeta sets the metadata memberlist gossips (NodeMeta reads it).
func (n *Node) publishMeta() error {
	p, err := encodeMeta(n.currentMeta())
	if err != nil {
		return err
	}
	n.meta.Store(&p)
	return nil
}

// publishMetaIfChanged gossips the metadata if it changed, or if force,
// and reports whether it did, or could not because the last update is
// still under way (busy: the caller tries again). memberlist's UpdateNode
// waits until the update is sent, up to a second; it runs on a goroutine
// of its own, one at a time, so that the scanner keeps publishing rooms.
func (n *Node) publishMetaIfChanged(force bool) (published, busy bool) {
	p, err := encodeMeta(n.currentMeta())
	if err != nil {
		n.log.Warn("cannot encode this node's metadata", "err", err)
		return false, false
	}
	if old := n.meta.Load(); !force && old != nil && string(*old) == string(p) {
		return false, false
	}
	if !n.metaBusy.CompareAndSwap(false, true) {
		return false, true
	}
	n.meta.Store(&p)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer n.metaBusy.Store(false)
		if err := n.ml.UpdateNode(time.Second); err != nil {
			n.log.Debug("metadata update not yet acknowledged by gossip", "err", err)
		}
	}()
	return true, false
}
