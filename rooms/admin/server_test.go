package admin_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tickroom/tickroom/netcode/client"
	"github.com/tickroom/tickroom/rooms/admin"
)

// ---- Host check without a token ----

// Without a token the listener answers only requests addressed to a loopback
// host, so that a web page cannot reach it by DNS rebinding (its own name
// resolved to 127.0.0.1), on any route.
func TestNoTokenRefusesForeignHosts(t *testing.T) {
	t.Parallel()
	n := startNodeWith(t, nodeOptions{admin: func(c *admin.Config) { c.Token = "" }})
	require.Empty(t, n.Token)
	id := n.createRoom(t, `{"mode":"arena"}`).ID
	port := n.AdminURL[strings.LastIndexByte(n.AdminURL, ':')+1:]

	routes := []struct{ method, path string }{
		{"GET", "/healthz"},
		{"GET", "/"},
		{"GET", "/admin/rooms"},
		{"GET", "/metrics"},
		{"POST", "/admin/rooms/" + id + "/pause"},
		{"DELETE", "/admin/rooms/" + id},
		{"GET", "/nope"},
	}
	for _, host := range []string{
		"evil.example:" + port,
		"evil.example",
		"10.0.0.1",
		"10.0.0.1:" + port,
		"127.0.0.1.evil.example:" + port,
		"localhost.evil.example:" + port,
		"[2001:db8::1]:" + port,
	} {
		for _, route := range routes {
			req := n.request(t, route.method, route.path, "", noToken)
			req.Host = host
			r := n.send(t, req)
			assert.Equal(t, http.StatusForbidden, r.status, "%s %s, Host %s", route.method, route.path, host)
			assert.Equal(t, "bad_host", r.code(t), "%s %s, Host %s", route.method, route.path, host)
		}
	}
	assert.False(t, mustRoom(t, n, id).Paused(), "no refused request reached the room")

	for _, host := range []string{
		"127.0.0.1:" + port,
		"localhost:" + port,
		"[::1]:" + port,
		"127.0.0.2:" + port,
		"localhost",
	} {
		for _, path := range []string{"/healthz", "/admin/rooms"} {
			req := n.request(t, "GET", path, "", noToken)
			req.Host = host
			assert.Equal(t, http.StatusOK, n.send(t, req).status, "GET %s, Host %s", path, host)
		}
	}
	req := n.request(t, "POST", "/admin/rooms/"+id+"/pause", "", noToken)
	req.Host = "localhost:" + port
	r := n.send(t, req)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	assert.True(t, mustRoom(t, n, id).Paused())
}

// With a token, a foreign Host is no reason to refuse: the node may be
// published under any name. The token is still required.
func TestTokenAcceptsForeignHosts(t *testing.T) {
	t.Parallel()
	n := startNodeWith(t, nodeOptions{})
	id := n.createRoom(t, `{"mode":"arena"}`).ID
	const host = "tickroom.example:8081"

	req := n.request(t, "GET", "/healthz", "", noToken)
	req.Host = host
	assert.Equal(t, http.StatusOK, n.send(t, req).status)

	req = n.request(t, "GET", "/admin/rooms", "", noToken)
	req.Host = host
	r := n.send(t, req)
	assert.Equal(t, http.StatusUnauthorized, r.status)
	assert.Equal(t, "unauthorized", r.code(t))

	req = n.request(t, "GET", "/admin/rooms", "", n.Token)
	req.Host = host
	assert.Equal(t, http.StatusOK, n.send(t, req).status)

	req = n.request(t, "POST", "/admin/rooms/"+id+"/pause", "", n.Token)
	req.Host = host
	r = n.send(t, req)
	assert.Equal(t, http.StatusOK, r.status, string(r.body))
	assert.True(t, mustRoom(t, n, id).Paused())
}

// ---- Dashboard page headers ----

// The dashboard may not be framed by another site (clickjacking) nor run
// with anything but its own scripts.
func TestDashboardPageHeaders(t *testing.T) {
	t.Parallel()
	n := startNodeWith(t, nodeOptions{})
	for _, path := range []string{"/", "/static/app.js"} {
		r := n.call(t, "GET", path, "", noToken)
		require.Equal(t, http.StatusOK, r.status, path)
		assert.Contains(t, r.header.Get("Content-Security-Policy"), "frame-ancestors 'none'", path)
		assert.Equal(t, "DENY", r.header.Get("X-Frame-Options"), path)
		assert.Equal(t, "nosniff", r.header.Get("X-Content-Type-Options"), path)
	}
}

// ---- Access log ----

