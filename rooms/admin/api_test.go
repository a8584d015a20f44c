package admin_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/tickroom/tickroom/netcode"
	"github.com/tickroom/tickroom/netcode/client"
	"github.com/tickroom/tickroom/netcode/netcodetest"
	"github.com/tickroom/tickroom/netcode/wire"
	"github.com/tickroom/tickroom/rooms"
	"github.com/tickroom/tickroom/rooms/admin"
	"github.com/tickroom/tickroom/rooms/roomstest"
	"github.com/tickroom/tickroom/sim"
)

// wait bounds every wait in these tests: generous, since they run in
// parallel under the race detector.
const wait = 10 * time.Second

// ---- Health ----

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	n := startNodeWith(t, nodeOptions{notReady: true})

	r := n.call(t, "GET", "/healthz", "", noToken)
	require.Equal(t, http.StatusOK, r.status)
	assert.JSONEq(t, `{"status":"ok"}`, string(r.body))
	assert.Equal(t, "application/json", r.header.Get("Content-Type"))

	r = n.call(t, "GET", "/readyz", "", noToken)
	require.Equal(t, http.StatusServiceUnavailable, r.status, "not ready before SetReady(true)")
	assert.Equal(t, "not_ready", r.code(t))

	n.Admin.SetReady(true)
	r = n.call(t, "GET", "/readyz", "", noToken)
	require.Equal(t, http.StatusOK, r.status)
	assert.JSONEq(t, `{"status":"ready"}`, string(r.body))

	n.Admin.SetReady(false)
	r = n.call(t, "GET", "/readyz", "", noToken)
	require.Equal(t, http.StatusServiceUnavailable, r.status, "not ready after SetReady(false)")
	assert.Equal(t, "not_ready", r.code(t))

	r = n.call(t, "HEAD", "/healthz", "", noToken)
	assert.Equal(t, http.StatusOK, r.status)
}

// ---- Room list ----

func TestListRoomsFiltersAndPages(t *testing.T) {
	t.Parallel()
	duel, err := sim.NewArenaFactory(sim.DefaultArenaConfig())
	require.NoError(t, err)
	n := startNodeWith(t, nodeOptions{rooms: func(c *rooms.Config) { c.Modes["duel"] = duel }})

	// Seven rooms: four arenas of two seats, three duels of one.
	var all, arenas, duels []string
	for range 4 {
		id := n.createRoom(t, `{"mode":"arena","max_players":2}`).ID
		all, arenas = append(all, id), append(arenas, id)
	}
	for range 3 {
		id := n.createRoom(t, `{"mode":"duel","max_players":1,"metadata":{"ladder":"gold"}}`).ID
		all, duels = append(all, id), append(duels, id)
	}
	// Fill one of each.
	for _, id := range []string{arenas[1], arenas[1], duels[2]} {
		joinRoom(t, n.player(t, client.DefaultConfig()), id)
	}
	full := []string{arenas[1], duels[2]}

	// Every page has the total; following next_cursor visits every room
	// exactly once, in creation order.
	pages := func(query string, limit int) (ids []string, totals []int, npages int) {
		t.Helper()
		cursor := ""
		for npages = 1; ; npages++ {
			path := fmt.Sprintf("/admin/rooms?limit=%d%s", limit, query)
			if cursor != "" {
				path += "&cursor=" + cursor
			}
			r := n.call(t, "GET", path, "", n.Token)
			require.Equal(t, http.StatusOK, r.status, string(r.body))
			list := fromJSON[roomListJSON](t, r.body)
			require.LessOrEqual(t, len(list.Rooms), limit)
			for _, room := range list.Rooms {
				ids = append(ids, room.ID)
			}
			totals = append(totals, list.Total)
			if list.NextCursor == "" {
				return ids, totals, npages
			}
			require.Len(t, list.Rooms, limit, "a page before the last is full")
			require.Less(t, npages, 20, "pages do not end")
			cursor = list.NextCursor
		}
	}
	for _, tc := range []struct {
		name  string
		query string
		limit int
		want  []string
		pages int
	}{
		{"all in pages of 3", "", 3, all, 3},
		{"all in pages of 1", "", 1, all, 7},
		{"all in one page", "", 7, all, 1},
		{"all in a larger page", "", 500, all, 1},
		{"mode", "&mode=duel", 2, duels, 2},
		{"mode in pages of 2", "&mode=arena", 2, arenas, 2},
		{"free seats", "&has_free_seats=true", 2, without(all, full), 3},
		{"no free seats", "&has_free_seats=false", 5, full, 1},
		{"mode and free seats", "&mode=duel&has_free_seats=1", 1, without(duels, full), 2},
		{"unknown mode", "&mode=chess", 3, nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ids, totals, npages := pages(tc.query, tc.limit)
			assert.Equal(t, tc.want, ids)
			assert.Equal(t, tc.pages, npages)
			for _, total := range totals {
				assert.Equal(t, len(tc.want), total)
			}
		})
	}

	// The default page holds them all, with their details.
	r := n.call(t, "GET", "/admin/rooms", "", n.Token)
	require.Equal(t, http.StatusOK, r.status)
	list := fromJSON[roomListJSON](t, r.body)
	assert.Equal(t, 7, list.Total)
	assert.Empty(t, list.NextCursor)
	require.Len(t, list.Rooms, 7)
	byID := map[string]roomJSON{}
	for _, room := range list.Rooms {
		byID[room.ID] = room
	}
	assert.Equal(t, 2, byID[arenas[1]].PlayerCount)
	assert.Equal(t, 2, byID[arenas[1]].MaxPlayers)
	assert.Equal(t, "duel", byID[duels[0]].Mode)
	assert.Equal(t, map[string]string{"ladder": "gold"}, byID[duels[0]].Metadata)
	assert.Equal(t, map[string]string{}, byID[arenas[0]].Metadata, "no metadata lists as {}")
	assert.False(t, byID[arenas[0]].Created.IsZero())

	// An empty list is [], and a cursor past the end gives an empty page.
	r = n.call(t, "GET", "/admin/rooms?mode=chess", "", n.Token)
	require.Equal(t, http.StatusOK, r.status)
	assert.Contains(t, string(r.body), `"rooms":[]`)
	last := strconv.FormatUint(mustRoom(t, n, all[6]).Seq(), 10)
	r = n.call(t, "GET", "/admin/rooms?cursor="+last, "", n.Token)
	require.Equal(t, http.StatusOK, r.status)
	list = fromJSON[roomListJSON](t, r.body)
	assert.Empty(t, list.Rooms)
	assert.Equal(t, 7, list.Total)
}

func TestListRoomsRejectsBadParameters(t *testing.T) {
	t.Parallel()
	n := startNodeWith(t, nodeOptions{})
	n.createRoom(t, `{"mode":"arena"}`)
	for _, query := range []string{
		"limit=0", "limit=-1", "limit=501", "limit=abc", "limit=1.5",
		"cursor=abc", "cursor=-5", "cursor=1e3",
		"has_free_seats=maybe",
		"page=2", "mode=arena&sort=age",
	} {
		r := n.call(t, "GET", "/admin/rooms?"+query, "", n.Token)
		assert.Equal(t, http.StatusBadRequest, r.status, query)
		assert.Equal(t, "bad_request", r.code(t), query)
	}
}

// ---- Room creation ----

func TestCreateRoom(t *testing.T) {
	t.Parallel()
	n := startNodeWith(t, nodeOptions{})
	r := n.call(t, "POST", "/admin/rooms", `{"mode":"arena","max_players":4,"private":true,"metadata":{"map":"dust","owner":"ops"}}`, n.Token)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	room := fromJSON[roomJSON](t, r.body)
	assert.NotEmpty(t, room.ID)
	assert.Equal(t, "/admin/rooms/"+room.ID, r.header.Get("Location"))
	assert.Equal(t, "arena", room.Mode)
	assert.Equal(t, 4, room.MaxPlayers)
	assert.True(t, room.Private)
	assert.False(t, room.Paused)
	assert.Equal(t, map[string]string{"map": "dust", "owner": "ops"}, room.Metadata)
	assert.Zero(t, room.PlayerCount)
	assert.NotNil(t, room.Players)
	assert.Empty(t, room.Players)
	assert.Equal(t, 60, room.Tick.Rate)

	// It runs, and the Location leads to it.
	got := mustRoom(t, n, room.ID)
	assert.True(t, got.Private())
	assert.Equal(t, 4, got.MaxPlayers())
	r = n.call(t, "GET", r.header.Get("Location"), "", n.Token)
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, room.ID, fromJSON[roomJSON](t, r.body).ID)

	// Defaults, and a JSON media type with parameters.
	r = n.send(t, n.request(t, "POST", "/admin/rooms", `{"mode":"arena"}`, n.Token, "Content-Type", "application/json; charset=utf-8"))
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	room = fromJSON[roomJSON](t, r.body)
	assert.Equal(t, 16, room.MaxPlayers, "rooms.Config.MaxPlayers")
	assert.False(t, room.Private)
	assert.Equal(t, map[string]string{}, room.Metadata)

	// A body without a Content-Type is taken as JSON (curl -d without -H).
	r = n.send(t, n.request(t, "POST", "/admin/rooms", `{"mode":"arena"}`, n.Token, "Content-Type", ""))
	require.Equal(t, http.StatusCreated, r.status, string(r.body))

	// A public room created here is one players' join-or-create can fill.
	c := n.player(t, client.DefaultConfig())
	j, err := c.Join(context.Background(), client.JoinOptions{Mode: sim.ArenaMode})
	require.NoError(t, err)
	assert.Equal(t, room.ID, j.RoomID)
}

