package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/tickroom/tickroom/netcode/wire"
)

// Gossip messages: a type byte, then MessagePack. Every peer message is
// decoded with bounds on every field and dropped whole if anything is off.
const (
	msgEntries byte = 1 // [entry...]: directory changes, broadcast and relayed
	msgState   byte = 2 // [entry...]: the full directory, on push/pull
)

// maxEntriesPerMessage bounds what one message may make a node decode and
// allocate. A push/pull state holds the whole directory.
const maxEntriesPerMessage = 1 << 20

// maxNameLength bounds a host's gossip name (human name, '-', suffix).
const maxNameLength = 96

const (
	entryPrivate = 1 << iota
	entryClosed
)

// errBadMessage: a peer's gossip message could not be decoded.
var errBadMessage = errors.New("cluster: bad gossip message")

// A message is an array of groups, one per host, each [host, [entry...]]
// with entry = [room, epoch, version, mode, maxPlayers, players, flags,
// changed]: the host is written once per group, not once per entry. A
// delta holds one group (a host's changes, or what a node relays of
// them); a push/pull state holds them all.

// entryFields is how many fields an entry has; a decoder skips more.
const entryFields = 8

// encodeEntries encodes es, grouped by host in the order hosts first
// appear.
func encodeEntries(typ byte, es []Entry) []byte {
	var order []string
	groups := make(map[string][]int)
	for i := range es {
		h := es[i].Host
		if _, ok := groups[h]; !ok {
			order = append(order, h)
		}
		groups[h] = append(groups[h], i)
	}
	var b bytes.Buffer
	b.WriteByte(typ)
	e := msgpack.NewEncoder(&b)
	// Writes to a bytes.Buffer cannot fail.
	_ = e.EncodeArrayLen(len(order))
	for _, h := range order {
		_ = e.EncodeArrayLen(2)
		_ = e.EncodeString(h)
		_ = e.EncodeArrayLen(len(groups[h]))
		for _, i := range groups[h] {
			appendEntry(e, &es[i])
		}
	}
	return b.Bytes()
}

func appendEntry(e *msgpack.Encoder, x *Entry) {
	var flags uint64
	if x.Private {
		flags |= entryPrivate
	}
	if x.Closed {
		flags |= entryClosed
	}
	_ = e.EncodeArrayLen(entryFields)
	_ = e.EncodeString(x.Room)
	_ = e.EncodeUint(x.Epoch)
	_ = e.EncodeUint(x.Version)
	_ = e.EncodeString(x.Mode)
	_ = e.EncodeUint(uint64(x.MaxPlayers))
	_ = e.EncodeUint(uint64(x.Players))
	_ = e.EncodeUint(flags)
	_ = e.EncodeInt(x.Changed)
}

// decodeEntries decodes a msgEntries or msgState message (p includes the
// type byte).
func decodeEntries(p []byte) (typ byte, es []Entry, err error) {
	if len(p) == 0 {
		return 0, nil, fmt.Errorf("%w: empty", errBadMessage)
	}
	typ = p[0]
	if typ != msgEntries && typ != msgState {
		return typ, nil, fmt.Errorf("%w: unknown type %d", errBadMessage, typ)
	}
	r := newReader(p[1:])
	// An entry takes at least 10 bytes and a group at least 3, so counts
	// beyond what is left are lies and must not size an allocation.
	groups := r.arrayLen()
	if groups > len(p)/3 {
		return typ, nil, fmt.Errorf("%w: %d groups in %d bytes", errBadMessage, groups, len(p))
	}
	for range groups {
		if r.arrayLen() < 2 {
			r.fail(fmt.Errorf("%w: a group needs a host and entries", errField))
		}
		host := r.str(maxNameLength)
		if r.err == nil && host == "" {
			r.fail(fmt.Errorf("%w: a group needs a host", errField))
		}
		n := r.arrayLen()
		if n > maxEntriesPerMessage || len(es)+n > len(p)/10 {
			r.fail(fmt.Errorf("%w: %d entries in %d bytes", errField, n, len(p)))
		}
		if r.err != nil {
			break
		}
		es = slices.Grow(es, n)
		for range n {
			x := Entry{Host: host}
			fields := r.arrayLen()
			if fields < entryFields {
				r.fail(fmt.Errorf("%w: an entry needs %d fields", errField, entryFields))
			}
			x.Room = r.str(wire.MaxIDLength)
			x.Epoch = r.uint(1 << 62)
			x.Version = r.uint(1 << 62)
			x.Mode = r.str(wire.MaxIDLength)
			x.MaxPlayers = int(r.uint(1 << 16))
			x.Players = int(r.uint(1 << 16))
			flags := r.uint(1 << 8)
			x.Private, x.Closed = flags&entryPrivate != 0, flags&entryClosed != 0
			x.Changed = r.int()
			r.skip(fields - entryFields) // fields a later version added
			if r.err == nil && x.Room == "" {
				r.fail(fmt.Errorf("%w: an entry needs a room", errField))
			}
			if r.err != nil {
				break
			}
			es = append(es, x)
		}
		if r.err != nil {
			break
		}
	}
	if err := r.done(); err != nil {
		return typ, nil, fmt.Errorf("%w: %w", errBadMessage, err)
	}
	if es == nil {
		es = []Entry{}
	}
	return typ, es, nil
}