// Every request that changes something leaves one "admin request" line,
// with its method, path, status and the remote address; reads leave none.
func TestMutatingRequestsAreLogged(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	n := startNodeWith(t, nodeOptions{admin: func(c *admin.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	}})

	for _, tc := range []struct{ method, path, body, token string }{
		{"GET", "/admin/rooms", "", n.Token},
		{"HEAD", "/admin/rooms", "", n.Token},
		{"GET", "/healthz", "", noToken},
		{"GET", "/", "", noToken},
		{"GET", "/metrics", "", n.Token},
	} {
		r := n.call(t, tc.method, tc.path, tc.body, tc.token)
		require.Equal(t, http.StatusOK, r.status, "%s %s", tc.method, tc.path)
	}
	id := n.createRoom(t, `{"mode":"arena"}`).ID
	require.Equal(t, http.StatusOK, n.call(t, "GET", "/admin/rooms/"+id, "", n.Token).status)
	require.Equal(t, http.StatusOK, n.call(t, "POST", "/admin/rooms/"+id+"/pause", "", n.Token).status)
	require.Equal(t, http.StatusOK, n.call(t, "POST", "/admin/rooms/"+id+"/step?ticks=2", "", n.Token).status)
	require.Equal(t, http.StatusNotFound, n.call(t, "POST", "/admin/rooms/nosuchroom/resume", "", n.Token).status)
	require.Equal(t, http.StatusUnauthorized, n.call(t, "DELETE", "/admin/rooms/"+id, "", noToken).status)
	require.Equal(t, http.StatusNoContent, n.call(t, "DELETE", "/admin/rooms/"+id, "", n.Token).status)
	require.Equal(t, http.StatusNotFound, n.call(t, "GET", "/admin/rooms/"+id, "", n.Token).status)

	type line struct {
		Method string `json:"method"`
		Path   string `json:"path"`
		Query  string `json:"query"`
		Status int    `json:"status"`
		Remote string `json:"remote"`
	}
	want := []line{
		{"POST", "/admin/rooms", "", http.StatusCreated, ""},
		{"POST", "/admin/rooms/" + id + "/pause", "", http.StatusOK, ""},
		{"POST", "/admin/rooms/" + id + "/step", "ticks=2", http.StatusOK, ""},
		{"POST", "/admin/rooms/nosuchroom/resume", "", http.StatusNotFound, ""},
		{"DELETE", "/admin/rooms/" + id, "", http.StatusUnauthorized, ""},
		{"DELETE", "/admin/rooms/" + id, "", http.StatusNoContent, ""},
	}
	var got []line
	require.Eventually(t, func() bool {
		got = got[:0]
		for _, rec := range logs.records("admin request") {
			var l line
			if json.Unmarshal(rec, &l) == nil {
				got = append(got, l)
			}
		}
		return len(got) >= len(want)
	}, wait, 5*time.Millisecond, "the access log has a line per mutating request")
	require.Len(t, got, len(want), "one line per mutating request, none for reads: %+v", got)
	for i := range got {
		assert.True(t, strings.HasPrefix(got[i].Remote, "127.0.0.1:"), "line %d: remote %q", i, got[i].Remote)
		got[i].Remote = ""
	}
	assert.Equal(t, want, got)
}

// logBuffer collects a slog JSON handler's output; the server writes it
// while the test reads.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// records returns the lines logged with message msg, in order.
func (l *logBuffer) records(msg string) [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(l.buf.Bytes()))
	for sc.Scan() {
		var rec struct {
			Msg string `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == msg {
			out = append(out, bytes.Clone(sc.Bytes()))
		}
	}
	return out
}

// ---- Unknown query parameters ----

// A misspelt parameter must not silently mean its default: step?tick=5 is
// refused rather than taken as one step.
func TestMisspeltParametersAreRefused(t *testing.T) {
	t.Parallel()
	n := startNodeWith(t, nodeOptions{})
	id := n.createRoom(t, `{"mode":"arena"}`).ID
	require.Equal(t, http.StatusOK, n.call(t, "POST", "/admin/rooms/"+id+"/pause", "", n.Token).status)
	game := n.room(t, id).Tick.Game

	for _, query := range []string{"tick=5", "ticks=1&tick=5", "steps=3"} {
		r := n.call(t, "POST", "/admin/rooms/"+id+"/step?"+query, "", n.Token)
		assert.Equal(t, http.StatusBadRequest, r.status, query)
		assert.Equal(t, "bad_request", r.code(t), query)
	}
	assert.Contains(t, n.call(t, "POST", "/admin/rooms/"+id+"/step?tick=5", "", n.Token).message(t), `"tick"`)
	assert.Equal(t, game, n.room(t, id).Tick.Game, "the room did not step")

	r := n.call(t, "POST", "/admin/rooms/"+id+"/step?ticks=1", "", n.Token)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	assert.Greater(t, fromJSON[pauseJSON](t, r.body).GameTick, game, "the right spelling steps")

	for _, query := range []string{"foo=1", "hz=5&foo=1", "rate=5"} {
		s := n.openStream(t, "/admin/rooms/"+id+"/watch?"+query)
		assert.Equal(t, http.StatusBadRequest, s.status, query)
		if s.status == http.StatusBadRequest {
			assert.Equal(t, "bad_request", response{body: s.body}.code(t), query)
		}
		s.close()
	}
}

// ---- Metrics across a room's end ----

// Counters are summed over open and closed rooms: the ticks of a room that
// closes stay counted.
func TestTickCountersSurviveARoomClosing(t *testing.T) {
	t.Parallel()
	n := startNodeWith(t, nodeOptions{})
	id := n.createRoom(t, `{"mode":"arena"}`).ID
	n.createRoom(t, `{"mode":"arena"}`)
	room := mustRoom(t, n, id)
	joinRoom(t, n.player(t, client.DefaultConfig()), id) // an empty room sleeps: a player makes it tick
	before := n.awaitMetrics(t, map[string]float64{"tickroom_rooms": 2}, func(m metricSet) bool {
		return m["tickroom_ticks_total"] >= 10
	})

	require.Equal(t, http.StatusNoContent, n.call(t, "DELETE", "/admin/rooms/"+id, "", n.Token).status)
	after := n.awaitMetrics(t, map[string]float64{"tickroom_rooms": 1, "tickroom_rooms_closed_total": 1})
	for _, series := range []string{
		"tickroom_ticks_total", "tickroom_tick_duration_seconds_count", "tickroom_tick_lateness_seconds_count",
		"tickroom_tick_duration_seconds_sum", "tickroom_rooms_created_total",
	} {
		assert.GreaterOrEqual(t, after.get(t, series), before.get(t, series), series)
	}
	assert.Equal(t, float64(2), after.get(t, "tickroom_rooms_created_total"))
	assert.GreaterOrEqual(t, after.get(t, "tickroom_ticks_total"), float64(room.Stats().Ticks.Load()),
		"the closed room's ticks all count")
}