func TestCreateRoomRejectsBadRequests(t *testing.T) {
	t.Parallel()
	n := startNodeWith(t, nodeOptions{})
	metadata := func(keys int, key, value string) string {
		md := map[string]string{}
		for i := range keys {
			md[fmt.Sprintf("%s%d", key, i)] = value
		}
		b, err := json.Marshal(map[string]any{"mode": "arena", "metadata": md})
		require.NoError(t, err)
		return string(b)
	}
	for _, tc := range []struct {
		name        string
		body        string
		contentType string // "" means application/json
		status      int
		code        string
	}{
		{"unknown mode", `{"mode":"chess"}`, "", 400, "unknown_mode"},
		{"no mode", `{"max_players":4}`, "", 400, "bad_request"},
		{"empty object", `{}`, "", 400, "bad_request"},
		{"no body", ``, "", 400, "bad_request"},
		{"max_players above MaxRoomSize", `{"mode":"arena","max_players":257}`, "", 400, "bad_request"},
		{"negative max_players", `{"mode":"arena","max_players":-1}`, "", 400, "bad_request"},
		{"max_players not a number", `{"mode":"arena","max_players":"4"}`, "", 400, "bad_request"},
		{"unknown field", `{"mode":"arena","colour":"red"}`, "", 400, "bad_request"},
		{"invalid JSON", `{"mode":`, "", 400, "bad_request"},
		{"not an object", `["arena"]`, "", 400, "bad_request"},
		{"data after the object", `{"mode":"arena"} {"mode":"arena"}`, "", 400, "bad_request"},
		{"too many metadata keys", metadata(33, "k", "v"), "", 400, "bad_request"},
		{"metadata key too long", metadata(1, strings.Repeat("k", 64), "v"), "", 400, "bad_request"},
		{"metadata value too long", metadata(1, "k", strings.Repeat("v", 1025)), "", 400, "bad_request"},
		{"empty metadata key", `{"mode":"arena","metadata":{"":"v"}}`, "", 400, "bad_request"},
		{"body over MaxBodyBytes", metadata(1, "k", strings.Repeat("v", 70<<10)), "", 413, "too_large"},
		{"text/plain", `{"mode":"arena"}`, "text/plain", 415, "unsupported_media_type"},
		{"form", `mode=arena`, "application/x-www-form-urlencoded", 415, "unsupported_media_type"},
		{"malformed media type", `{"mode":"arena"}`, "application/", 415, "unsupported_media_type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ct := tc.contentType
			if ct == "" {
				ct = "application/json"
			}
			r := n.send(t, n.request(t, "POST", "/admin/rooms", tc.body, n.Token, "Content-Type", ct))
			assert.Equal(t, tc.status, r.status, string(r.body))
			assert.Equal(t, tc.code, r.code(t))
			assert.NotEmpty(t, r.message(t))
		})
	}
	// At most 32 keys of 1..64 bytes, values of at most 1024 bytes: fine.
	n.createRoom(t, metadata(32, strings.Repeat("k", 62), strings.Repeat("v", 1024)))
	assert.Len(t, n.Registry.List(), 1, "nothing but the valid request made a room")
}

func TestCreateRoomBeyondMaxRooms(t *testing.T) {
	t.Parallel()
	n := startNodeWith(t, nodeOptions{rooms: func(c *rooms.Config) { c.MaxRooms = 2 }})
	first := n.createRoom(t, `{"mode":"arena"}`)
	n.createRoom(t, `{"mode":"arena"}`)
	r := n.call(t, "POST", "/admin/rooms", `{"mode":"arena"}`, n.Token)
	require.Equal(t, http.StatusConflict, r.status, string(r.body))
	assert.Equal(t, "too_many_rooms", r.code(t))

	require.Equal(t, http.StatusNoContent, n.call(t, "DELETE", "/admin/rooms/"+first.ID, "", n.Token).status)
	n.createRoom(t, `{"mode":"arena"}`)
}

// ---- One room ----

func TestRoomRoutesAnswer404ForUnknownRooms(t *testing.T) {
	t.Parallel()
	n := startNodeWith(t, nodeOptions{})
	for _, route := range []struct{ method, path, body string }{
		{"GET", "/admin/rooms/nosuchroom", ""},
		{"DELETE", "/admin/rooms/nosuchroom", ""},
		{"POST", "/admin/rooms/nosuchroom/players/1/kick", ""},
		{"POST", "/admin/rooms/nosuchroom/broadcast", `{"data":1}`},
		{"POST", "/admin/rooms/nosuchroom/pause", ""},
		{"POST", "/admin/rooms/nosuchroom/resume", ""},
		{"POST", "/admin/rooms/nosuchroom/step?ticks=1", ""},
		{"GET", "/admin/rooms/nosuchroom/state", ""},
		{"GET", "/admin/rooms/nosuchroom/watch", ""},
	} {
		r := n.call(t, route.method, route.path, route.body, n.Token)
		assert.Equal(t, http.StatusNotFound, r.status, "%s %s", route.method, route.path)
		assert.Equal(t, "room_not_found", r.code(t), "%s %s", route.method, route.path)
	}
}

func TestGetRoomShowsConnectedPlayers(t *testing.T) {
	t.Parallel()
	n := startNodeWith(t, nodeOptions{})
	id := n.createRoom(t, `{"mode":"arena","max_players":4}`).ID
	alice := n.player(t, client.DefaultConfig())
	bob := n.player(t, client.DefaultConfig())
	ja := joinRoom(t, alice, id)
	jb := joinRoom(t, bob, id)

	room := n.room(t, id)
	assert.Equal(t, 2, room.PlayerCount)
	require.Len(t, room.Players, 2)
	assert.Equal(t, []uint32{ja.Player, jb.Player}, []uint32{room.Players[0].ID, room.Players[1].ID}, "by player id")
	for _, p := range room.Players {
		assert.Equal(t, "connected", p.State)
		assert.Nil(t, p.HeldSince)
		assert.Positive(t, p.Conn)
		assert.True(t, strings.HasPrefix(p.Remote, "127.0.0.1:"), p.Remote)
		assert.Positive(t, p.BytesIn, "the Hello and the Join came in")
		assert.Positive(t, p.BytesOut, "the Welcome and the Joined went out")
		assert.Zero(t, p.LastInputSeq)
	}
	assert.NotEqual(t, room.Players[0].Conn, room.Players[1].Conn)
	assert.Equal(t, 60, room.Tick.Rate)
	assert.LessOrEqual(t, room.Tick.Game, room.Tick.Current)

	// Alice's inputs advance her last applied seq; Bob's stays.
	var seq uint32
	for range 3 {
		var err error
		seq, err = alice.SendInput([]byte{0})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return n.room(t, id).Players[0].LastInputSeq == seq }, wait, 10*time.Millisecond)
	assert.Zero(t, n.room(t, id).Players[1].LastInputSeq)

	// The clients answer the server's pings (every 200 ms here): RTTs.
	require.Eventually(t, func() bool {
		room := n.room(t, id)
		return room.Players[0].RTTMs != nil && room.Players[1].RTTMs != nil
	}, wait, 10*time.Millisecond)
	room = n.room(t, id)
	assert.Positive(t, *room.Players[0].RTTMs)
	assert.Positive(t, room.Tick.Count, "the room has ticked by now")
	assert.Positive(t, room.Tick.Game)
}

func TestGetRoomShowsAHeldSeat(t *testing.T) {
	t.Parallel()
	n := startNodeWith(t, nodeOptions{})
	id := n.createRoom(t, `{"mode":"arena"}`).ID
	proxy, viaProxy := netcodetest.NewProxyURL(t, n.URL)
	cfg := client.DefaultConfig()
	cfg.Reconnect.Attempts = 0
	alice := dial(t, viaProxy, cfg)
	ja := joinRoom(t, alice, id)
	bob := n.player(t, client.DefaultConfig())
	joinRoom(t, bob, id)

	cut := time.Now()
	proxy.CutAll()
	var held playerJSON
	require.Eventually(t, func() bool {
		room := n.room(t, id)
		held = room.Players[0]
		return len(room.Players) == 2 && held.State == "held"
	}, wait, 10*time.Millisecond, "the seat is held for a resume")
	assert.Equal(t, ja.Player, held.ID)
	require.NotNil(t, held.HeldSince)
	assert.False(t, held.HeldSince.Before(cut.Add(-time.Second)), "held since the cut, not before: %v", held.HeldSince)
	assert.Zero(t, held.Conn, "no connection")
	assert.Empty(t, held.Remote)
	assert.Nil(t, held.RTTMs)
	room := n.room(t, id)
	assert.Equal(t, 2, room.PlayerCount, "a held seat is still taken")
	assert.Equal(t, "connected", room.Players[1].State)
}

func TestDeleteRoomTellsPlayers(t *testing.T) {
	t.Parallel()
	n := startNodeWith(t, nodeOptions{})
	id := n.createRoom(t, `{"mode":"arena"}`).ID
	alice := n.player(t, client.DefaultConfig())
	bob := n.player(t, client.DefaultConfig())
	joinRoom(t, alice, id)
	joinRoom(t, bob, id)

	r := n.call(t, "DELETE", "/admin/rooms/"+id, "", n.Token)
	require.Equal(t, http.StatusNoContent, r.status)
	assert.Empty(t, r.body)
	for _, c := range []*client.Client{alice, bob} {
		e := awaitEvent(t, c, client.EventRoomClosed)
		assert.Equal(t, "closed by operator", e.Reason)
		assert.Nil(t, c.Seat())
	}

	r = n.call(t, "GET", "/admin/rooms/"+id, "", n.Token)
	assert.Equal(t, http.StatusNotFound, r.status)
	assert.Equal(t, "room_not_found", r.code(t))
	r = n.call(t, "DELETE", "/admin/rooms/"+id, "", n.Token)
	assert.Equal(t, http.StatusNotFound, r.status)
	assert.Equal(t, "room_not_found", r.code(t))
	assert.Zero(t, fromJSON[roomListJSON](t, n.call(t, "GET", "/admin/rooms", "", n.Token).body).Total)

	// The connections stay open: the players can join elsewhere.
	j, err := alice.Join(context.Background(), client.JoinOptions{Mode: sim.ArenaMode})
	require.NoError(t, err)
	assert.NotEqual(t, id, j.RoomID)
}

