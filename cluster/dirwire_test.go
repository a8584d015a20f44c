package cluster

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/tickroom/tickroom/cluster/internal/faultnet"
)

func TestEntriesRoundTrip(t *testing.T) {
	es := []Entry{
		{Room: "r1", Host: "n1-00000000", Epoch: 1, Version: 7, Mode: "arena", MaxPlayers: 16, Players: 3, Changed: 1764000000123},
		{Room: "r2", Host: "n2-ffffffff", Epoch: 2, Version: 1, Mode: "m", MaxPlayers: 2, Private: true, Closed: true},
	}
	for _, typ := range []byte{msgEntries, msgState} {
		gotTyp, got, err := decodeEntries(encodeEntries(typ, es))
		require.NoError(t, err)
		assert.Equal(t, typ, gotTyp)
		assert.Equal(t, es, got)
	}
	mixed := append(es, Entry{Room: "r3", Host: "n1-00000000", Epoch: 1, Version: 1})
	_, got, err := decodeEntries(encodeEntries(msgState, mixed))
	require.NoError(t, err)
	assert.ElementsMatch(t, mixed, got, "a state groups entries by host")
	_, got, err = decodeEntries(encodeEntries(msgState, nil))
	require.NoError(t, err)
	assert.Empty(t, got)
}

func TestMetaRoundTrip(t *testing.T) {
	m := Meta{Name: "n1", GameURL: "ws://10.0.0.1:8080/ws", AdminURL: "http://10.0.0.1:8081", Draining: true, Ready: true, Rooms: 12, Players: 150, Capacity: 9988}
	p, err := encodeMeta(m)
	require.NoError(t, err)
	got, err := decodeMeta(p)
	require.NoError(t, err)
	assert.Equal(t, m, got)
}

// badMessages are peer messages that must be dropped whole.
func badMessages(t testing.TB) map[string][]byte {
	good := encodeEntries(msgEntries, []Entry{{Room: "r", Host: "h", Epoch: 1, Version: 1, Mode: "arena", MaxPlayers: 4}})
	mp := func(v any) []byte {
		b, err := msgpack.Marshal(v)
		require.NoError(t, err)
		return b
	}
	return map[string][]byte{
		"empty":             {},
		"unknown type":      append([]byte{9}, good[1:]...),
		"truncated":         good[:len(good)-3],
		"trailing bytes":    append(append([]byte{}, good...), 0xc0),
		"not an array":      append([]byte{msgEntries}, mp("hello")...),
		"huge count":        {msgEntries, 0xdd, 0x7f, 0xff, 0xff, 0xff},
		"short entry":       append([]byte{msgEntries}, mp([]any{[]any{"h", []any{[]any{"r", 1}}}})...),
		"no host":           append([]byte{msgEntries}, mp([]any{[]any{"", []any{[]any{"r", 1, 1, "m", 4, 0, 0, 0}}}})...),
		"no room":           append([]byte{msgEntries}, mp([]any{[]any{"h", []any{[]any{"", 1, 1, "m", 4, 0, 0, 0}}}})...),
		"string for number": append([]byte{msgEntries}, mp([]any{[]any{"h", []any{[]any{"r", "1", 1, "m", 4, 0, 0, 0}}}})...),
		"long room id":      append([]byte{msgEntries}, mp([]any{[]any{"h", []any{[]any{string(make([]byte, 200)), 1, 1, "m", 4, 0, 0, 0}}}})...),
		"negative players":  append([]byte{msgEntries}, mp([]any{[]any{"h", []any{[]any{"r", 1, 1, "m", 4, -1, 0, 0}}}})...),
		"huge entry count":  append([]byte{msgEntries}, mp([]any{[]any{"h", nil}})[:3]...),
		"huge string len":   append([]byte{msgEntries}, 0x91, 0x92, 0xdb, 0x7f, 0xff, 0xff, 0xff),
	}
}

