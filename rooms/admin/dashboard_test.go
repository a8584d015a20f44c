package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/tickroom/tickroom/netcode/client"
	"github.com/tickroom/tickroom/rooms/admin"
	"github.com/tickroom/tickroom/sim"
)

// dashboardWait bounds every wait of the browser test: each browser action,
// each condition polled in the page or through the API.
const dashboardWait = 20 * time.Second

// The dashboard in a real headless Chromium against a real node: log in,
// see a room with three moving players in the table and on the room view's
// canvas, pause the room and kick a player from the page, and see the API
// agree. A screenshot of the page goes to $TICKROOM_DASHBOARD_SCREENSHOT, or
// to the test's temporary directory.
func TestDashboard(t *testing.T) {
	browser := dashboardBrowser(t)
	n := startNode(t, nil)

	const maxPlayers = 8
	status, body := n.do(t, "POST", "/admin/rooms", fmt.Sprintf(`{"mode":%q,"max_players":%d}`, sim.ArenaMode, maxPlayers))
	require.Equal(t, http.StatusCreated, status, "%s", body)
	var created struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal(body, &created))
	room := created.ID
	dashboardMovingPlayers(t, n.URL, room, 3)
	// The players' inputs reach the room.
	dashboardPoll(t, "the room applies all three players' inputs", func() (bool, string) {
		d := dashboardGetRoom(t, n, room)
		moving := 0
		for _, p := range d.Players {
			if p.LastInputSeq > 0 {
				moving++
			}
		}
		return moving == 3, fmt.Sprintf("%d players, %d sending inputs", len(d.Players), moving)
	})

	page := openDashboard(t, browser, n.AdminURL+"/")

	// A wrong token is refused with a message; the right one opens the page.
	page.do("log in with a wrong token",
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), "not-the-token"),
		chromedp.Click(chromedp.ID("login-btn")))
	page.waitUntil("the login says the token was refused",
		`document.getElementById("login-msg").textContent.includes("refused")`,
		`document.getElementById("login-msg").textContent`)
	page.do("log in",
		chromedp.Evaluate[chromedp.Void](`document.getElementById("token").value = ""`),
		chromedp.SendKeys(chromedp.ID("token"), n.Token),
		chromedp.Click(chromedp.ID("login-btn")))
	page.waitUntil("the dashboard opens",
		`!document.getElementById("app").hidden && document.getElementById("login").hidden`,
		`document.getElementById("login-msg").textContent`)
	href := dashboardRun(page, "read the URL", chromedp.Evaluate[string](`location.href`))
	require.NotContains(t, href, n.Token, "the token must never be in a URL")
	stored := dashboardRun(page, "read session storage", chromedp.Evaluate[string](`sessionStorage.getItem("tickroom.admin.token")`))
	require.Equal(t, n.Token, stored, "the token is kept in sessionStorage")

	// The rooms table lists the room with its players.
	row := fmt.Sprintf(`document.querySelector('tr[data-room=%q]')`, room)
	page.waitUntil("the rooms table shows the room with 3/8 players",
		fmt.Sprintf(`(%s?.querySelector(".players")?.textContent) === "3/%d"`, row, maxPlayers),
		`document.getElementById("rooms-body").innerText`)
	page.waitUntil("the node figures count the players",
		`document.getElementById("fig-players").textContent === "3"`,
		`document.getElementById("fig-players").textContent`)

	// The room view draws the three players, live.
	// Clicked from the page's own script: the table is rebuilt every
	// second, so a node chromedp found may be gone by the time it clicks.
	page.do("open the room", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector('tr[data-room=%q]').click()`, room)))
	const canvas = `document.getElementById("room-canvas")`
	page.waitUntil("the room canvas draws 3 players",
		canvas+`.dataset.drawn === "3" && `+canvas+`.dataset.tick !== undefined`,
		`JSON.stringify(`+canvas+`.dataset) + " " + document.getElementById("room-msg").textContent`)
	tick := dashboardRun(page, "read the drawn tick", chromedp.Evaluate[string](canvas+`.dataset.tick`))
	page.waitUntil("the canvas redraws as the room ticks",
		fmt.Sprintf(`Number(%s.dataset.tick) > %s`, canvas, tick),
		canvas+`.dataset.tick`)
	pixels := dashboardRun(page, "read the canvas pixels", chromedp.Evaluate[dashboardPixels](dashboardCanvasPixels))
	t.Logf("room canvas: %d pixels, %d background, %d in a player's colour", pixels.Total, pixels.Background, pixels.Colored)
	require.Positive(t, pixels.Total)
	require.Less(t, pixels.Background, pixels.Total, "the canvas has non-background pixels")
	require.GreaterOrEqual(t, pixels.Colored, 60, "the canvas has players' dots (a dot is about 110 pixels)")

	// Pause from the page: the API and the page both say paused.
	page.do("press Pause", chromedp.Click(chromedp.ID("btn-pause")))
	dashboardPoll(t, "the API reports the room paused", func() (bool, string) {
		d := dashboardGetRoom(t, n, room)
		return d.Paused, fmt.Sprintf("paused=%v", d.Paused)
	})
	page.waitUntil("the room view shows the room paused",
		`document.getElementById("room-paused").dataset.paused === "true" && document.getElementById("room-msg").textContent.startsWith("Paused")`,
		`document.getElementById("room-paused").textContent + " / " + document.getElementById("room-msg").textContent`)
	page.waitUntil("the rooms table shows the room paused",
		row+`?.dataset.paused === "true"`,
		row+`?.innerText`)
	// An API error shows its code and message: the room is paused already.
	page.do("press Pause again", chromedp.Click(chromedp.ID("btn-pause")))
	page.waitUntil("the page shows the API's error",
		`document.getElementById("room-msg").textContent === "Pause failed: already_paused: the room is already paused"`,
		`document.getElementById("room-msg").textContent`)
	// Step the paused room by 5 ticks. The game tick is the room tick the
	// game last stepped at, and the room ticks on while paused, so it moves
	// on by at least 5.
	before := dashboardGetRoom(t, n, room).Tick.Game
	page.do("step 5 ticks",
		chromedp.Evaluate[chromedp.Void](`document.getElementById("step-ticks").value = "5"`),
		chromedp.Click(chromedp.ID("btn-step")))
	page.waitUntil("the page reports the step",
		`document.getElementById("room-msg").textContent.startsWith("Stepped 5 ticks")`,
		`document.getElementById("room-msg").textContent`)
	after := dashboardGetRoom(t, n, room)
	require.True(t, after.Paused, "the room stays paused after stepping")
	require.GreaterOrEqual(t, after.Tick.Game, before+5, "the API's game tick after stepping")
	msg := dashboardRun(page, "read the step message", chromedp.Evaluate[string](`document.getElementById("room-msg").textContent`))
	require.Equal(t, fmt.Sprintf("Stepped 5 ticks; the game is at tick %d.", after.Tick.Game), msg)

	// Kick one player from the page: the API has two left.
	page.waitUntil("the players table lists 3 players",
		`document.querySelectorAll("#players-body tr").length === 3`,
		`document.getElementById("players-body").innerText`)
	kicked := dashboardRun(page, "find a Kick button",
		chromedp.Evaluate[string](`document.querySelector("#players-body button[data-kick]").dataset.kick`))
	page.do("press Kick", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#players-body button[data-kick=%q]`, kicked))))
	dashboardPoll(t, "the API reports 2 players after the kick", func() (bool, string) {
		d := dashboardGetRoom(t, n, room)
		for _, p := range d.Players {
			if strconv.FormatUint(uint64(p.ID), 10) == kicked {
				return false, fmt.Sprintf("player %s is still in the room", kicked)
			}
		}
		return d.PlayerCount == 2 && len(d.Players) == 2, fmt.Sprintf("player_count=%d, %d players listed", d.PlayerCount, len(d.Players))
	})
	page.waitUntil("the page shows the kick",
		fmt.Sprintf(`document.querySelectorAll("#players-body tr").length === 2 && document.getElementById("room-msg").textContent === "Player %s kicked."`, kicked),
		`document.getElementById("players-body").innerText + " / " + document.getElementById("room-msg").textContent`)
	page.waitUntil("the rooms table shows 2/8 players",
		fmt.Sprintf(`(%s?.querySelector(".players")?.textContent) === "2/%d"`, row, maxPlayers),
		row+`?.innerText`)
	page.waitUntil("the disconnects table lists the kick",
		`document.querySelector('#disconnects-body [data-reason="kicked"]') !== null`,
		`document.getElementById("disconnects-body").innerText`)
	page.waitUntil("the charts draw the node feed",
		`["chart-players", "chart-bandwidth", "chart-tick"].every((id) => Number(document.getElementById(id).dataset.samples) >= 20)`,
		`["chart-players", "chart-bandwidth", "chart-tick"].map((id) => id + ": " + document.getElementById(id).dataset.samples)`)

	// A node that runs alone shows no cluster panel.
	page.waitUntil("the cluster panel stays hidden without a cluster",
		`document.getElementById("cluster").dataset.state === "absent" && document.getElementById("cluster").hidden`,
		`document.getElementById("cluster").dataset.state`)

	page.screenshot("")
	page.requireNoScriptErrors()
}