// ---- Kick ----

func TestKick(t *testing.T) {
	t.Parallel()
	n := startNodeWith(t, nodeOptions{})
	id := n.createRoom(t, `{"mode":"arena"}`).ID
	noReconnect := client.DefaultConfig()
	noReconnect.Reconnect.Attempts = 0
	alice := n.player(t, noReconnect)
	bob := n.player(t, noReconnect)
	carol := n.player(t, noReconnect)
	ja := joinRoom(t, alice, id)
	jb := joinRoom(t, bob, id)
	joinRoom(t, carol, id)

	path := func(p uint32) string { return fmt.Sprintf("/admin/rooms/%s/players/%d/kick", id, p) }
	r := n.call(t, "POST", path(ja.Player), `{"reason":"spamming chat"}`, n.Token)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	assert.JSONEq(t, fmt.Sprintf(`{"room":%q,"player":%d,"kicked":true}`, id, ja.Player), string(r.body))

	// Alice's connection closes with 4002 and the reason; she does not
	// reconnect (4002 is not reconnectable, whatever the config).
	requireClosedWith(t, alice, wire.CloseKicked, "spamming chat")
	for _, c := range []*client.Client{bob, carol} {
		e := awaitEvent(t, c, client.EventPlayerLeft)
		assert.Equal(t, ja.Player, e.Player)
		assert.Equal(t, "kicked", e.Reason)
	}
	room := n.room(t, id)
	assert.Equal(t, 2, room.PlayerCount)
	for _, p := range room.Players {
		assert.NotEqual(t, ja.Player, p.ID)
	}

	r = n.call(t, "POST", path(ja.Player), "", n.Token)
	assert.Equal(t, http.StatusNotFound, r.status)
	assert.Equal(t, "player_not_found", r.code(t))

	// Without a body, the reason is a default one.
	r = n.call(t, "POST", path(jb.Player), "", n.Token)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	requireClosedWith(t, bob, wire.CloseKicked, "kicked by an operator")
}

func TestKickRejectsBadRequests(t *testing.T) {
	t.Parallel()
	n := startNodeWith(t, nodeOptions{})
	id := n.createRoom(t, `{"mode":"arena"}`).ID
	noReconnect := client.DefaultConfig()
	noReconnect.Reconnect.Attempts = 0
	alice := n.player(t, noReconnect)
	ja := joinRoom(t, alice, id)
	path := func(p string) string { return fmt.Sprintf("/admin/rooms/%s/players/%s/kick", id, p) }
	aliceID := strconv.Itoa(int(ja.Player))

	for _, tc := range []struct {
		name, pid, body, contentType string
		status                       int
		code                         string
	}{
		{"unknown player", "99", "", "", 404, "player_not_found"},
		{"pid not a number", "abc", "", "", 400, "bad_request"},
		{"pid 0", "0", "", "", 400, "bad_request"},
		{"negative pid", "-1", "", "", 400, "bad_request"},
		{"pid beyond uint32", "4294967296", "", "", 400, "bad_request"},
		{"reason too long for a close frame", aliceID, fmt.Sprintf(`{"reason":%q}`, strings.Repeat("r", wire.MaxCloseReason+1)), "", 400, "bad_request"},
		{"unknown field", aliceID, `{"why":"x"}`, "", 400, "bad_request"},
		{"invalid JSON", aliceID, `{"reason":`, "", 400, "bad_request"},
		{"text/plain", aliceID, `{"reason":"x"}`, "text/plain", 415, "unsupported_media_type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := n.request(t, "POST", path(tc.pid), tc.body, n.Token)
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			r := n.send(t, req)
			assert.Equal(t, tc.status, r.status, string(r.body))
			assert.Equal(t, tc.code, r.code(t))
		})
	}
	assert.Equal(t, 1, n.room(t, id).PlayerCount, "no bad request kicked anyone")

	// The longest reason that fits a close frame is fine, and arrives whole.
	reason := strings.Repeat("é", wire.MaxCloseReason/2) + "!"
	require.Len(t, reason, wire.MaxCloseReason)
	r := n.call(t, "POST", path(aliceID), fmt.Sprintf(`{"reason":%q}`, reason), n.Token)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	requireClosedWith(t, alice, wire.CloseKicked, reason)
}

// ---- Broadcast ----

func TestBroadcast(t *testing.T) {
	t.Parallel()
	n := startNodeWith(t, nodeOptions{})
	id := n.createRoom(t, `{"mode":"arena"}`).ID
	alice := n.player(t, client.DefaultConfig())
	bob := n.player(t, client.DefaultConfig())
	joinRoom(t, alice, id)
	joinRoom(t, bob, id)
	// Carol's seat is held: she gets nothing and is not counted.
	proxy, viaProxy := netcodetest.NewProxyURL(t, n.URL)
	noReconnect := client.DefaultConfig()
	noReconnect.Reconnect.Attempts = 0
	carol := dial(t, viaProxy, noReconnect)
	joinRoom(t, carol, id)
	proxy.CutAll()
	require.Eventually(t, func() bool { return n.room(t, id).Players[2].State == "held" }, wait, 10*time.Millisecond)

	data := `{"msg":"restart in 5 minutes","n":5,"neg":-7,"big":9007199254740993,"f":1.5,"list":[1,"two",true,null],"nested":{"empty":[],"zero":0}}`
	r := n.call(t, "POST", "/admin/rooms/"+id+"/broadcast", `{"data":`+data+`}`, n.Token)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	assert.JSONEq(t, fmt.Sprintf(`{"room":%q,"recipients":2}`, id), string(r.body))
	want := map[string]any{
		"msg":    "restart in 5 minutes",
		"n":      int64(5),
		"neg":    int64(-7),
		"big":    int64(9007199254740993), // 2^53+1: no detour through float64
		"f":      1.5,
		"list":   []any{int64(1), "two", true, nil},
		"nested": map[string]any{"empty": []any{}, "zero": int64(0)},
	}
	for _, c := range []*client.Client{alice, bob} {
		e := awaitEvent(t, c, client.EventRoomMessage)
		assert.Equal(t, wire.FromOperator, e.From)
		assert.Equal(t, want, decodeMsgpack(t, e.Payload))
	}

	// Any JSON value, scalars too.
	for _, tc := range []struct {
		data string
		want any
	}{
		{`42`, int64(42)},
		{`-1`, int64(-1)},
		{`0.25`, 0.25},
		{`"hello"`, "hello"},
		{`true`, true},
		{`[]`, []any{}},
	} {
		r := n.call(t, "POST", "/admin/rooms/"+id+"/broadcast", `{"data":`+tc.data+`}`, n.Token)
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		e := awaitEvent(t, alice, client.EventRoomMessage)
		assert.Equal(t, wire.FromOperator, e.From)
		assert.Equal(t, tc.want, decodeMsgpack(t, e.Payload), tc.data)
	}
}

func TestBroadcastRejectsBadRequests(t *testing.T) {
	t.Parallel()
	n := startNodeWith(t, nodeOptions{})
	id := n.createRoom(t, `{"mode":"arena"}`).ID
	alice := n.player(t, client.DefaultConfig())
	joinRoom(t, alice, id)
	path := "/admin/rooms/" + id + "/broadcast"
	big, err := json.Marshal(map[string]string{"data": strings.Repeat("x", 2000)})
	require.NoError(t, err)
	for _, tc := range []struct {
		name, body, contentType string
		status                  int
		code                    string
	}{
		{"no body", ``, "", 400, "bad_request"},
		{"no data", `{}`, "", 400, "bad_request"},
		{"unknown field", `{"data":1,"to":2}`, "", 400, "bad_request"},
		{"invalid JSON", `{"data":`, "", 400, "bad_request"},
		{"data over MaxBroadcastBytes", string(big), "", 413, "too_large"},
		{"number no float64 holds", `{"data":[1,1e400]}`, "", 400, "bad_request"},
		{"text/plain", `{"data":1}`, "text/plain", 415, "unsupported_media_type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := n.request(t, "POST", path, tc.body, n.Token)
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			r := n.send(t, req)
			assert.Equal(t, tc.status, r.status, string(r.body))
			assert.Equal(t, tc.code, r.code(t))
		})
	}
	// None of them reached the player: the first message Alice gets is the
	// one valid broadcast.
	r := n.call(t, "POST", path, `{"data":"valid"}`, n.Token)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	e := awaitEvent(t, alice, client.EventRoomMessage)
	assert.Equal(t, "valid", decodeMsgpack(t, e.Payload))
}

// ---- Pause, step, resume ----

