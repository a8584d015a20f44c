package cluster

import (
	"bytes"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/tickroom/tickroom/netcode/wire"
	"github.com/tickroom/tickroom/rooms"
)

// Ownership messages between nodes (FAILOVER.md): a type byte, then one
// MessagePack array whose first element is the sender's gossip name.
// Leases travel as gossip packets (small, lost now and then, renewed
// often); everything else rides memberlist's reliable stream. Both are
// encrypted and authenticated by the cluster key, and these messages
// are only sent when a key is set: checkpoints carry reconnect tokens.
const (
	msgRenew       byte = 3  // [from, seq]: renew the lease the receiver grants the sender
	msgGrant       byte = 4  // [from, seq]: the lease holds for the renewal seq
	msgCheckpoints byte = 5  // [from, [[room, epoch, tick, [group...], data|nil]...]]; nil data: forget the room
	msgStale       byte = 6  // [from, [[room, epoch, host]...]]: your room runs elsewhere at a higher epoch
	msgClaim       byte = 7  // [from, reqID, [[room, epoch, host, [group...], prevEpoch, prevHost]...]]
	msgClaimReply  byte = 8  // [from, reqID, [[granted, epoch, host]...]]: one per claimed room, in order
	msgHandOff     byte = 9  // [from, reqID, epoch, [group...], checkpoint]
	msgHandOffDone byte = 10 // [from, reqID, error]: empty error: the room runs on the sender
	msgRelinquish  byte = 11 // [from, [[room, epoch]...]]: the sender stopped these rooms for good
)

// maxGroup bounds a room's group (its host and witnesses) on the wire.
const maxGroup = 8

// maxBatch bounds the rooms one ownership message names.
const maxBatch = 1 << 16

// maxErrorText bounds a hand-off's error text.
const maxErrorText = 1024

// cpItem is one room's checkpoint (or, with nil data, the news that the
// room closed) in a msgCheckpoints batch.
type cpItem struct {
	room  string
	epoch uint64
	tick  uint64
	group []string
	data  []byte
}

// claim asks a voter to record room at (epoch, host, group), superseding
// (prevEpoch, prevHost). A claim from prevHost itself moves a room it
// runs (a hand-off, or new witnesses); from anyone else it takes over a
// room whose host's lease has run out.
type claim struct {
	room      string
	epoch     uint64
	host      string
	group     []string
	prevEpoch uint64
	prevHost  string
}

// vote is a voter's answer to one claim: granted, and the record it holds
// for the room afterwards.
type vote struct {
	granted bool
	epoch   uint64
	host    string
}

// staleRoom tells a host that a room it sends checkpoints for runs at
// (epoch, host).
type staleRoom struct {
	room  string
	epoch uint64
	host  string
}

type encoder struct {
	b bytes.Buffer
	e *msgpack.Encoder
}

// newMessage starts a message of typ from this node. Writes to a
// bytes.Buffer cannot fail, so the encoder's errors are not checked.
func newMessage(typ byte, from string, fields int) *encoder {
	w := &encoder{}
	w.b.WriteByte(typ)
	w.e = msgpack.NewEncoder(&w.b)
	_ = w.e.EncodeArrayLen(fields + 1)
	_ = w.e.EncodeString(from)
	return w
}

func (w *encoder) strs(ss []string) {
	_ = w.e.EncodeArrayLen(len(ss))
	for _, s := range ss {
		_ = w.e.EncodeString(s)
	}
}

func (w *encoder) bytes() []byte { return w.b.Bytes() }

func encodeLease(typ byte, from string, seq uint64) []byte {
	w := newMessage(typ, from, 1)
	_ = w.e.EncodeUint(seq)
	return w.bytes()
}

