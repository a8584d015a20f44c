package cluster

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// Meta is what a node gossips about itself: small (well under memberlist's
// 512 bytes) and changed at most every MetaInterval for load alone.
type Meta struct {
	Name     string // human node name
	GameURL  string // where redirected clients go
	AdminURL string
	Draining bool // takes no new rooms; its rooms are moving away
	Ready    bool // serves players (its /readyz passes)
	Rooms    int  // rooms hosted
	Players  int  // seats taken, held ones included
	Capacity int  // rooms it may still create
}

// metaVersion is the first element of the encoded meta, so that a later
// layout can be told apart.
const metaVersion = 1

const (
	metaDraining = 1 << iota
	metaReady
)

// errBadMeta: a member's metadata could not be decoded.
var errBadMeta = errors.New("cluster: bad member metadata")

func encodeMeta(m Meta) ([]byte, error) {
	var flags uint8
	if m.Draining {
		flags |= metaDraining
	}
	if m.Ready {
		flags |= metaReady
	}
	var b bytes.Buffer
	e := msgpack.NewEncoder(&b)
	err := errors.Join(
		e.EncodeArrayLen(8), e.EncodeUint(metaVersion), e.EncodeString(m.Name), e.EncodeString(m.GameURL),
		e.EncodeString(m.AdminURL), e.EncodeUint(uint64(flags)), e.EncodeUint(uint64(max(m.Rooms, 0))),
		e.EncodeUint(uint64(max(m.Players, 0))), e.EncodeUint(uint64(max(m.Capacity, 0))),
	)
	if err != nil {
		return nil, fmt.Errorf("cluster: encode meta: %w", err)
	}
	return b.Bytes(), nil
}

// decodeMeta decodes a peer's metadata. Anything malformed is an error,
// never a panic: a peer's bytes are input like any other.
func decodeMeta(p []byte) (Meta, error) {
	var m Meta
	r := newReader(p)
	n := r.arrayLen()
	if n < 8 || r.uint(1<<8) != metaVersion {
		return m, fmt.Errorf("%w: %d fields or unknown version", errBadMeta, n)
	}
	m.Name = r.str(maxMetaField)
	m.GameURL = r.str(maxMetaField)
	m.AdminURL = r.str(maxMetaField)
	flags := r.uint(1 << 8)
	m.Draining, m.Ready = flags&metaDraining != 0, flags&metaReady != 0
	m.Rooms = int(r.uint(1 << 31))
	m.Players = int(r.uint(1 << 31))
	m.Capacity = int(r.uint(1 << 31))
	if r.err != nil {
		return Meta{}, fmt.Errorf("%w: %w", errBadMeta, r.err)
	}
	return m, nil
}