// While paused, clients keep getting a snapshot a tick, flagged paused, in
// which nothing moves although they send inputs; a step of 5 ticks moves
// them exactly five times; resume lets them move on.
func TestPauseStepResume(t *testing.T) {
	t.Parallel()
	n := startNodeWith(t, nodeOptions{})
	id := n.createRoom(t, `{"mode":"arena"}`).ID
	var snaps snapLog
	cfg := client.DefaultConfig()
	cfg.OnSnapshot = snaps.record
	alice := n.player(t, cfg)
	bob := n.player(t, client.DefaultConfig())
	ja := joinRoom(t, alice, id)
	jb := joinRoom(t, bob, id)
	require.Eventually(t, func() bool {
		_, okA := entityOf(alice.State().Entities, ja.Player)
		_, okB := entityOf(alice.State().Entities, jb.Player)
		return okA && okB
	}, wait, 5*time.Millisecond)
	before, ok := snaps.last()
	require.True(t, ok)
	assert.False(t, before.paused)

	r := n.call(t, "POST", "/admin/rooms/"+id+"/pause", "", n.Token)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	paused := fromJSON[pauseJSON](t, r.body)
	assert.Equal(t, pauseJSON{Room: id, Paused: true, GameTick: paused.GameTick}, paused)
	r = n.call(t, "POST", "/admin/rooms/"+id+"/pause", "", n.Token)
	assert.Equal(t, http.StatusConflict, r.status)
	assert.Equal(t, "already_paused", r.code(t))
	assert.True(t, n.room(t, id).Paused)

	// The first paused snapshot, and where everyone is.
	first := snaps.await(t, "a paused snapshot", func(s snapRecord) bool { return s.paused })
	a0, _ := entityOf(first.entities, ja.Player)
	b0, _ := entityOf(first.entities, jb.Player)
	dir, sign := awayFromWall(a0.Fields[0])

	// Alice tries to move; the game does not step.
	var seq uint32
	for range 3 {
		var err error
		seq, err = alice.SendInput([]byte{dir})
		require.NoError(t, err)
	}
	snaps.await(t, "30 more snapshots", func(s snapRecord) bool { return s.tick >= first.tick+30 })
	for _, s := range snaps.since(first.tick) {
		require.True(t, s.paused, "tick %d", s.tick)
		a, _ := entityOf(s.entities, ja.Player)
		b, _ := entityOf(s.entities, jb.Player)
		require.Equal(t, a0, a, "tick %d: Alice stays put", s.tick)
		require.Equal(t, b0, b, "tick %d", s.tick)
		require.Zero(t, s.ack, "tick %d: inputs wait while paused", s.tick)
	}
	room := n.room(t, id)
	assert.True(t, room.Paused)
	assert.Equal(t, paused.GameTick, room.Tick.Game, "the game did not step")
	assert.Greater(t, room.Tick.Current, room.Tick.Game, "the room ticks on")
	assert.Zero(t, room.Players[0].LastInputSeq)

	// Five steps: the queued inputs apply, and Alice moves five times.
	r = n.call(t, "POST", "/admin/rooms/"+id+"/step?ticks=5", "", n.Token)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	stepped := fromJSON[pauseJSON](t, r.body)
	assert.Equal(t, id, stepped.Room)
	assert.True(t, stepped.Paused)
	// game_tick is the room tick of the last step: the game stepped at five
	// of the room's ticks, which have gone on counting meanwhile.
	assert.Greater(t, stepped.GameTick, paused.GameTick)
	assert.Equal(t, stepped.GameTick, n.room(t, id).Tick.Game)
	perTick := int32(12) // the arena's 7.2 units a second at 60 Hz, in centi-units
	atStep := snaps.await(t, "the last step's snapshot", func(s snapRecord) bool { return s.tick >= stepped.GameTick })
	a1, _ := entityOf(atStep.entities, ja.Player)
	b1, _ := entityOf(atStep.entities, jb.Player)
	assert.Equal(t, a0.Fields[0]+sign*5*perTick, a1.Fields[0], "five steps, five moves")
	assert.Equal(t, a0.Fields[1], a1.Fields[1])
	assert.Equal(t, b0, b1, "Bob sent nothing")
	assert.True(t, atStep.paused)
	assert.Equal(t, seq, atStep.ack, "the steps applied Alice's inputs")
	// And no more than five.
	snaps.await(t, "20 more snapshots", func(s snapRecord) bool { return s.tick >= atStep.tick+20 })
	for _, s := range snaps.since(atStep.tick) {
		require.True(t, s.paused, "tick %d", s.tick)
		a, _ := entityOf(s.entities, ja.Player)
		require.Equal(t, a1, a, "tick %d", s.tick)
	}

	r = n.call(t, "POST", "/admin/rooms/"+id+"/resume", "", n.Token)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	resumed := fromJSON[pauseJSON](t, r.body)
	assert.False(t, resumed.Paused)
	assert.GreaterOrEqual(t, resumed.GameTick, stepped.GameTick)
	snaps.await(t, "Alice moving again, unflagged", func(s snapRecord) bool {
		a, _ := entityOf(s.entities, ja.Player)
		return !s.paused && sign*(a.Fields[0]-a1.Fields[0]) > 0
	})
	assert.False(t, n.room(t, id).Paused)

	r = n.call(t, "POST", "/admin/rooms/"+id+"/resume", "", n.Token)
	assert.Equal(t, http.StatusConflict, r.status)
	assert.Equal(t, "not_paused", r.code(t))
	r = n.call(t, "POST", "/admin/rooms/"+id+"/step?ticks=5", "", n.Token)
	assert.Equal(t, http.StatusConflict, r.status, "a running room does not step")
	assert.Equal(t, "not_paused", r.code(t))
}

func TestStepRejectsBadRequests(t *testing.T) {
	t.Parallel()
	n := startNodeWith(t, nodeOptions{})
	id := n.createRoom(t, `{"mode":"arena"}`).ID
	require.Equal(t, http.StatusOK, n.call(t, "POST", "/admin/rooms/"+id+"/pause", "", n.Token).status)
	for _, ticks := range []string{"0", "-1", "601", "99999999999999999999", "abc", "1.5"} {
		r := n.call(t, "POST", "/admin/rooms/"+id+"/step?ticks="+ticks, "", n.Token)
		assert.Equal(t, http.StatusBadRequest, r.status, ticks)
		assert.Equal(t, "bad_request", r.code(t), ticks)
	}
	for _, op := range []string{"pause", "resume", "step"} {
		r := n.call(t, "POST", "/admin/rooms/"+id+"/"+op, `{"ticks":5}`, n.Token)
		assert.Equal(t, http.StatusBadRequest, r.status, "%s takes no body", op)
		assert.Equal(t, "bad_request", r.code(t))
	}
	r := n.call(t, "POST", "/admin/rooms/"+id+"/step", "", n.Token)
	require.Equal(t, http.StatusOK, r.status, "one step by default: %s", r.body)
	r = n.call(t, "POST", "/admin/rooms/"+id+"/step", "{}", n.Token)
	require.Equal(t, http.StatusOK, r.status, "an empty object is no body: %s", r.body)
	game := n.room(t, id).Tick.Game

	// A long step (MaxSteps is fine) waits; another step meanwhile is
	// refused; resume ends it.
	long := make(chan response, 1)
	go func() { long <- n.callAsync("POST", "/admin/rooms/"+id+"/step?ticks=600") }()
	require.Eventually(t, func() bool { return n.room(t, id).Tick.Game > game }, wait, 5*time.Millisecond,
		"the long step is under way")
	r = n.call(t, "POST", "/admin/rooms/"+id+"/step?ticks=1", "", n.Token)
	assert.Equal(t, http.StatusConflict, r.status)
	assert.Equal(t, "stepping", r.code(t))
	require.Equal(t, http.StatusOK, n.call(t, "POST", "/admin/rooms/"+id+"/resume", "", n.Token).status)
	select {
	case r := <-long:
		require.NoError(t, r.err)
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		assert.False(t, fromJSON[pauseJSON](t, r.body).Paused)
	case <-time.After(wait):
		t.Fatal("the long step did not end with the resume")
	}

	// A step whose client goes away is cancelled: the next step is taken.
	require.Equal(t, http.StatusOK, n.call(t, "POST", "/admin/rooms/"+id+"/pause", "", n.Token).status)
	game = n.room(t, id).Tick.Game
	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan error, 1)
	go func() {
		req, err := http.NewRequestWithContext(ctx, "POST", n.AdminURL+"/admin/rooms/"+id+"/step?ticks=600", nil)
		if err == nil {
			req.Header.Set("Authorization", "Bearer "+n.Token)
			var resp *http.Response
			if resp, err = http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
		gone <- err
	}()
	require.Eventually(t, func() bool { return n.room(t, id).Tick.Game > game }, wait, 5*time.Millisecond)
	cancel()
	require.ErrorIs(t, <-gone, context.Canceled)
	require.Eventually(t, func() bool {
		return n.call(t, "POST", "/admin/rooms/"+id+"/step?ticks=1", "", n.Token).status == http.StatusOK
	}, wait, 10*time.Millisecond, "the abandoned steps were cancelled")
	assert.True(t, n.room(t, id).Paused)
}

// ---- State ----

// A paused room's state restores into a fresh arena whose entities are the
// ones the room shows, and re-encodes to the same bytes.
func TestStateRestoresIntoAFreshArena(t *testing.T) {
	t.Parallel()
	n := startNodeWith(t, nodeOptions{})
	id := n.createRoom(t, `{"mode":"arena"}`).ID
	var snaps snapLog
	cfg := client.DefaultConfig()
	cfg.OnSnapshot = snaps.record
	alice := n.player(t, cfg)
	bob := n.player(t, client.DefaultConfig())
	ja := joinRoom(t, alice, id)
	jb := joinRoom(t, bob, id)
	start := snaps.await(t, "both players", func(s snapRecord) bool {
		_, okA := entityOf(s.entities, ja.Player)
		_, okB := entityOf(s.entities, jb.Player)
		return okA && okB
	})
	a0, _ := entityOf(start.entities, ja.Player)
	dir, _ := awayFromWall(a0.Fields[0])
	_, err := alice.SendInput([]byte{dir | sim.ArenaDown})
	require.NoError(t, err)
	snaps.await(t, "Alice moving", func(s snapRecord) bool {
		a, _ := entityOf(s.entities, ja.Player)
		return a != a0
	})

	r := n.call(t, "POST", "/admin/rooms/"+id+"/pause", "", n.Token)
	require.Equal(t, http.StatusOK, r.status)
	paused := fromJSON[pauseJSON](t, r.body)
	seen := snaps.await(t, "a paused snapshot", func(s snapRecord) bool { return s.paused })

	r = n.call(t, "GET", "/admin/rooms/"+id+"/state", "", n.Token)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	assert.Equal(t, "application/octet-stream", r.header.Get("Content-Type"))
	assert.Equal(t, strconv.FormatUint(paused.GameTick, 10), r.header.Get("X-Tickroom-Tick"))
	assert.Equal(t, "arena", r.header.Get("X-Tickroom-Mode"))
	assert.Contains(t, r.header.Get("Content-Disposition"), id)

	arena, err := sim.NewArena(sim.DefaultArenaConfig(), 0)
	require.NoError(t, err)
	require.NoError(t, arena.UnmarshalState(r.body))
	restored := toWire(arena.AppendEntities(nil))
	assert.Equal(t, seen.entities, restored, "the entities players see")
	f, err := mustRoom(t, n, id).Frame()
	require.NoError(t, err)
	assert.Equal(t, toWire(f.Entities), restored, "the entities the room shows")
	again, err := arena.MarshalState()
	require.NoError(t, err)
	assert.Equal(t, r.body, again, "a lossless round trip")

	// The watch feed shows the same.
	s := n.openStream(t, "/admin/rooms/"+id+"/watch")
	require.Equal(t, http.StatusOK, s.status)
	frame := fromJSON[frameJSON](t, s.await(t, "frame").data)
	assert.True(t, frame.Paused)
	assert.Equal(t, restored, rowsToWire(t, frame.Entities))
}