// A node without a token opens the dashboard without a login, and the page's
// form creates rooms.
func TestDashboardWithoutToken(t *testing.T) {
	browser := dashboardBrowser(t)
	n := startNode(t, func(c *admin.Config) { c.Token = "" })
	page := openDashboard(t, browser, n.AdminURL+"/")
	page.waitUntil("the dashboard opens without a login",
		`!document.getElementById("app").hidden && document.getElementById("login").hidden && document.getElementById("logout-btn").hidden`,
		`document.getElementById("login-msg").textContent`)
	page.waitUntil("the feed is live",
		`document.getElementById("feed-status").dataset.state === "live"`,
		`document.getElementById("feed-status").textContent`)

	page.do("create a room from the form",
		chromedp.Evaluate[chromedp.Void](`document.getElementById("create-max").value = "4"`),
		chromedp.Click(chromedp.CSS(`#create-form button[type="submit"]`)))
	page.waitUntil("the page opens the new room",
		`document.getElementById("create-msg").dataset.kind === "ok" && !document.getElementById("room-view").hidden`,
		`document.getElementById("create-msg").textContent`)
	room := dashboardRun(page, "read the room id", chromedp.Evaluate[string](`document.getElementById("room-id").textContent`))
	status, body := n.do(t, "GET", "/admin/rooms/"+room, "")
	require.Equal(t, http.StatusOK, status, "%s", body)
	page.waitUntil("the rooms table lists the new room",
		fmt.Sprintf(`document.querySelector('tr[data-room=%q] .players')?.textContent === "0/4"`, room),
		`document.getElementById("rooms-body").innerText`)
	page.requireNoScriptErrors()
}

