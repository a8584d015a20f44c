package cluster

import (
	"slices"
	"sync"
	"time"
)

// Entry is one room in the directory. Only the room's host writes it; a
// newer entry has a higher (Epoch, Version).
type Entry struct {
	Room       string
	Host       string // the host's gossip name (unique per process start)
	Epoch      uint64 // the room's incarnation: grows when a room changes hosts
	Version    uint64 // grows with every change the host publishes
	Mode       string
	MaxPlayers int
	Players    int // seats taken, held ones included
	Private    bool
	Closed     bool  // a tombstone: the room is gone
	Changed    int64 // when the host made this version, Unix milliseconds (for the convergence lag)
}

// newer reports whether e supersedes o, the entry already held for the
// same room.
func (e *Entry) newer(o *Entry) bool {
	if e.Epoch != o.Epoch {
		return e.Epoch > o.Epoch
	}
	if e.Version != o.Version {
		return e.Version > o.Version
	}
	// Same epoch and version from two hosts cannot come from one writer;
	// pick one deterministically so every node agrees.
	return e.Host > o.Host
}

// FreeSeats returns the seats still free.
func (e *Entry) FreeSeats() int { return max(e.MaxPlayers-e.Players, 0) }

// directory is a node's copy of the cluster's rooms. Its methods are safe
// for concurrent use: memberlist's goroutines merge into it, the scanner
// writes the host's own entries, and readers on connection goroutines
// route from it.
type directory struct {
	mu      sync.RWMutex
	entries map[string]*dirEntry
	dead    map[string]time.Time // hosts that died: their late entries are refused

	lag     lagRing // how long entries took to arrive here
	refused uint64  // new entries refused because the directory is full
}

// maxDirectory bounds the entries a node holds, tombstones included: far
// above any cluster's rooms (each node runs at most 10,000 by default), so
// it binds only against a peer that floods invented rooms.
const maxDirectory = 1 << 20

type dirEntry struct {
	Entry
	orphaned time.Time // when its host was first seen missing; zero while alive
	closedAt time.Time // when the tombstone arrived
}

func newDirectory() *directory {
	return &directory{entries: make(map[string]*dirEntry), dead: make(map[string]time.Time)}
}

// merge applies an entry from a peer (remote), or from this node's own
// scanner, and reports whether it changed the directory (and so is worth
// relaying).
func (d *directory) merge(e Entry, now time.Time, remote bool) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, dead := d.dead[e.Host]; dead {
		return false
	}
	old := d.entries[e.Room]
	if old != nil && !e.newer(&old.Entry) {
		return false
	}
	if old == nil && len(d.entries) >= maxDirectory {
		d.refused++
		return false
	}
	de := &dirEntry{Entry: e}
	if e.Closed {
		de.closedAt = now
	}
	d.entries[e.Room] = de
	if remote && e.Changed > 0 {
		d.lag.add(now.Sub(time.UnixMilli(e.Changed)))
	}
	return true
}

// hostGone drops every entry of host, which died or left, and refuses its
// late entries until it is seen alive again.
func (d *directory) hostGone(host string, now time.Time) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dead[host] = now
	n := 0
	for id, e := range d.entries {
		if e.Host == host {
			delete(d.entries, id)
			n++
		}
	}
	return n
}

// hostAlive lets entries of host in again (a node declared dead that
// refuted it after a partition healed), and reports whether it had been
// dead.
func (d *directory) hostAlive(host string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, wasDead := d.dead[host]
	delete(d.dead, host)
	return wasDead
}

// sweep drops tombstones older than ttl, entries whose host has not been
// an alive member for grace, and forgets dead hosts after ttl. alive
// reports whether a host is an alive member; it is asked once per host,
// before the directory is locked.
func (d *directory) sweep(now time.Time, ttl, grace time.Duration, alive func(string) bool) (dropped int) {
	d.mu.RLock()
	hosts := make(map[string]bool)
	for _, e := range d.entries {
		hosts[e.Host] = false
	}
	d.mu.RUnlock()
	for h := range hosts {
		hosts[h] = alive(h)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, e := range d.entries {
		isAlive, known := hosts[e.Host]
		switch {
		case e.Closed && now.Sub(e.closedAt) > ttl:
			delete(d.entries, id)
		case isAlive || !known: // !known: arrived since; next sweep
			e.orphaned = time.Time{}
		case e.orphaned.IsZero():
			e.orphaned = now
		case now.Sub(e.orphaned) > grace:
			delete(d.entries, id)
			dropped++
		}
	}
	for h, at := range d.dead {
		if now.Sub(at) > ttl {
			delete(d.dead, h)
		}
	}
	return dropped
}

// get returns the live entry of a room.
func (d *directory) get(room string) (Entry, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	e := d.entries[room]
	if e == nil || e.Closed {
		return Entry{}, false
	}
	return e.Entry, true
}

// all returns every entry, tombstones included, sorted by room.
func (d *directory) all() []Entry {
	d.mu.RLock()
	out := make([]Entry, 0, len(d.entries))
	for _, e := range d.entries {
		out = append(out, e.Entry)
	}
	d.mu.RUnlock()
	slices.SortFunc(out, func(a, b Entry) int {
		switch {
		case a.Room < b.Room:
			return -1
		case a.Room > b.Room:
			return 1
		}
		return 0
	})
	return out
}

// live calls f for every live entry, under the read lock: f must not call
// back into the directory.
func (d *directory) live(f func(*Entry)) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	for _, e := range d.entries {
		if !e.Closed {
			f(&e.Entry)
		}
	}
}

// size returns the live entries and the tombstones.
func (d *directory) size() (live, tombstones int) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	for _, e := range d.entries {
		if e.Closed {
			tombstones++
		} else {
			live++
		}
	}
	return live, tombstones
}

// lagRing keeps the most recent convergence lags. The caller holds the
// directory's lock.
type lagRing struct {
	samples [1024]time.Duration
	n       int
}

func (l *lagRing) add(d time.Duration) {
	l.samples[l.n%len(l.samples)] = max(d, 0)
	l.n++
}

// Lag summarises how long entries took from their host's change to this
// node, over the most recent ones.
type Lag struct {
	Samples       int
	P50, P99, Max time.Duration
}

func (d *directory) lagSummary() Lag {
	d.mu.RLock()
	n := min(d.lag.n, len(d.lag.samples))
	s := slices.Clone(d.lag.samples[:n])
	d.mu.RUnlock()
	if n == 0 {
		return Lag{}
	}
	slices.Sort(s)
	return Lag{Samples: n, P50: s[n/2], P99: s[(n*99)/100], Max: s[n-1]}
}