// ---- Watch ----

func TestWatchStreamsARoom(t *testing.T) {
	t.Parallel()
	n := startNodeWith(t, nodeOptions{})
	id := n.createRoom(t, `{"mode":"arena","max_players":3}`).ID
	alice := n.player(t, client.DefaultConfig())
	bob := n.player(t, client.DefaultConfig())
	ja := joinRoom(t, alice, id)
	jb := joinRoom(t, bob, id)
	require.Eventually(t, func() bool { return len(alice.State().Entities) == 2 }, wait, 5*time.Millisecond)
	seen := alice.State().Entities // nobody moves

	s := n.openStream(t, "/admin/rooms/"+id+"/watch?hz=20")
	require.Equal(t, http.StatusOK, s.status, string(s.body))
	assert.Equal(t, "text/event-stream", s.header.Get("Content-Type"))

	first, ok := s.next(t)
	require.True(t, ok)
	require.Equal(t, "view", first.name, "the first event says how to draw the room")
	assert.JSONEq(t, fmt.Sprintf(`{"room":%q,"mode":"arena","max_players":3,"tick_rate":60,
		"view":{"width":10000,"height":10000,"x":0,"y":1,"kinds":{"1":"player"}}}`, id), string(first.data))

	frame := fromJSON[frameJSON](t, s.await(t, "frame").data)
	assert.Positive(t, frame.Tick)
	assert.False(t, frame.Paused)
	assert.Equal(t, seen, rowsToWire(t, frame.Entities))
	for _, row := range frame.Entities {
		assert.Equal(t, int64(sim.ArenaPlayerKind), row[1])
	}

	room := fromJSON[roomJSON](t, s.await(t, "room").data)
	assert.Equal(t, id, room.ID)
	assert.Equal(t, 2, room.PlayerCount)
	require.Len(t, room.Players, 2)
	assert.Equal(t, []uint32{ja.Player, jb.Player}, []uint32{room.Players[0].ID, room.Players[1].ID})

	// Frames keep coming, their ticks increasing.
	next := fromJSON[frameJSON](t, s.await(t, "frame").data)
	assert.Greater(t, next.Tick, frame.Tick)

	require.Equal(t, http.StatusNoContent, n.call(t, "DELETE", "/admin/rooms/"+id, "", n.Token).status)
	closed := s.await(t, "closed")
	assert.JSONEq(t, fmt.Sprintf(`{"room":%q}`, id), string(closed.data))
	_, more := s.next(t)
	assert.False(t, more, "the stream ends with the room")
}

func TestWatchRejectsBadRates(t *testing.T) {
	t.Parallel()
	n := startNodeWith(t, nodeOptions{})
	id := n.createRoom(t, `{"mode":"arena"}`).ID
	for _, hz := range []string{"0", "-1", "31", "1000", "abc", "2.5"} {
		r := n.call(t, "GET", "/admin/rooms/"+id+"/watch?hz="+hz, "", n.Token)
		assert.Equal(t, http.StatusBadRequest, r.status, hz)
		assert.Equal(t, "bad_request", r.code(t), hz)
	}
	for _, hz := range []string{"1", "30"} {
		s := n.openStream(t, "/admin/rooms/"+id+"/watch?hz="+hz)
		assert.Equal(t, http.StatusOK, s.status, hz)
		s.close()
	}
}

func TestEventStreamsAreBounded(t *testing.T) {
	t.Parallel()
	n := startNodeWith(t, nodeOptions{admin: func(c *admin.Config) { c.MaxStreams = 2 }})
	id := n.createRoom(t, `{"mode":"arena"}`).ID
	events := n.openStream(t, "/admin/events")
	require.Equal(t, http.StatusOK, events.status)
	watch := n.openStream(t, "/admin/rooms/"+id+"/watch")
	require.Equal(t, http.StatusOK, watch.status)
	events.await(t, "history")
	watch.await(t, "view")

	for _, path := range []string{"/admin/events", "/admin/rooms/" + id + "/watch"} {
		r := n.call(t, "GET", path, "", n.Token)
		assert.Equal(t, http.StatusServiceUnavailable, r.status, path)
		assert.Equal(t, "too_many_streams", r.code(t), path)
		// A HEAD gets the headers without a stream, so it needs no slot.
		head := n.call(t, "HEAD", path, "", n.Token)
		assert.Equal(t, http.StatusOK, head.status, "HEAD %s", path)
		assert.Equal(t, "text/event-stream", head.header.Get("Content-Type"))
	}

	// A stream that ends gives its slot back.
	events.close()
	require.Eventually(t, func() bool {
		s := n.openStream(t, "/admin/events")
		defer s.close()
		return s.status == http.StatusOK
	}, wait, 10*time.Millisecond)
	// The room's end ends its watch streams, and frees their slots too.
	require.Equal(t, http.StatusNoContent, n.call(t, "DELETE", "/admin/rooms/"+id, "", n.Token).status)
	watch.await(t, "closed")
	require.Eventually(t, func() bool {
		a := n.openStream(t, "/admin/events")
		defer a.close()
		b := n.openStream(t, "/admin/events")
		defer b.close()
		return a.status == http.StatusOK && b.status == http.StatusOK
	}, wait, 10*time.Millisecond)
}

// ---- Node feed ----

func TestEventsFeed(t *testing.T) {
	t.Parallel()
	// Samples every 100 ms, of which the feed keeps three.
	n := startNodeWith(t, nodeOptions{admin: func(c *admin.Config) { c.History = 300 * time.Millisecond }})
	id := n.createRoom(t, `{"mode":"arena","max_players":4}`).ID
	alice := n.player(t, client.DefaultConfig())
	bob := n.player(t, client.DefaultConfig())
	ja := joinRoom(t, alice, id)
	joinRoom(t, bob, id)

	a := n.openStream(t, "/admin/events")
	require.Equal(t, http.StatusOK, a.status, string(a.body))
	assert.Equal(t, "text/event-stream", a.header.Get("Content-Type"))
	first, ok := a.next(t)
	require.True(t, ok)
	require.Equal(t, "history", first.name, "the feed starts with the history")
	h := fromJSON[historyJSON](t, first.data)
	assert.Equal(t, int64(100), h.IntervalMs)
	assert.LessOrEqual(t, len(h.Samples), 3)

	// Samples count the node's rooms, players and connections.
	var samples int
	var got sampleJSON
	awaitSample := func(what string, ok func(s sampleJSON) bool) {
		t.Helper()
		deadline := time.After(wait)
		for {
			select {
			case <-deadline:
				t.Fatalf("no sample with %s within %v; last %+v", what, wait, got)
			default:
			}
			got = fromJSON[sampleJSON](t, a.await(t, "sample").data)
			samples++
			if ok(got) {
				return
			}
		}
	}
	awaitSample("a room of two players", func(s sampleJSON) bool {
		return s.Rooms == 1 && s.Players == 2 && s.Connections == 2
	})
	assert.Equal(t, 1, got.RoomsTotal)
	require.Len(t, got.RoomList, 1)
	assert.Equal(t, roomRowJSON{ID: id, Mode: "arena", PlayerCount: 2, MaxPlayers: 4, Paused: false}, got.RoomList[0].withoutTiming())
	assert.Positive(t, got.T)
	awaitSample("traffic", func(s sampleJSON) bool { return s.BytesOutPerSec > 0 && s.BytesInPerSec > 0 })

	// Once the feed has published more samples than it keeps, a new
	// stream's history is full.
	awaitSample("a fourth sample", func(sampleJSON) bool { return samples >= 4 })
	b := n.openStream(t, "/admin/events")
	h = fromJSON[historyJSON](t, b.await(t, "history").data)
	require.Len(t, h.Samples, 3)
	for i := 1; i < len(h.Samples); i++ {
		assert.Greater(t, h.Samples[i].T, h.Samples[i-1].T, "oldest first")
	}
	last := h.Samples[2]
	assert.Equal(t, 1, last.Rooms)
	assert.Equal(t, 2, last.Players)
	b.close()

	// A player leaves: fewer players and connections, and the disconnect.
	var disconnects uint64
	require.NoError(t, alice.Close())
	awaitSample("alice gone", func(s sampleJSON) bool {
		disconnects += s.Disconnects
		return s.Players == 1 && s.Connections == 1 && len(s.RecentDisconnects) > 0
	})
	assert.LessOrEqual(t, disconnects, uint64(1), "one disconnect, counted in one sample")
	d := got.RecentDisconnects[0]
	assert.Equal(t, "client_closed", d.Reason)
	assert.Equal(t, int(wire.CloseNormal), d.Code)
	assert.Equal(t, fmt.Sprintf("room=%s player=%d", id, ja.Player), d.Label)
	assert.Equal(t, client.DefaultConfig().Name, d.Client)
	assert.Positive(t, d.Conn)
}