// A node in a cluster (a fake one) shows the cluster panel: a row per
// member with the rooms the directory places on it, refreshed as the
// cluster changes, and hidden again when the node no longer has a cluster.
func TestDashboardCluster(t *testing.T) {
	browser := dashboardBrowser(t)
	n := startNode(t, nil)
	fake := newFakeCluster(sampleClusterStatus())
	n.Admin.SetCluster(fake)

	page := openDashboard(t, browser, n.AdminURL+"/")
	page.do("log in",
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), n.Token),
		chromedp.Click(chromedp.ID("login-btn")))
	const panel = `document.getElementById("cluster")`
	page.waitUntil("the cluster panel shows",
		panel+`.dataset.state === "shown" && !`+panel+`.hidden`,
		panel+`.dataset.state + " " + document.getElementById("cluster-msg").textContent`)
	require.Equal(t, []dashboardClusterRow{
		{ID: "node-a-1", Name: "node-a", Self: true, State: "alive", Ready: "ready", Rooms: "2", Players: "3",
			Game: "ws://127.0.0.1:8080/ws", Placed: "2", PlacedText: "2 rooms, 3 playersaaaaaaaaaaa1, aaaaaaaaaaa2"},
		{ID: "node-b-1", Name: "node-b", State: "suspect", Ready: "draining", Rooms: "1", Players: "4",
			Game: "ws://127.0.0.2:8080/ws", Placed: "1", PlacedText: "1 room, 4 playersbbbbbbbbbbb1"},
		{ID: "node-c-1", Name: "node-c", State: "dead", Ready: "not ready", Rooms: "0", Players: "0",
			Game: "ws://127.0.0.3:8080/ws", Placed: "0", PlacedText: "–"},
	}, dashboardRun(page, "read the cluster rows", chromedp.Evaluate[[]dashboardClusterRow](dashboardClusterRows)))
	note := dashboardRun(page, "read the cluster note", chromedp.Evaluate[string](`document.getElementById("cluster-note").textContent`))
	require.Equal(t, "3 members · 1 alive, 1 suspect, 1 dead", note)
	figures := dashboardRun(page, "read the cluster figures", chromedp.Evaluate[string](`document.getElementById("cluster-figures").textContent`))
	require.Contains(t, figures, "directory 3 rooms, 2 tombstones")
	require.Contains(t, figures, "lag p50 12.5 ms, p99 80.0 ms")
	page.screenshot("cluster")

	// The cluster changes: node-b died, node-d joined and hosts a room, and
	// the directory still places a room on node-e, which left the members.
	st := sampleClusterStatus()
	st.Members[1].State = "dead"
	st.Members = append(st.Members, admin.ClusterMember{ID: "node-d-1", Name: "node-d", State: "alive", Ready: true,
		GameURL: "ws://127.0.0.4:8080/ws", Rooms: 1, Players: 1, Since: "2026-01-02T03:08:00Z"})
	st.Placement = append(st.Placement,
		admin.NodePlacement{Node: "node-d-1", Name: "node-d", Rooms: 1, Players: 1, RoomIDs: []string{"ddddddddddd1"}},
		admin.NodePlacement{Node: "node-e-1", Name: "node-e", Rooms: 150, Players: 0, RoomIDs: []string{"eeeeeeeeeee1"}})
	fake.setStatus(st)
	page.waitUntil("the panel shows the cluster's change",
		`document.querySelector('#cluster-body tr[data-member="node-b-1"] .state')?.textContent === "dead" && `+
			`document.querySelector('#cluster-body tr[data-member="node-d-1"] .placed')?.textContent.includes("ddddddddddd1")`,
		`document.getElementById("cluster-body").innerText`)
	rows := dashboardRun(page, "read the cluster rows", chromedp.Evaluate[[]dashboardClusterRow](dashboardClusterRows))
	require.Len(t, rows, 5)
	require.Equal(t, dashboardClusterRow{ID: "node-e-1", Name: "node-e", State: "unknown", Placed: "150",
		PlacedText: "150 rooms, 0 playerseeeeeeeeeee1 +149 more", Rooms: "–", Players: "–"}, rows[4])
	refreshes := dashboardRun(page, "count the refreshes", chromedp.Evaluate[string](panel+`.dataset.refreshes`))
	page.waitUntil("the panel refreshes every 2 s",
		fmt.Sprintf(`Number(%s.dataset.refreshes) > %s`, panel, refreshes),
		panel+`.dataset.refreshes`)

	// No cluster any more: the panel goes.
	n.Admin.SetCluster(nil)
	page.waitUntil("the cluster panel hides",
		panel+`.dataset.state === "absent" && `+panel+`.hidden`,
		panel+`.dataset.state`)
	page.requireNoScriptErrors()
}

