package cluster

import (
	"slices"
	"time"
)

// This file holds the witness's side: the copies of other hosts' rooms
// (their latest checkpoints) and the votes that decide who may run a room
// at a new epoch.

// record is a witness's knowledge of one room: who runs it at which
// epoch, with which group, and its latest checkpoint (possibly from an
// older epoch: the best there is until the new host sends one).
type record struct {
	epoch        uint64
	host         string
	group        []string
	data         []byte
	tick         uint64
	at           time.Time // when data arrived
	relinquished bool      // the host said it stopped the room at epoch
	by           string    // whose claim made (epoch, host): only it may undo its move
	// A claim of this node's own under way: the record says (epoch,
	// host) = (claimed epoch, this node) until it is won or given up, when
	// prev is put back.
	claiming  bool
	prevEpoch uint64
	prevHost  string
	prevBy    string
}

// onCheckpoints stores a host's checkpoints. A checkpoint for a room
// known at a higher epoch, or at its epoch on another host, is refused,
// and the sender told: it runs a room it lost.
func (o *ownership) onCheckpoints(m *peerMessage) {
	var stale []staleRoom
	now := time.Now()
	o.mu.Lock()
	for _, it := range m.items {
		if h := o.hosted[it.room]; h != nil {
			if it.data != nil && h.room.Epoch() >= it.epoch {
				stale = append(stale, staleRoom{room: it.room, epoch: h.room.Epoch(), host: o.n.name})
			}
			continue
		}
		rec := o.records[it.room]
		if it.data == nil { // the room closed, or moved on without this witness
			if rec != nil && rec.epoch <= it.epoch && !rec.claiming && (rec.host == m.from || rec.epoch < it.epoch) {
				o.recBytes -= len(rec.data)
				delete(o.records, it.room)
			}
			continue
		}
		if rec != nil && (rec.epoch > it.epoch || (rec.epoch == it.epoch && rec.host != m.from)) {
			o.stats.CheckpointsRefused.Add(1)
			stale = append(stale, staleRoom{room: it.room, epoch: rec.epoch, host: rec.host})
			continue
		}
		if !slices.Contains(it.group, o.n.name) || len(it.group) == 0 || it.group[0] != m.from {
			o.stats.Dropped.Add(1) // not a witness of it: a bug or a stale group
			continue
		}
		if rec == nil {
			if len(o.records) >= maxRecords || o.recBytes+len(it.data) > o.n.cfg.MaxWitnessBytes {
				o.stats.Dropped.Add(1)
				continue
			}
			rec = &record{}
			o.records[it.room] = rec
		}
		o.recBytes += len(it.data) - len(rec.data)
		if rec.epoch != it.epoch || rec.host != m.from {
			rec.by = m.from
		}
		rec.epoch, rec.host, rec.group = it.epoch, m.from, it.group
		rec.data, rec.tick, rec.at = it.data, it.tick, now
		rec.relinquished = false
		o.stats.CheckpointsStored.Add(1)
	}
	o.mu.Unlock()
	if len(stale) > 0 {
		o.goAsync(func() { o.reply(m.from, encodeStale(o.n.name, stale)) })
	}
}

// maxRecords bounds the rooms a node witnesses.
const maxRecords = 1 << 18

// onRelinquish marks rooms whose host stopped them for good: they may be
// taken over without waiting for the host's lease to run out here.
func (o *ownership) onRelinquish(m *peerMessage) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range m.stale {
		if rec := o.records[s.room]; rec != nil && rec.host == m.from && rec.epoch == s.epoch {
			rec.relinquished = true
		}
	}
}

// vote answers claims from a peer, recording what it grants. The rules
// (FAILOVER.md): never two hosts at one epoch; a claim supersedes only
// the record it names; a takeover only once the old host's lease has run
// out here (or the host relinquished the room); never against a room this
// node runs.
func (o *ownership) vote(from string, cs []claim) []vote {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]vote, len(cs))
	for i, c := range cs {
		out[i] = o.voteLocked(from, c)
		if out[i].granted {
			o.stats.VotesGranted.Add(1)
		} else {
			o.stats.VotesRefused.Add(1)
		}
	}
	return out
}

func (o *ownership) voteLocked(from string, c claim) vote {
	if h := o.hosted[c.room]; h != nil {
		return vote{epoch: h.room.Epoch(), host: o.n.name}
	}
	rec := o.records[c.room]
	if rec != nil {
		switch {
		case rec.epoch > c.epoch:
			return vote{epoch: rec.epoch, host: rec.host}
		case rec.epoch == c.epoch:
			return vote{granted: rec.host == c.host, epoch: rec.epoch, host: rec.host}
		case rec.epoch > c.prevEpoch || (rec.epoch == c.prevEpoch && rec.host != c.prevHost):
			return vote{epoch: rec.epoch, host: rec.host} // it supersedes something else
		}
	}
	// The room's host moving its own room, or the author of a move
	// taking it back, needs no expired lease; anyone else takes over.
	own := from == c.prevHost || (rec != nil && rec.by == from && rec.epoch == c.prevEpoch && rec.host == c.prevHost)
	if !own {
		relinquished := rec != nil && rec.relinquished && rec.epoch == c.prevEpoch
		if o.leases.promised(c.prevHost) && !relinquished {
			if rec != nil {
				return vote{epoch: rec.epoch, host: rec.host}
			}
			return vote{epoch: c.prevEpoch, host: c.prevHost}
		}
	}
	if rec == nil {
		rec = &record{}
		o.records[c.room] = rec
	}
	rec.epoch, rec.host, rec.group, rec.by = c.epoch, c.host, c.group, from
	rec.relinquished, rec.claiming = false, false
	return vote{granted: true, epoch: c.epoch, host: c.host}
}

// pruneRecords drops copies nobody can use: rooms of hosts long gone
// whose group cannot take them over, and rooms whose host is this node's
// former self. The keeper calls it.
func (o *ownership) pruneRecords(now time.Time) {
	members := make(map[string]bool)
	for _, m := range o.n.ml.Members() {
		members[m.Name] = true
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for id, rec := range o.records {
		if rec.claiming {
			continue
		}
		if !members[rec.host] && now.Sub(rec.at) > o.n.cfg.TombstoneTTL {
			o.recBytes -= len(rec.data)
			delete(o.records, id)
		}
	}
	for id, r := range o.released {
		if now.Sub(r.at) > o.n.cfg.TombstoneTTL {
			delete(o.released, id)
		}
	}
}