// ---- Routing ----

func TestUnknownPathsAndWrongMethods(t *testing.T) {
	t.Parallel()
	n := startNodeWith(t, nodeOptions{})
	for _, path := range []string{"/nope", "/admin", "/admin/nope", "/admin/rooms/x/y", "/admin/rooms/x/players/1", "/metrics/x"} {
		for _, token := range []string{n.Token, noToken} {
			r := n.call(t, "GET", path, "", token)
			assert.Equal(t, http.StatusNotFound, r.status, path)
			assert.Equal(t, "not_found", r.code(t), path)
			assert.Equal(t, "application/json", r.header.Get("Content-Type"))
		}
	}
	// Allow names HEAD wherever GET is allowed: net/http answers it.
	for _, tc := range []struct{ method, path, allow string }{
		{"DELETE", "/admin/rooms", "GET, HEAD, POST"},
		{"PUT", "/admin/rooms/x", "DELETE, GET, HEAD"},
		{"POST", "/admin/rooms/x", "DELETE, GET, HEAD"},
		{"GET", "/admin/rooms/x/pause", "POST"},
		{"GET", "/admin/rooms/x/resume", "POST"},
		{"GET", "/admin/rooms/x/step", "POST"},
		{"GET", "/admin/rooms/x/broadcast", "POST"},
		{"GET", "/admin/rooms/x/players/1/kick", "POST"},
		{"POST", "/admin/rooms/x/state", "GET, HEAD"},
		{"POST", "/admin/rooms/x/watch", "GET, HEAD"},
		{"POST", "/admin/events", "GET, HEAD"},
		{"POST", "/metrics", "GET, HEAD"},
		{"POST", "/openapi.json", "GET, HEAD"},
		{"POST", "/healthz", "GET, HEAD"},
		{"DELETE", "/readyz", "GET, HEAD"},
		{"PATCH", "/debug/pprof/symbol", "GET, HEAD, POST"},
		{"POST", "/debug/pprof/", "GET, HEAD"},
	} {
		r := n.call(t, tc.method, tc.path, "", n.Token)
		assert.Equal(t, http.StatusMethodNotAllowed, r.status, "%s %s", tc.method, tc.path)
		assert.Equal(t, "method_not_allowed", r.code(t), "%s %s", tc.method, tc.path)
		assert.Equal(t, tc.allow, r.header.Get("Allow"), "%s %s", tc.method, tc.path)
	}
}

// A web page must not drive the API through the operator's browser.
func TestCrossOriginWritesAreRefused(t *testing.T) {
	t.Parallel()
	n := startNodeWith(t, nodeOptions{})
	id := n.createRoom(t, `{"mode":"arena"}`).ID
	crossSite := []string{"Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site"}
	for _, tc := range []struct {
		method, path, body string
		headers            []string
	}{
		{"POST", "/admin/rooms", `{"mode":"arena"}`, crossSite},
		{"DELETE", "/admin/rooms/" + id, "", crossSite},
		{"POST", "/admin/rooms/" + id + "/pause", "", crossSite},
		{"POST", "/admin/rooms/" + id + "/broadcast", `{"data":"pwned"}`, crossSite},
		{"POST", "/admin/rooms/" + id + "/players/1/kick", "", crossSite},
		{"POST", "/admin/rooms", `{"mode":"arena"}`, []string{"Sec-Fetch-Site", "same-site"}},
		// An older browser sends no Sec-Fetch-Site, only an Origin.
		{"POST", "/admin/rooms", `{"mode":"arena"}`, []string{"Origin", "http://evil.example"}},
	} {
		r := n.send(t, n.request(t, tc.method, tc.path, tc.body, n.Token, tc.headers...))
		assert.Equal(t, http.StatusForbidden, r.status, "%s %s %v", tc.method, tc.path, tc.headers)
		assert.Equal(t, "cross_origin", r.code(t))
	}
	assert.Len(t, n.Registry.List(), 1, "nothing was created or deleted")
	assert.False(t, mustRoom(t, n, id).Paused())

	// Reads are not refused, and neither are same-origin writes or
	// requests from outside a browser.
	r := n.send(t, n.request(t, "GET", "/admin/rooms", "", n.Token, crossSite...))
	assert.Equal(t, http.StatusOK, r.status)
	for _, headers := range [][]string{
		{"Sec-Fetch-Site", "same-origin"},
		{"Origin", n.AdminURL},
		nil, // curl
	} {
		r := n.send(t, n.request(t, "POST", "/admin/rooms", `{"mode":"arena"}`, n.Token, headers...))
		assert.Equal(t, http.StatusCreated, r.status, "%v: %s", headers, r.body)
	}
}

// ---- Authentication ----

func TestTokenIsRequired(t *testing.T) {
	t.Parallel()
	n := startNodeWith(t, nodeOptions{})
	protected := []struct{ method, path, body string }{
		{"GET", "/openapi.json", ""},
		{"GET", "/metrics", ""},
		{"GET", "/admin/events", ""},
		{"GET", "/admin/rooms", ""},
		{"POST", "/admin/rooms", `{"mode":"arena"}`},
		{"GET", "/admin/rooms/nosuchroom", ""},
		{"DELETE", "/admin/rooms/nosuchroom", ""},
		{"POST", "/admin/rooms/nosuchroom/players/1/kick", ""},
		{"POST", "/admin/rooms/nosuchroom/broadcast", `{"data":1}`},
		{"POST", "/admin/rooms/nosuchroom/pause", ""},
		{"POST", "/admin/rooms/nosuchroom/resume", ""},
		{"POST", "/admin/rooms/nosuchroom/step", ""},
		{"GET", "/admin/rooms/nosuchroom/state", ""},
		{"GET", "/admin/rooms/nosuchroom/watch", ""},
		{"GET", "/debug/pprof/", ""},
		{"GET", "/debug/pprof/goroutine?debug=1", ""},
		{"GET", "/debug/pprof/cmdline", ""},
		{"GET", "/debug/pprof/profile?seconds=1", ""},
		{"GET", "/debug/pprof/symbol", ""},
		{"POST", "/debug/pprof/symbol", ""},
		{"GET", "/debug/pprof/trace?seconds=0.05", ""},
		// Wrong methods and unknown rooms are nobody's business either.
		{"DELETE", "/admin/rooms", ""},
		{"PUT", "/metrics", ""},
	}
	for _, route := range protected {
		t.Run(route.method+" "+route.path, func(t *testing.T) {
			t.Parallel()
			for _, auth := range []string{
				"",
				"Bearer wrong-token",
				"Bearer " + n.Token + "x",
				"Bearer ",
				"Basic " + basic("admin", n.Token),
				n.Token, // no scheme
				"Token " + n.Token,
			} {
				req := n.request(t, route.method, route.path, route.body, noToken)
				if auth != "" {
					req.Header.Set("Authorization", auth)
				}
				r := n.send(t, req)
				assert.Equal(t, http.StatusUnauthorized, r.status, "Authorization %q", auth)
				assert.Equal(t, "unauthorized", r.code(t))
				assert.Equal(t, `Bearer realm="tickroom admin"`, r.header.Get("WWW-Authenticate"))
			}
			if route.method == "POST" && route.path == "/admin/rooms" {
				// The one route here that would leave a trace.
				assert.Empty(t, n.Registry.List(), "no unauthenticated POST created a room")
			}
			status := n.statusOnly(t, route.method, route.path, route.body)
			assert.NotEqual(t, http.StatusUnauthorized, status, "with the token")

		})
	}
	t.Run("scheme in any case", func(t *testing.T) {
		t.Parallel()
		// The scheme's name is case-insensitive (RFC 9110, 11.1).
		for _, scheme := range []string{"bearer", "BEARER"} {
			req := n.request(t, "GET", "/admin/rooms", "", noToken)
			req.Header.Set("Authorization", scheme+" "+n.Token)
			assert.Equal(t, http.StatusOK, n.send(t, req).status, scheme)
		}
	})
	t.Run("open routes", func(t *testing.T) {
		t.Parallel()
		for _, path := range []string{"/healthz", "/readyz", "/", "/static/"} {
			r := n.call(t, "GET", path, "", noToken)
			assert.Equal(t, http.StatusOK, r.status, path)
		}
	})
}

func TestListenRefusesNonLoopbackWithoutToken(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:0", "example.com:0"} {
		ln, err := admin.Listen(addr, "")
		require.ErrorIs(t, err, admin.ErrInsecureListen, addr)
		require.Nil(t, ln)
	}
	_, err := admin.Listen("no-port", "")
	require.Error(t, err)
	require.NotErrorIs(t, err, admin.ErrInsecureListen)

	for _, addr := range []string{"127.0.0.1:0", "localhost:0"} {
		ln, err := admin.Listen(addr, "")
		require.NoError(t, err, addr)
		require.NoError(t, ln.Close())
	}
	// With a token, any address: bind and close at once.
	for _, addr := range []string{"0.0.0.0:0", ":0"} {
		ln, err := admin.Listen(addr, testToken)
		require.NoError(t, err, addr)
		require.NoError(t, ln.Close())
	}
}

// ---- Metrics ----