// dashboardClusterRow is what the cluster panel shows of a node.
type dashboardClusterRow struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Self       bool   `json:"self"`
	State      string `json:"state"`
	Ready      string `json:"ready"`
	Rooms      string `json:"rooms"`
	Players    string `json:"players"`
	Game       string `json:"game"`
	Placed     string `json:"placed"`      // the count of rooms placed on it
	PlacedText string `json:"placed_text"` // what the cell says
}

// dashboardClusterRows reads the cluster panel's rows.
const dashboardClusterRows = `Array.from(document.querySelectorAll("#cluster-body tr")).map((tr) => ({
	id: tr.dataset.member,
	name: tr.querySelector(".name").firstChild.textContent,
	self: tr.dataset.self === "true",
	state: tr.querySelector(".state").textContent,
	ready: tr.querySelector(".ready").textContent,
	rooms: tr.querySelector(".rooms").textContent,
	players: tr.querySelector(".players").textContent,
	game: tr.querySelector(".game").textContent,
	placed: tr.querySelector(".placed").dataset.rooms,
	placed_text: tr.querySelector(".placed").textContent,
}))`

// dashboardCanvasPixels counts the room canvas's pixels: all, those of the most
// common colour (the background), and those of a saturated colour (the
// players' dots; the background, grid and labels are grey).
const dashboardCanvasPixels = `(() => {
	const c = document.getElementById("room-canvas");
	const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
	const counts = new Map();
	let colored = 0;
	for (let i = 0; i < d.length; i += 4) {
		const key = (d[i] << 24 | d[i + 1] << 16 | d[i + 2] << 8 | d[i + 3]) >>> 0;
		counts.set(key, (counts.get(key) || 0) + 1);
		if (Math.max(d[i], d[i + 1], d[i + 2]) - Math.min(d[i], d[i + 1], d[i + 2]) > 60) colored++;
	}
	return {total: d.length / 4, background: Math.max(0, ...counts.values()), colored};
})()`