func encodeCheckpoints(from string, items []cpItem) []byte {
	w := newMessage(msgCheckpoints, from, 1)
	_ = w.e.EncodeArrayLen(len(items))
	for _, it := range items {
		_ = w.e.EncodeArrayLen(5)
		_ = w.e.EncodeString(it.room)
		_ = w.e.EncodeUint(it.epoch)
		_ = w.e.EncodeUint(it.tick)
		w.strs(it.group)
		if it.data == nil {
			_ = w.e.EncodeNil()
		} else {
			_ = w.e.EncodeBytes(it.data)
		}
	}
	return w.bytes()
}

func encodeStale(from string, rs []staleRoom) []byte {
	w := newMessage(msgStale, from, 1)
	_ = w.e.EncodeArrayLen(len(rs))
	for _, s := range rs {
		_ = w.e.EncodeArrayLen(3)
		_ = w.e.EncodeString(s.room)
		_ = w.e.EncodeUint(s.epoch)
		_ = w.e.EncodeString(s.host)
	}
	return w.bytes()
}

func encodeClaims(from string, reqID uint64, cs []claim) []byte {
	w := newMessage(msgClaim, from, 2)
	_ = w.e.EncodeUint(reqID)
	_ = w.e.EncodeArrayLen(len(cs))
	for _, c := range cs {
		_ = w.e.EncodeArrayLen(6)
		_ = w.e.EncodeString(c.room)
		_ = w.e.EncodeUint(c.epoch)
		_ = w.e.EncodeString(c.host)
		w.strs(c.group)
		_ = w.e.EncodeUint(c.prevEpoch)
		_ = w.e.EncodeString(c.prevHost)
	}
	return w.bytes()
}

func encodeVotes(from string, reqID uint64, vs []vote) []byte {
	w := newMessage(msgClaimReply, from, 2)
	_ = w.e.EncodeUint(reqID)
	_ = w.e.EncodeArrayLen(len(vs))
	for _, v := range vs {
		_ = w.e.EncodeArrayLen(3)
		_ = w.e.EncodeBool(v.granted)
		_ = w.e.EncodeUint(v.epoch)
		_ = w.e.EncodeString(v.host)
	}
	return w.bytes()
}

func encodeHandOff(from string, reqID, epoch uint64, group []string, cp []byte) []byte {
	w := newMessage(msgHandOff, from, 4)
	_ = w.e.EncodeUint(reqID)
	_ = w.e.EncodeUint(epoch)
	w.strs(group)
	_ = w.e.EncodeBytes(cp)
	return w.bytes()
}

func encodeHandOffDone(from string, reqID uint64, errText string) []byte {
	w := newMessage(msgHandOffDone, from, 2)
	_ = w.e.EncodeUint(reqID)
	_ = w.e.EncodeString(errText)
	return w.bytes()
}

func encodeRelinquish(from string, rs []staleRoom) []byte {
	w := newMessage(msgRelinquish, from, 1)
	_ = w.e.EncodeArrayLen(len(rs))
	for _, s := range rs {
		_ = w.e.EncodeArrayLen(2)
		_ = w.e.EncodeString(s.room)
		_ = w.e.EncodeUint(s.epoch)
	}
	return w.bytes()
}

// peerMessage is a decoded ownership message; which fields are set
// depends on typ.
type peerMessage struct {
	typ     byte
	from    string
	seq     uint64 // renew, grant; the request id of claims, votes and hand-offs
	items   []cpItem
	stale   []staleRoom // msgStale, msgRelinquish (host unset)
	claims  []claim
	votes   []vote
	epoch   uint64
	group   []string
	data    []byte // a hand-off's checkpoint
	errText string
}