func TestMetricsFollowPlayers(t *testing.T) {
	t.Parallel()
	n := startNodeWith(t, nodeOptions{})
	m0 := n.metrics(t)
	for _, name := range []string{"tickroom_rooms", "tickroom_players", "tickroom_connections"} {
		assert.Zero(t, m0.get(t, name), name)
	}
	assert.Positive(t, m0.get(t, "go_goroutines"), "Go runtime metrics")
	for _, reason := range netcode.DisconnectReasons() {
		assert.Zero(t, m0.get(t, fmt.Sprintf(`tickroom_disconnects_total{reason=%q}`, reason)), reason.String())
	}

	id := n.createRoom(t, `{"mode":"arena"}`).ID
	alice := n.player(t, client.DefaultConfig())
	noReconnect := client.DefaultConfig()
	noReconnect.Reconnect.Attempts = 0
	bob := n.player(t, noReconnect)
	joinRoom(t, alice, id)
	jb := joinRoom(t, bob, id)
	m1 := n.awaitMetrics(t, map[string]float64{
		"tickroom_rooms": 1, "tickroom_players": 2, "tickroom_connections": 2, "tickroom_rooms_created_total": 1,
	})
	assert.Zero(t, m1.get(t, "tickroom_rooms_paused"))
	m2 := n.awaitMetrics(t, nil, func(m metricSet) bool {
		return m.get(t, "tickroom_ticks_total") > m1.get(t, "tickroom_ticks_total") &&
			m.get(t, "tickroom_snapshot_bytes_count") > m1.get(t, "tickroom_snapshot_bytes_count")
	})
	for _, name := range []string{
		`tickroom_bytes_total{direction="in"}`, `tickroom_bytes_total{direction="out"}`,
		`tickroom_messages_total{direction="in"}`, `tickroom_messages_total{direction="out"}`,
		"tickroom_snapshot_bytes_count", "tickroom_snapshot_bytes_sum", "tickroom_tick_duration_seconds_count",
		`tickroom_connections_accepted_total`, "tickroom_clock_ticks_total", "tickroom_clock_lateness_seconds_count",
	} {
		assert.Greater(t, m2.get(t, name), m0.get(t, name), name)
	}
	assert.GreaterOrEqual(t, m2.get(t, `tickroom_bytes_total{direction="out"}`), m1.get(t, `tickroom_bytes_total{direction="out"}`))

	require.Equal(t, http.StatusOK, n.call(t, "POST", "/admin/rooms/"+id+"/pause", "", n.Token).status)
	n.awaitMetrics(t, map[string]float64{"tickroom_rooms_paused": 1})
	require.Equal(t, http.StatusOK, n.call(t, "POST", "/admin/rooms/"+id+"/resume", "", n.Token).status)

	require.NoError(t, alice.Close())
	n.awaitMetrics(t, map[string]float64{
		"tickroom_players": 1, "tickroom_connections": 1,
		`tickroom_disconnects_total{reason="client_closed"}`: 1,
		`tickroom_disconnects_total{reason="kicked"}`:        0,
	})
	r := n.call(t, "POST", fmt.Sprintf("/admin/rooms/%s/players/%d/kick", id, jb.Player), "", n.Token)
	require.Equal(t, http.StatusOK, r.status)
	n.awaitMetrics(t, map[string]float64{
		"tickroom_players": 0, "tickroom_connections": 0, "tickroom_rooms": 1,
		`tickroom_disconnects_total{reason="client_closed"}`: 1,
		`tickroom_disconnects_total{reason="kicked"}`:        1,
	})
	require.Equal(t, http.StatusNoContent, n.call(t, "DELETE", "/admin/rooms/"+id, "", n.Token).status)
	n.awaitMetrics(t, map[string]float64{"tickroom_rooms": 0, "tickroom_rooms_closed_total": 1})
}

func TestPprofNeedsToken(t *testing.T) {
	t.Parallel()
	n := startNodeWith(t, nodeOptions{})
	r := n.call(t, "GET", "/debug/pprof/", "", noToken)
	assert.Equal(t, http.StatusUnauthorized, r.status)
	r = n.call(t, "GET", "/debug/pprof/", "", n.Token)
	require.Equal(t, http.StatusOK, r.status)
	assert.Contains(t, string(r.body), "goroutine")
	r = n.call(t, "GET", "/debug/pprof/goroutine?debug=1", "", n.Token)
	require.Equal(t, http.StatusOK, r.status)
	assert.Contains(t, string(r.body), "goroutine profile")
}

// ---- Helpers ----

// noToken sends a request without an Authorization header.
const noToken = ""

// nodeOptions adjust the configurations of a node started by startNodeWith.
type nodeOptions struct {
	rooms    func(*rooms.Config)
	admin    func(*admin.Config)
	notReady bool // leave /readyz failing until the test calls SetReady
}

// startNodeWith is startNode with a configurable registry and readiness.
// Rooms stay open while empty for a minute, so the rooms a test creates do
// not close under it.
func startNodeWith(t *testing.T, o nodeOptions) *node {
	t.Helper()
	ncfg, rcfg := roomstest.Config()
	rcfg.EmptyTimeout = time.Minute
	if o.rooms != nil {
		o.rooms(&rcfg)
	}
	game := roomstest.Start(t, ncfg, rcfg)
	cfg := admin.DefaultConfig()
	cfg.Token = testToken
	cfg.SampleInterval = 100 * time.Millisecond
	cfg.History = 10 * time.Second
	if o.admin != nil {
		o.admin(&cfg)
	}
	adm, err := admin.New(cfg, game.Registry, game.Net)
	require.NoError(t, err)
	ln, err := admin.Listen("127.0.0.1:0", cfg.Token)
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- adm.Serve(ln) }()
	if !o.notReady {
		adm.SetReady(true)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, adm.Shutdown(ctx))
		require.ErrorIs(t, <-served, http.ErrServerClosed)
	})
	return &node{Server: game, Admin: adm, AdminURL: "http://" + ln.Addr().String(), Token: cfg.Token}
}

// response is an admin API answer.
type response struct {
	status int
	header http.Header
	body   []byte
	err    error // callAsync only
}

// code returns the JSON error code of an error response.
func (r response) code(t *testing.T) string {
	t.Helper()
	return fromJSON[errorJSON](t, r.body).Error.Code
}

func (r response) message(t *testing.T) string {
	t.Helper()
	return fromJSON[errorJSON](t, r.body).Error.Message
}

type errorJSON struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// request builds an admin request: a JSON body if body is not empty, the
// bearer token if token is not empty, then headers as name, value pairs (an
// empty value removes the header).
func (n *node) request(t *testing.T, method, path, body, token string, headers ...string) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, n.AdminURL+path, rd)
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	require.Zero(t, len(headers)%2, "headers come in pairs")
	for i := 0; i < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	return req
}

// send sends req within the test's wait bound and reads the whole answer.
func (n *node) send(t *testing.T, req *http.Request) response {
	t.Helper()
	ctx, cancel := context.WithTimeout(req.Context(), wait)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func (n *node) call(t *testing.T, method, path, body, token string) response {
	t.Helper()
	return n.send(t, n.request(t, method, path, body, token))
}

// callAsync is call for another goroutine than the test's: it reports
// failures in the response rather than failing the test.
func (n *node) callAsync(method, path string) response {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, n.AdminURL+path, nil)
	if err != nil {
		return response{err: err}
	}
	req.Header.Set("Authorization", "Bearer "+n.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b, err: err}
}

// statusOnly sends a request with the token and returns its status without
// reading the body, which may be an endless event stream.
func (n *node) statusOnly(t *testing.T, method, path, body string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	req := n.request(t, method, path, body, n.Token).WithContext(ctx)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	cancel()
	resp.Body.Close()
	return resp.StatusCode
}

func fromJSON[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(b, &v), "decoding %s", b)
	return v
}

// basic returns HTTP Basic credentials (after "Basic ").
func basic(user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
}

type roomListJSON struct {
	Rooms      []roomJSON `json:"rooms"`
	Total      int        `json:"total"`
	NextCursor string     `json:"next_cursor"`
}

type roomJSON struct {
	ID          string            `json:"id"`
	Mode        string            `json:"mode"`
	PlayerCount int               `json:"player_count"`
	MaxPlayers  int               `json:"max_players"`
	Private     bool              `json:"private"`
	Paused      bool              `json:"paused"`
	Created     time.Time         `json:"created"`
	Metadata    map[string]string `json:"metadata"`
	Tick        struct {
		Rate    int    `json:"rate"`
		Current uint64 `json:"current"`
		Game    uint64 `json:"game"`
		Count   uint64 `json:"count"`
	} `json:"tick"`
	Players []playerJSON `json:"players"`
}

type playerJSON struct {
	ID           uint32     `json:"id"`
	State        string     `json:"state"`
	HeldSince    *time.Time `json:"held_since"`
	LastInputSeq uint32     `json:"last_input_seq"`
	RTTMs        *float64   `json:"rtt_ms"`
	BytesIn      uint64     `json:"bytes_in"`
	BytesOut     uint64     `json:"bytes_out"`
	Conn         uint64     `json:"conn"`
	Remote       string     `json:"remote"`
}

type pauseJSON struct {
	Room     string `json:"room"`
	Paused   bool   `json:"paused"`
	GameTick uint64 `json:"game_tick"`
}

type frameJSON struct {
	Tick     uint64    `json:"tick"`
	Paused   bool      `json:"paused"`
	Entities [][]int64 `json:"entities"`
}

type historyJSON struct {
	IntervalMs int64        `json:"interval_ms"`
	Samples    []sampleJSON `json:"samples"`
}

type sampleJSON struct {
	T                 int64            `json:"t"`
	Rooms             int              `json:"rooms"`
	Players           int              `json:"players"`
	Connections       int              `json:"connections"`
	BytesInPerSec     float64          `json:"bytes_in_per_s"`
	BytesOutPerSec    float64          `json:"bytes_out_per_s"`
	Disconnects       uint64           `json:"disconnects"`
	RoomList          []roomRowJSON    `json:"room_list"`
	RoomsTotal        int              `json:"rooms_total"`
	RecentDisconnects []disconnectJSON `json:"recent_disconnects"`
}

type roomRowJSON struct {
	ID          string  `json:"id"`
	Mode        string  `json:"mode"`
	PlayerCount int     `json:"player_count"`
	MaxPlayers  int     `json:"max_players"`
	Paused      bool    `json:"paused"`
	TickP99Ms   float64 `json:"tick_p99_ms"`
}