type dashboardPixels struct {
	Total      int `json:"total"`
	Background int `json:"background"`
	Colored    int `json:"colored"`
}

// dashboardRoom is the part of GET /admin/rooms/{id} the test reads.
type dashboardRoom struct {
	PlayerCount int  `json:"player_count"`
	Paused      bool `json:"paused"`
	Tick        struct {
		Game uint64 `json:"game"`
	} `json:"tick"`
	Players []struct {
		ID           uint32 `json:"id"`
		LastInputSeq uint32 `json:"last_input_seq"`
	} `json:"players"`
}

func dashboardGetRoom(t *testing.T, n *node, id string) dashboardRoom {
	t.Helper()
	status, body := n.do(t, "GET", "/admin/rooms/"+id, "")
	require.Equal(t, http.StatusOK, status, "%s", body)
	var d dashboardRoom
	require.NoError(t, json.Unmarshal(body, &d))
	return d
}

// dashboardMovingPlayers joins count players into the room and has them walk to
// and fro until the test ends, each in its own direction.
func dashboardMovingPlayers(t *testing.T, url, room string, count int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), dashboardWait)
	defer cancel()
	cfg := client.DefaultConfig()
	cfg.Reconnect.Attempts = 0 // a kicked player stays gone
	clients := make([]*client.Client, count)
	for i := range clients {
		c, err := client.Dial(ctx, url, cfg)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() }) // the kicked one is closed already
		_, err = c.Join(ctx, client.JoinOptions{RoomID: room})
		require.NoError(t, err)
		clients[i] = c
	}

	// One direction pair per player: it walks one way for a second, then back.
	paths := [][2]byte{
		{sim.ArenaRight, sim.ArenaLeft},
		{sim.ArenaDown, sim.ArenaUp},
		{sim.ArenaRight | sim.ArenaDown, sim.ArenaLeft | sim.ArenaUp},
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for i, c := range clients {
				dir := paths[i%len(paths)][n/20%2]
				_, _ = c.SendInput([]byte{dir}) // fails once a player is kicked
			}
		}
	})
	t.Cleanup(func() {
		close(stop)
		wg.Wait()
	})
}

// dashboardPoll checks cond every 50 ms until it holds, and fails the test
// with cond's last description if it does not within dashboardWait.
func dashboardPoll(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(dashboardWait)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, got := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v (last: %s)", what, dashboardWait, got)
		}
		<-tick.C
	}
}

// dashboardPage is a browser tab on the dashboard.
type dashboardPage struct {
	t   *testing.T
	ctx context.Context // the tab's chromedp context

	mu     sync.Mutex
	errors []string // uncaught exceptions and console errors and warnings
}

// dashboardBrowser returns the path of a Chromium, installing one with
// .ci/install-chromium when running as root, or skips the test.
func dashboardBrowser(t *testing.T) string {
	t.Helper()
	find := func() string {
		for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
			if path, err := exec.LookPath(name); err == nil {
				return path
			}
		}
		return ""
	}
	if path := find(); path != "" {
		return path
	}
	// CI sets TICKROOM_REQUIRE_BROWSER: there a missing browser is a
	// failure, not a skip, so the page cannot go untested unnoticed.
	skip := t.Skipf
	if os.Getenv("TICKROOM_REQUIRE_BROWSER") != "" {
		skip = t.Fatalf
	}
	const how = "install it with `bash .ci/install-chromium` (as root; it runs apt-get install chromium) or put chromium, chromium-browser or google-chrome on PATH"
	if os.Geteuid() != 0 {
		skip("SKIPPING the dashboard browser test: no Chromium found and not root, so it could not be installed; %s", how)
	}
	root, err := dashboardRepoRoot()
	if err != nil {
		skip("SKIPPING the dashboard browser test: no Chromium found, and %v; %s", err, how)
	}
	t.Logf("no Chromium on PATH: running .ci/install-chromium")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", filepath.Join(root, ".ci", "install-chromium")).CombinedOutput()
	if path := find(); err == nil && path != "" {
		return path
	}
	if err == nil {
		err = errors.New("it is still not on PATH")
	}
	skip("SKIPPING the dashboard browser test: Chromium could not be installed (%v); %s\n%s", err, how, strings.TrimSpace(string(out)))
	return ""
}