// decodePeerMessage decodes an ownership message (p includes the type
// byte), bounding every field; anything off is an error, never a panic.
func decodePeerMessage(p []byte) (*peerMessage, error) {
	if len(p) == 0 {
		return nil, fmt.Errorf("%w: empty", errBadMessage)
	}
	m := &peerMessage{typ: p[0]}
	r := newReader(p[1:])
	fields := r.arrayLen()
	m.from = r.str(maxNameLength)
	if r.err == nil && m.from == "" {
		r.fail(fmt.Errorf("%w: no sender", errField))
	}
	// A count above the bytes left is a lie and must not size an
	// allocation: every element takes at least one byte.
	count := func(limit int) int {
		n := r.arrayLen()
		if r.err == nil && (n > limit || n > r.r.Len()) {
			r.fail(fmt.Errorf("%w: %d elements", errField, n))
			return 0
		}
		return n
	}
	group := func() []string {
		n := count(maxGroup)
		if r.err != nil {
			return nil
		}
		g := make([]string, 0, n)
		for range n {
			g = append(g, r.str(maxNameLength))
		}
		return g
	}
	want := func(n int) {
		if r.err == nil && fields != n {
			r.fail(fmt.Errorf("%w: message type %d has %d fields, want %d", errField, m.typ, fields, n))
		}
	}
	switch m.typ {
	case msgRenew, msgGrant:
		want(2)
		m.seq = r.uint(1 << 63)
	case msgCheckpoints:
		want(2)
		n := count(maxBatch)
		for i := 0; i < n && r.err == nil; i++ {
			if r.arrayLen() != 5 {
				r.fail(fmt.Errorf("%w: a checkpoint item has 5 fields", errField))
				break
			}
			it := cpItem{room: r.str(wire.MaxIDLength), epoch: r.uint(1 << 62), tick: r.uint(1 << 62)}
			it.group = group()
			it.data = r.optBytes(rooms.MaxCheckpointSize)
			m.items = append(m.items, it)
		}
	case msgStale, msgRelinquish:
		want(2)
		n := count(maxBatch)
		per := 3
		if m.typ == msgRelinquish {
			per = 2
		}
		for i := 0; i < n && r.err == nil; i++ {
			if r.arrayLen() != per {
				r.fail(fmt.Errorf("%w: an item has %d fields", errField, per))
				break
			}
			s := staleRoom{room: r.str(wire.MaxIDLength), epoch: r.uint(1 << 62)}
			if per == 3 {
				s.host = r.str(maxNameLength)
			}
			m.stale = append(m.stale, s)
		}
	case msgClaim:
		want(3)
		m.seq = r.uint(1 << 63)
		n := count(maxBatch)
		for i := 0; i < n && r.err == nil; i++ {
			if r.arrayLen() != 6 {
				r.fail(fmt.Errorf("%w: a claim has 6 fields", errField))
				break
			}
			c := claim{room: r.str(wire.MaxIDLength), epoch: r.uint(1 << 62), host: r.str(maxNameLength)}
			c.group = group()
			c.prevEpoch = r.uint(1 << 62)
			c.prevHost = r.str(maxNameLength)
			m.claims = append(m.claims, c)
		}
	case msgClaimReply:
		want(3)
		m.seq = r.uint(1 << 63)
		n := count(maxBatch)
		for i := 0; i < n && r.err == nil; i++ {
			if r.arrayLen() != 3 {
				r.fail(fmt.Errorf("%w: a vote has 3 fields", errField))
				break
			}
			m.votes = append(m.votes, vote{granted: r.bool(), epoch: r.uint(1 << 62), host: r.str(maxNameLength)})
		}
	case msgHandOff:
		want(5)
		m.seq = r.uint(1 << 63)
		m.epoch = r.uint(1 << 62)
		m.group = group()
		m.data = r.optBytes(rooms.MaxCheckpointSize)
		if r.err == nil && m.data == nil {
			r.fail(fmt.Errorf("%w: a hand-off needs a checkpoint", errField))
		}
	case msgHandOffDone:
		want(3)
		m.seq = r.uint(1 << 63)
		m.errText = r.str(maxErrorText)
	default:
		return nil, fmt.Errorf("%w: unknown type %d", errBadMessage, m.typ)
	}
	if err := r.done(); err != nil {
		return nil, fmt.Errorf("%w: type %d: %w", errBadMessage, m.typ, err)
	}
	return m, nil
}