func (r roomRowJSON) withoutTiming() roomRowJSON {
	r.TickP99Ms = 0
	return r
}

type disconnectJSON struct {
	Conn   uint64 `json:"conn"`
	Client string `json:"client"`
	Label  string `json:"label"`
	Reason string `json:"reason"`
	Code   int    `json:"code"`
}

// createRoom creates a room through the API.
func (n *node) createRoom(t *testing.T, body string) roomJSON {
	t.Helper()
	r := n.call(t, "POST", "/admin/rooms", body, n.Token)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	return fromJSON[roomJSON](t, r.body)
}

// room returns GET /admin/rooms/{id}.
func (n *node) room(t *testing.T, id string) roomJSON {
	t.Helper()
	r := n.call(t, "GET", "/admin/rooms/"+id, "", n.Token)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	return fromJSON[roomJSON](t, r.body)
}

func mustRoom(t *testing.T, n *node, id string) *rooms.Room {
	t.Helper()
	r, ok := n.Registry.Get(id)
	require.True(t, ok, "room %s", id)
	return r
}

// player dials the node's game endpoint.
func (n *node) player(t *testing.T, cfg client.Config) *client.Client {
	t.Helper()
	return dial(t, n.URL, cfg)
}

func dial(t *testing.T, url string, cfg client.Config) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, err := client.Dial(ctx, url, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func joinRoom(t *testing.T, c *client.Client, id string) *client.Joined {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	j, err := c.Join(ctx, client.JoinOptions{RoomID: id})
	require.NoError(t, err)
	return j
}

func awaitEvent(t *testing.T, c *client.Client, kind client.EventKind) client.Event {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case e := <-c.Events():
			if e.Kind == kind {
				return e
			}
		case <-timeout:
			t.Fatalf("no event of kind %d within %v", kind, wait)
		}
	}
}

// requireClosedWith waits for c to be closed by the server with code and
// reason.
func requireClosedWith(t *testing.T, c *client.Client, code wire.CloseCode, reason string) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(wait):
		t.Fatalf("the client is still open after %v", wait)
	}
	var ce *client.CloseError
	require.True(t, errors.As(c.Err(), &ce), "closed by the server: %v", c.Err())
	assert.Equal(t, code, ce.Code)
	assert.Equal(t, reason, ce.Reason)
}

func entityOf(es []wire.Entity, id uint32) (wire.Entity, bool) {
	for _, e := range es {
		if e.ID == id {
			return e, true
		}
	}
	return wire.Entity{}, false
}

// awayFromWall returns the arena direction, and its sign on x, that moves a
// player at x away from the nearer side wall.
func awayFromWall(x int32) (byte, int32) {
	if x > sim.DefaultArenaConfig().Width/2 {
		return sim.ArenaLeft, -1
	}
	return sim.ArenaRight, 1
}

func toWire(es []sim.Entity) []wire.Entity {
	out := make([]wire.Entity, len(es))
	for i, e := range es {
		out[i] = wire.Entity(e)
	}
	return out
}

// rowsToWire turns a watch frame's [id, kind, fields...] rows into entities.
func rowsToWire(t *testing.T, rows [][]int64) []wire.Entity {
	t.Helper()
	out := make([]wire.Entity, len(rows))
	for i, row := range rows {
		require.Len(t, row, 2+sim.MaxFields)
		out[i] = wire.Entity{ID: uint32(row[0]), Kind: uint16(row[1])}
		for f := range sim.MaxFields {
			out[i].Fields[f] = int32(row[2+f])
		}
	}
	return out
}

// decodeMsgpack decodes one MessagePack value with every integer as an
// int64 and every float as a float64, so that what is an integer and what
// is not shows.
func decodeMsgpack(t *testing.T, b []byte) any {
	t.Helper()
	dec := msgpack.NewDecoder(bytes.NewReader(b))
	dec.UseLooseInterfaceDecoding(true)
	v, err := dec.DecodeInterface()
	require.NoError(t, err)
	var normalize func(v any) any
	normalize = func(v any) any {
		switch x := v.(type) {
		case uint64:
			return int64(x)
		case float32:
			return float64(x)
		case []any:
			for i := range x {
				x[i] = normalize(x[i])
			}
		case map[string]any:
			for k := range x {
				x[k] = normalize(x[k])
			}
		}
		return v
	}
	return normalize(v)
}

// snapLog records a client's snapshots, from its OnSnapshot.
type snapLog struct {
	mu    sync.Mutex
	snaps []snapRecord
}

type snapRecord struct {
	tick     uint64
	paused   bool
	ack      uint32
	entities []wire.Entity
}

func (l *snapLog) record(s *client.Snapshot) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.snaps = append(l.snaps, snapRecord{tick: s.Tick, paused: s.Paused, ack: s.Ack, entities: slices.Clone(s.Entities)})
}

func (l *snapLog) last() (snapRecord, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.snaps) == 0 {
		return snapRecord{}, false
	}
	return l.snaps[len(l.snaps)-1], true
}

// since returns the snapshots of tick and later.
func (l *snapLog) since(tick uint64) []snapRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := slices.IndexFunc(l.snaps, func(s snapRecord) bool { return s.tick >= tick })
	if i < 0 {
		return nil
	}
	return slices.Clone(l.snaps[i:])
}

// await waits for a snapshot, recorded from now on or before, that
// satisfies ok, and returns the first such.
func (l *snapLog) await(t *testing.T, what string, ok func(snapRecord) bool) snapRecord {
	t.Helper()
	var found snapRecord
	require.Eventually(t, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		i := slices.IndexFunc(l.snaps, ok)
		if i >= 0 {
			found = l.snaps[i]
		}
		return i >= 0
	}, wait, 5*time.Millisecond, "waiting for %s", what)
	return found
}

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	name string
	data []byte
}

// sseStream is an open event stream (or the answer refusing one).
type sseStream struct {
	status int
	header http.Header
	body   []byte        // the answer, if not 200
	events chan sseEvent // closed when the stream ends
	cancel context.CancelFunc
	done   chan struct{} // the reader goroutine has exited
}

// openStream opens an event stream with the token; the test's end closes it.
func (n *node) openStream(t *testing.T, path string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", n.AdminURL+path, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+n.Token)
	req.Header.Set("Accept", "text/event-stream")
	s := &sseStream{events: make(chan sseEvent, 64), cancel: cancel, done: make(chan struct{})}
	headers := make(chan error, 1)
	var resp *http.Response
	go func() { // Do may wait for the headers; bound it by the test's wait
		var err error
		resp, err = http.DefaultClient.Do(req)
		headers <- err
	}()
	select {
	case err := <-headers:
		require.NoError(t, err)
	case <-time.After(wait):
		cancel()
		t.Fatalf("no answer to GET %s within %v", path, wait)
	}
	s.status, s.header = resp.StatusCode, resp.Header
	t.Cleanup(s.close)
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		s.body, err = io.ReadAll(resp.Body)
		require.NoError(t, err)
		close(s.events)
		close(s.done)
		return s
	}
	go func() {
		defer close(s.done)
		defer close(s.events)
		defer resp.Body.Close()
		rd := bufio.NewReader(resp.Body)
		var ev sseEvent
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case line == "":
				if ev.name != "" || ev.data != nil {
					select {
					case s.events <- ev:
					case <-ctx.Done():
						return
					}
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = append(ev.data, strings.TrimPrefix(line, "data: ")...)
			}
		}
	}()
	return s
}

// close ends the stream and waits for its reader.
func (s *sseStream) close() {
	s.cancel()
	<-s.done
}

// next returns the next event, or false when the stream has ended.
func (s *sseStream) next(t *testing.T) (sseEvent, bool) {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		return ev, ok
	case <-time.After(wait):
		t.Fatalf("no event within %v", wait)
		return sseEvent{}, false
	}
}

// await returns the next event named name, skipping others.
func (s *sseStream) await(t *testing.T, name string) sseEvent {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case ev, ok := <-s.events:
			require.True(t, ok, "the stream ended before a %q event", name)
			if ev.name == name {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %q event within %v", name, wait)
		}
	}
}

// metricSet is one scrape of /metrics: series (name and labels as written)
// to values.
type metricSet map[string]float64

func (m metricSet) get(t *testing.T, series string) float64 {
	t.Helper()
	v, ok := m[series]
	require.True(t, ok, "no series %s", series)
	return v
}

// metrics scrapes /metrics in the Prometheus text format.
func (n *node) metrics(t *testing.T) metricSet {
	t.Helper()
	r := n.call(t, "GET", "/metrics", "", n.Token)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	require.True(t, strings.HasPrefix(r.header.Get("Content-Type"), "text/plain"), r.header.Get("Content-Type"))
	m := metricSet{}
	for line := range strings.Lines(string(r.body)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		require.Positive(t, i, "metric line %q", line)
		v, err := strconv.ParseFloat(line[i+1:], 64)
		require.NoError(t, err, "metric line %q", line)
		m[line[:i]] = v
	}
	return m
}

// awaitMetrics scrapes until the series have the given values and every
// extra condition holds, and returns that scrape.
func (n *node) awaitMetrics(t *testing.T, want map[string]float64, extra ...func(metricSet) bool) metricSet {
	t.Helper()
	var m metricSet
	ok := assert.Eventually(t, func() bool {
		m = n.metrics(t)
		for series, v := range want {
			if got, ok := m[series]; !ok || got != v {
				return false
			}
		}
		for _, cond := range extra {
			if !cond(m) {
				return false
			}
		}
		return true
	}, wait, 10*time.Millisecond)
	if !ok {
		for series, v := range want {
			t.Logf("%s = %v, want %v", series, m[series], v)
		}
		t.FailNow()
	}
	return m
}

func without(all, drop []string) []string {
	return slices.DeleteFunc(slices.Clone(all), func(s string) bool { return slices.Contains(drop, s) })
}