// dashboardRepoRoot walks up from the working directory to the directory of go.mod.
func dashboardRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// openDashboard starts a headless browser that lives until the test ends,
// and loads url in a tab.
func openDashboard(t *testing.T, browser, url string) *dashboardPage {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser),
		chromedp.Headless,
		chromedp.NoSandbox, // tests may run as root
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1440, 1000),
	)
	// The browser's whole life is bounded too: the first Run ties the
	// browser to its context, so per-action timeouts come after it.
	life, cancelLife := context.WithTimeout(context.Background(), 2*time.Minute)
	alloc, cancelAlloc := chromedp.NewExecAllocator(life, opts...)
	ctx, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		cancelLife()
	})
	p := &dashboardPage{t: t, ctx: ctx}
	require.NoError(t, chromedp.Do(ctx), "start %s", browser)
	require.NoError(t, chromedp.Listen(ctx, p.onEvent))
	p.do("load the dashboard", chromedp.Navigate(url))
	return p
}

// onEvent runs in the tab's event loop: it must not block.
func (p *dashboardPage) onEvent(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg = fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber+1, d.Text)
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
	case *runtime.EventConsoleAPICalled:
		if ev.Type != "error" && ev.Type != "warning" {
			return
		}
		parts := []string{"console." + string(ev.Type) + ":"}
		for _, a := range ev.Args {
			parts = append(parts, a.Description+string(a.Value))
		}
		msg = strings.Join(parts, " ")
	default:
		return
	}
	p.mu.Lock()
	p.errors = append(p.errors, msg)
	p.mu.Unlock()
}

func (p *dashboardPage) requireNoScriptErrors() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	require.Empty(p.t, p.errors, "the page's script reported errors")
}

// do runs browser actions within dashboardWait.
func (p *dashboardPage) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, dashboardWait)
	defer cancel()
	require.NoError(p.t, chromedp.Do(ctx, actions...), what)
}

// dashboardRun runs one browser action that returns a value, within
// dashboardWait.
func dashboardRun[T any](p *dashboardPage, what string, action chromedp.Action[T]) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, dashboardWait)
	defer cancel()
	v, err := chromedp.Run(ctx, action)
	require.NoError(p.t, err, what)
	return v
}

// waitUntil polls the JavaScript expression cond in the page until it is
// true; if it is not within dashboardWait, the test fails with what the
// expression diag shows.
func (p *dashboardPage) waitUntil(what, cond, diag string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, dashboardWait+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](cond,
		chromedp.WithPollingInterval(25*time.Millisecond),
		chromedp.WithPollingTimeout(dashboardWait)))
	if err == nil {
		return
	}
	shown, derr := chromedp.Run(ctx, chromedp.Evaluate[string](`String(`+diag+`)`))
	if derr != nil {
		shown = "(" + derr.Error() + ")"
	}
	p.t.Fatalf("%s: %v; the page shows: %s", what, err, shown)
}

// screenshot saves a PNG of the whole page, to
// $TICKROOM_DASHBOARD_SCREENSHOT with "-suffix" before its extension when
// suffix is not empty.
func (p *dashboardPage) screenshot(suffix string) {
	p.t.Helper()
	png := dashboardRun(p, "take a screenshot", chromedp.FullScreenshot(100)) // 100: PNG
	path := os.Getenv("TICKROOM_DASHBOARD_SCREENSHOT")
	switch {
	case path == "":
		path = filepath.Join(p.t.TempDir(), "dashboard.png")
	case suffix != "":
		ext := filepath.Ext(path)
		path = strings.TrimSuffix(path, ext) + "-" + suffix + ext
	}
	require.NoError(p.t, os.WriteFile(path, png, 0o644))
	p.t.Logf("dashboard screenshot: %s", path)
}