func TestBadGossipIsDroppedAndCounted(t *testing.T) {
	for name, p := range badMessages(t) {
		_, _, err := decodeEntries(p)
		assert.ErrorIs(t, err, errBadMessage, name)
	}
	// Through a live node's delegate: each bad message is counted and
	// changes nothing.
	fn := faultnet.NewNetwork()
	n := startNode(t, fn, "n1", nil, nil)
	d := &delegate{n: n.Node}
	before := n.stats.Dropped.Load()
	bad := badMessages(t)
	for _, p := range bad {
		d.NotifyMsg(p)
		d.MergeRemoteState(p, false)
	}
	assert.Equal(t, before+2*uint64(len(bad)), n.stats.Dropped.Load())
	live, tombs := n.dir.size()
	assert.Zero(t, live+tombs)

	for _, p := range [][]byte{nil, {0x92}, {0x98, 2, 0xa1}, {0xc1}} {
		_, err := decodeMeta(p)
		assert.ErrorIs(t, err, errBadMeta)
	}
}

func TestMergeKeepsTheNewestAndRefusesTheDead(t *testing.T) {
	d := newDirectory()
	now := time.Now()
	e := Entry{Room: "r", Host: "h1", Epoch: 1, Version: 2, Mode: "arena", MaxPlayers: 4}
	assert.True(t, d.merge(e, now, true))
	old := e
	old.Version = 1
	assert.False(t, d.merge(old, now, true), "an older version changes nothing")
	assert.False(t, d.merge(e, now, true), "a copy changes nothing: it is not relayed again")
	moved := Entry{Room: "r", Host: "h2", Epoch: 2, Version: 1}
	assert.True(t, d.merge(moved, now, true), "a higher epoch wins whatever its version")
	assert.Equal(t, 1, d.hostGone("h2", now))
	assert.False(t, d.merge(moved, now, true), "a dead host's late entries are refused")
	d.hostAlive("h2")
	assert.True(t, d.merge(moved, now, true))

	tomb := moved
	tomb.Version, tomb.Closed = 2, true
	assert.True(t, d.merge(tomb, now, true))
	assert.False(t, d.merge(moved, now, true), "a tombstone keeps the old entry out")
	d.sweep(now.Add(2*time.Minute), time.Minute, time.Minute, func(string) bool { return true })
	live, tombs := d.size()
	assert.Zero(t, live+tombs, "tombstones expire")

	orphan := Entry{Room: "o", Host: "ghost", Epoch: 1, Version: 1}
	d.merge(orphan, now, true)
	gone := func(string) bool { return false }
	d.sweep(now, time.Minute, 10*time.Second, gone)
	_, ok := d.get("o")
	assert.True(t, ok, "an entry may arrive before its host's membership")
	d.sweep(now.Add(11*time.Second), time.Minute, 10*time.Second, gone)
	_, ok = d.get("o")
	assert.False(t, ok, "an entry whose host never shows up does not linger")
}

func FuzzDecodeEntries(f *testing.F) {
	f.Add(encodeEntries(msgEntries, []Entry{{Room: "r", Host: "h", Epoch: 1, Version: 1, Mode: "arena", MaxPlayers: 4}}))
	f.Add(encodeEntries(msgState, nil))
	for _, p := range badMessages(f) {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		typ, es, err := decodeEntries(p)
		if err != nil {
			return
		}
		// What decodes re-encodes to a message that decodes the same.
		_, again, err := decodeEntries(encodeEntries(typ, es))
		require.NoError(t, err)
		if len(es) == 0 {
			assert.Empty(t, again)
		} else {
			assert.ElementsMatch(t, es, again)
		}
	})
}

func FuzzDecodeMeta(f *testing.F) {
	p, _ := encodeMeta(Meta{Name: "n1", GameURL: "ws://h:1/ws", Ready: true, Rooms: 1})
	f.Add(p)
	f.Add([]byte{0x98, 1})
	f.Fuzz(func(t *testing.T, p []byte) {
		m, err := decodeMeta(p)
		if err != nil {
			return
		}
		q, err := encodeMeta(m)
		require.NoError(t, err)
		again, err := decodeMeta(q)
		require.NoError(t, err)
		assert.Equal(t, m, again)
	})
}
