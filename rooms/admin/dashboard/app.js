// The tickroom admin dashboard: plain JavaScript, no build step, nothing
// loaded from elsewhere.
//
// The token lives in sessionStorage and travels only in the Authorization
// header, never in a URL. EventSource cannot send headers, so the two event
// streams (the node feed and a room's watch feed) are read with fetch and a
// small Server-Sent Events parser over the response body.
"use strict";

(() => {
  const TOKEN_KEY = "tickroom.admin.token";
  const RETRY_MS = 2000;          // wait before reopening a broken stream
  const CLUSTER_MS = 2000;        // how often the cluster panel asks GET /admin/cluster
  const WATCH_HZ = 15;            // room view frames per second (the server allows 1..30)
  const KEEP_MS = 5 * 60 * 1000;  // how much of the node feed the charts show at most
  const PALETTE = ["#4fc3f7", "#f78c6c", "#c3e88d", "#ffcb6b", "#c792ea", "#ff5370", "#89ddff", "#f07178"];
  const COLORS = {
    bg: "#0b0f14", grid: "#1b232d", axis: "#2a3440", text: "#8b95a3", label: "#d6dde6",
    players: "#4fc3f7", in: "#c3e88d", out: "#f78c6c", p99: "#ffcb6b", p50: "#89a4c0", paused: "#ffcb6b",
  };
  const MONO = '11px ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace';

  const $ = (id) => document.getElementById(id);

  const state = {
    token: sessionStorage.getItem(TOKEN_KEY) || "",
    open: false,      // the API answered without a token: none is configured
    feed: null,       // AbortController of the node feed
    samples: [],      // node feed samples, oldest first
    intervalMs: 1000, // the node feed's sample interval
    room: null,       // the watched room: {id, ctl, info, frame, detail, closed}
    cluster: null,    // AbortController of the cluster panel's polling
  };

  // ---------------------------------------------------------------- API

  // APIError is an error answer of the admin API: {"error":{"code","message"}}.
  class APIError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  function headers(extra) {
    const h = Object.assign({}, extra);
    if (state.token) h.Authorization = "Bearer " + state.token;
    return h;
  }

  async function apiError(res) {
    let code = "http_" + res.status;
    let message = res.statusText || "request failed";
    try {
      const body = await res.json();
      if (body && body.error) {
        code = body.error.code || code;
        message = body.error.message || message;
      }
    } catch (_) { /* not JSON: keep the status line */ }
    return new APIError(res.status, code, message);
  }

  function describe(err) {
    if (err instanceof APIError) return err.code + ": " + err.message;
    return err && err.message ? err.message : String(err);
  }

  // api sends one request; body, if given, is sent as JSON. A 401 sends the
  // operator back to the login.
  async function api(method, path, body) {
    const init = { method, headers: headers(), cache: "no-store" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const res = await fetch(path, init);
    if (!res.ok) {
      const err = await apiError(res);
      if (err.status === 401) unauthorized();
      throw err;
    }
    return res.status === 204 ? null : res.json();
  }

  // stream reads a Server-Sent Events response and calls onEvent(name, data)
  // with each event's JSON data, until the stream ends or signal aborts.
  async function stream(path, signal, onEvent) {
    const res = await fetch(path, {
      headers: headers({ Accept: "text/event-stream" }), cache: "no-store", signal,
    });
    if (!res.ok) throw await apiError(res);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += value;
        let end;
        while ((end = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          dispatch(block, onEvent);
        }
      }
    } finally {
      reader.cancel().catch(() => {});
    }
  }

  // dispatch parses one event block: "event:" and "data:" lines.
  function dispatch(block, onEvent) {
    let name = "message";
    const data = [];
    for (let line of block.split("\n")) {
      if (line.endsWith("\r")) line = line.slice(0, -1);
      if (line === "" || line.startsWith(":")) continue; // a comment
      const i = line.indexOf(":");
      const field = i < 0 ? line : line.slice(0, i);
      let value = i < 0 ? "" : line.slice(i + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") name = value;
      else if (field === "data") data.push(value);
    }
    if (data.length === 0) return;
    let payload;
    try {
      payload = JSON.parse(data.join("\n"));
    } catch (err) {
      console.warn("tickroom: bad " + name + " event", err);
      return;
    }
    onEvent(name, payload);
  }

  // delay resolves after ms, or at once when signal aborts.
  function delay(ms, signal) {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      signal.addEventListener("abort", () => { clearTimeout(t); resolve(); }, { once: true });
    });
  }

  // ---------------------------------------------------------------- login

  async function probe() {
    const res = await fetch("/admin/rooms?limit=1", { headers: headers(), cache: "no-store" });
    if (res.ok) return true;
    if (res.status === 401) return false;
    throw await apiError(res);
  }

  async function boot() {
    try {
      if (await probe()) {
        state.open = !state.token;
        enter();
        return;
      }
      const had = !!state.token;
      forgetToken();
      showLogin(had ? "The saved token was refused (401). Enter it again." : "", "info");
    } catch (err) {
      showLogin("Cannot reach the admin API: " + describe(err), "error");
    }
  }

  async function login(ev) {
    ev.preventDefault();
    const input = $("token");
    const token = input.value.trim();
    if (!token) return;
    state.token = token;
    setMsg($("login-msg"), "Checking…", "info");
    try {
      if (!(await probe())) {
        forgetToken();
        setMsg($("login-msg"), "That token was refused (401 Unauthorized).", "error");
        input.select();
        return;
      }
    } catch (err) {
      forgetToken();
      setMsg($("login-msg"), "Cannot reach the admin API: " + describe(err), "error");
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    input.value = "";
    enter();
  }

  function forgetToken() {
    state.token = "";
    sessionStorage.removeItem(TOKEN_KEY);
  }

  function enter() {
    $("login").hidden = true;
    $("app").hidden = false;
    $("logout-btn").hidden = state.open;
    $("feed-status").hidden = false;
    setMsg($("login-msg"), "");
    startFeed();
    startCluster();
  }

  function leave() {
    stopFeed();
    stopCluster();
    closeRoom();
    state.samples = [];
    $("rooms-body").replaceChildren();
    $("disconnects-body").replaceChildren();
    $("app").hidden = true;
    $("logout-btn").hidden = true;
    $("feed-status").hidden = true;
    setStatus("idle", "not connected");
  }

  function showLogin(message, kind) {
    leave();
    $("login").hidden = false;
    setMsg($("login-msg"), message, kind);
    $("token").focus();
  }

  function logout() {
    forgetToken();
    showLogin("Logged out.", "info");
  }

  function unauthorized() {
    forgetToken();
    state.open = false;
    showLogin("The server answered 401 Unauthorized: the token is missing or wrong. Enter it again.", "error");
  }

  // ---------------------------------------------------------------- node feed

  function startFeed() {
    stopFeed();
    const ctl = new AbortController();
    state.feed = ctl;
    (async () => {
      while (!ctl.signal.aborted) {
        setStatus("connecting", "connecting…");
        try {
          await stream("/admin/events", ctl.signal, onNodeEvent);
          if (ctl.signal.aborted) return;
          setStatus("error", "feed ended; reconnecting…");
        } catch (err) {
          if (ctl.signal.aborted) return;
          if (err instanceof APIError && err.status === 401) {
            unauthorized();
            return;
          }
          setStatus("error", "feed lost (" + describe(err) + "); reconnecting…");
        }
        await delay(RETRY_MS, ctl.signal);
      }
    })();
  }

  function stopFeed() {
    if (state.feed) state.feed.abort();
    state.feed = null;
  }

  function onNodeEvent(name, data) {
    if (name === "history") {
      state.intervalMs = data.interval_ms || 1000;
      state.samples = (data.samples || []).slice();
      trimSamples();
      const last = state.samples[state.samples.length - 1];
      if (last) renderFigures(last);
      setStatus("live", "live");
      drawCharts();
    } else if (name === "sample") {
      const { room_list: rows, rooms_total: total, recent_disconnects: gone, ...sample } = data;
      state.samples.push(sample);
      trimSamples();
      setStatus("live", "live");
      renderFigures(sample);
      renderRooms(rows || [], total || 0);
      renderDisconnects(gone || []);
      drawCharts();
    }
  }

  function trimSamples() {
    const s = state.samples;
    if (s.length === 0) return;
    const from = s[s.length - 1].t - KEEP_MS;
    let i = 0;
    while (i < s.length && s[i].t < from) i++;
    if (i > 0) s.splice(0, i);
  }

  function setStatus(kind, text) {
    const el = $("feed-status");
    el.dataset.state = kind;
    el.textContent = text;
  }

  function renderFigures(s) {
    $("fig-rooms").textContent = fmtInt(s.rooms);
    $("fig-players").textContent = fmtInt(s.players);
    $("fig-conns").textContent = fmtInt(s.connections);
    $("fig-in").textContent = fmtRate(s.bytes_in_per_s);
    $("fig-out").textContent = fmtRate(s.bytes_out_per_s);
    $("fig-tick").textContent = fmtMs(s.tick_p99_ms);
    const sub = $("fig-tick-sub");
    sub.textContent = "p50 " + fmtMs(s.tick_p50_ms) + (s.overruns ? " · " + s.overruns + " overruns" : "");
    sub.title = "tick lateness p99 " + fmtMs(s.lateness_p99_ms);
  }

  // renderRooms updates the rooms table in place, one row per room keyed by
  // its id, so that rows under the pointer stay put between samples.
  function renderRooms(rows, total) {
    const body = $("rooms-body");
    const old = new Map();
    for (const tr of body.children) old.set(tr.dataset.room, tr);
    const selected = state.room ? state.room.id : "";
    const order = [];
    for (const r of rows) {
      let tr = old.get(r.id);
      if (tr) {
        old.delete(r.id);
      } else {
        tr = el("tr", { "data-room": r.id, title: "watch room " + r.id },
          el("td", { class: "mono id" }, r.id),
          el("td", { class: "mode" }),
          el("td", { class: "num players" }),
          el("td", { class: "num p99" }),
          el("td", { class: "state" }, el("span", { class: "badge" })));
      }
      tr.cells[1].textContent = r.mode;
      tr.cells[2].textContent = r.player_count + "/" + r.max_players;
      tr.cells[3].textContent = fmtMs(r.tick_p99_ms);
      setBadge(tr.cells[4].firstChild, r.paused);
      tr.dataset.paused = String(r.paused);
      tr.classList.toggle("selected", r.id === selected);
      order.push(tr);
    }
    body.replaceChildren(...order);
    $("rooms-empty").hidden = rows.length > 0;
    $("rooms-note").textContent = total > rows.length ? "busiest " + rows.length + " of " + total : total + (total === 1 ? " room" : " rooms");
  }

  function renderDisconnects(list) {
    const rows = list.map((d) => el("tr", { title: [d.remote, d.client, "connection " + d.conn].filter(Boolean).join(" · ") },
      el("td", { class: "mono" }, fmtTime(d.t)),
      el("td", {}, el("span", { class: "reason", "data-reason": d.reason }, d.reason)),
      el("td", { class: "num" }, d.code ? String(d.code) : "–"),
      el("td", { class: "label" }, d.label || d.remote || ""),
      el("td", { class: "detail", title: d.detail || "" }, d.detail || ""),
      el("td", { class: "num" }, fmtDuration(d.duration_ms))));
    $("disconnects-body").replaceChildren(...rows);
    $("disconnects-empty").hidden = rows.length > 0;
  }

  // ---------------------------------------------------------------- cluster

  // The cluster panel shows while GET /admin/cluster answers 200; a node
  // that runs alone answers 404 no_cluster and the panel stays hidden.
  function startCluster() {
    stopCluster();
    const ctl = new AbortController();
    state.cluster = ctl;
    (async () => {
      while (!ctl.signal.aborted) {
        await refreshCluster(ctl.signal);
        await delay(CLUSTER_MS, ctl.signal);
      }
    })();
  }

  function stopCluster() {
    if (state.cluster) state.cluster.abort();
    state.cluster = null;
    const panel = $("cluster");
    panel.hidden = true;
    panel.dataset.state = "unknown";
    $("cluster-body").replaceChildren();
  }

  async function refreshCluster(signal) {
    const panel = $("cluster");
    try {
      const st = await api("GET", "/admin/cluster");
      if (signal.aborted) return;
      renderCluster(st);
      setMsg($("cluster-msg"), "");
      panel.hidden = false;
      panel.dataset.state = "shown";
      panel.dataset.refreshes = String(Number(panel.dataset.refreshes || 0) + 1);
    } catch (err) {
      if (signal.aborted) return; // a 401 has sent the operator to the login
      if (err instanceof APIError && err.status === 404) {
        panel.hidden = true;
        panel.dataset.state = "absent";
        return;
      }
      // Keep what was shown, marked stale.
      panel.dataset.state = "error";
      setMsg($("cluster-msg"), "Cluster status failed: " + describe(err) + "; retrying…", "error");
    }
  }

  // renderCluster shows one row per member, with the rooms the directory
  // places on it, then nodes the directory places rooms on that are no
  // longer members.
  function renderCluster(st) {
    const members = st.members || [];
    const placement = new Map((st.placement || []).map((p) => [p.node, p]));
    const rows = [];
    for (const m of members) {
      rows.push(clusterRow(m.id, m.name || m.id, m.state, m.self, readiness(m), m.rooms, m.players, m.gameUrl, placement.get(m.id)));
      placement.delete(m.id);
    }
    for (const p of placement.values()) {
      rows.push(clusterRow(p.node, p.name || p.node, "unknown", false, "", null, null, "", p));
    }
    $("cluster-body").replaceChildren(...rows);

    const count = (state) => members.filter((m) => m.state === state).length;
    $("cluster-note").textContent = members.length + (members.length === 1 ? " member" : " members") +
      " · " + ["alive", "suspect", "dead", "left"].filter((s) => count(s) > 0).map((s) => count(s) + " " + s).join(", ");
    const d = st.directory || {};
    const g = st.gossip || {};
    const r = st.routing || {};
    const pd = st.placementDecisions || {};
    $("cluster-figures").textContent = [
      "directory " + fmtInt(d.rooms) + " rooms, " + fmtInt(d.tombstones) + " tombstones",
      d.lagSamples ? "lag p50 " + fmtMs(d.lagP50Ms) + ", p99 " + fmtMs(d.lagP99Ms) + ", max " + fmtMs(d.lagMaxMs) : "no lag samples",
      "gossip in " + fmtBytes(g.bytesIn) + ", out " + fmtBytes(g.bytesOut) + (g.dropped ? ", " + fmtInt(g.dropped) + " dropped" : ""),
      fmtInt(r.redirects) + " redirects, " + fmtInt(r.proxied) + " proxied",
      "placed " + fmtInt(pd.toFreeSeat) + " to a free seat, " + fmtInt(pd.toNewRoom) + " to a new room, " + fmtInt(pd.local) + " here",
    ].join(" · ");
  }

  function readiness(m) {
    if (m.draining) return "draining";
    return m.ready ? "ready" : "not ready";
  }

  function clusterRow(id, name, memberState, self, ready, rooms, players, gameUrl, placed) {
    const nameCell = el("td", { class: "name", title: id }, name);
    if (self) nameCell.append(" ", el("span", { class: "tag" }, "this node"));
    const readyCell = el("td", { class: "ready" });
    if (ready) readyCell.append(el("span", { class: "badge", "data-ready": ready }, ready));
    const placedCell = el("td", { class: "placed", "data-rooms": placed ? String(placed.rooms) : "0" });
    if (placed) {
      const ids = placed.roomIds || [];
      const more = placed.rooms - ids.length;
      placedCell.append(el("span", { class: "count" }, fmtInt(placed.rooms) + (placed.rooms === 1 ? " room" : " rooms") + ", " + fmtInt(placed.players) + " players"),
        ids.join(", ") + (more > 0 ? " +" + more + " more" : ""));
    } else {
      placedCell.append("–");
    }
    return el("tr", { "data-member": id, "data-self": String(!!self) },
      nameCell,
      el("td", { class: "state" }, el("span", { class: "badge", "data-state": memberState }, memberState)),
      readyCell,
      el("td", { class: "num rooms" }, fmtInt(rooms)),
      el("td", { class: "num players" }, fmtInt(players)),
      el("td", { class: "game" }, gameUrl || ""),
      placedCell);
  }

  // ---------------------------------------------------------------- charts

  function drawCharts() {
    drawChart($("chart-players"), [
      { name: "players", color: COLORS.players, value: (s) => s.players, fmt: fmtInt },
    ], { minStep: 1, integer: true, fmt: fmtInt });
    drawChart($("chart-bandwidth"), [
      { name: "in", color: COLORS.in, value: (s) => s.bytes_in_per_s, fmt: fmtRate },
      { name: "out", color: COLORS.out, value: (s) => s.bytes_out_per_s, fmt: fmtRate },
    ], { minStep: 250, fmt: fmtBytesShort });
    drawChart($("chart-tick"), [
      { name: "p99", color: COLORS.p99, value: (s) => s.tick_p99_ms, fmt: fmtMs },
      { name: "p50", color: COLORS.p50, value: (s) => s.tick_p50_ms, fmt: fmtMs },
    ], { minStep: 0.25, fmt: (v) => trimNum(v) + " ms" });
  }

  // fitCanvas sizes a canvas's backing store to its CSS box at the device
  // pixel ratio and returns a context drawing in CSS pixels.
  function fitCanvas(canvas) {
    const dpr = window.devicePixelRatio || 1;
    const rect = canvas.getBoundingClientRect();
    const w = Math.max(1, Math.round(rect.width));
    const h = Math.max(1, Math.round(rect.height));
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return { ctx, w, h };
  }

  // drawChart draws series over the node feed's samples: time along x from
  // the oldest sample kept to the newest, values from 0 up along y.
  function drawChart(canvas, series, opts) {
    const { ctx, w, h } = fitCanvas(canvas);
    const samples = state.samples;
    const pad = { l: 62, r: 12, t: 24, b: 20 };
    const pw = w - pad.l - pad.r;
    const ph = h - pad.t - pad.b;
    ctx.clearRect(0, 0, w, h);
    ctx.font = MONO;
    ctx.textBaseline = "middle";

    const tEnd = samples.length ? samples[samples.length - 1].t : Date.now();
    let tStart = samples.length ? samples[0].t : tEnd;
    tStart = Math.min(tStart, tEnd - state.intervalMs * 10);
    let max = 0;
    for (const s of series) for (const p of samples) max = Math.max(max, s.value(p) || 0);
    let step = Math.max(niceStep(max / 4), opts.minStep);
    if (opts.integer) step = Math.ceil(step);
    const top = step * 4;

    // Grid and y labels.
    ctx.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const y = Math.round(pad.t + ph - (ph * i) / 4) + 0.5;
      ctx.strokeStyle = i === 0 ? COLORS.axis : COLORS.grid;
      ctx.beginPath();
      ctx.moveTo(pad.l, y);
      ctx.lineTo(pad.l + pw, y);
      ctx.stroke();
      ctx.fillStyle = COLORS.text;
      ctx.textAlign = "right";
      ctx.fillText(opts.fmt(step * i), pad.l - 6, y);
    }
    // Time labels: how long ago the left edge is, and now.
    ctx.textAlign = "left";
    ctx.fillText("−" + fmtSpan(tEnd - tStart), pad.l, h - pad.b / 2);
    ctx.textAlign = "right";
    ctx.fillText("now", pad.l + pw, h - pad.b / 2);

    // Lines.
    const xOf = (t) => pad.l + ((t - tStart) / (tEnd - tStart)) * pw;
    const yOf = (v) => pad.t + ph - (Math.max(0, v || 0) / top) * ph;
    ctx.lineWidth = 1.5;
    ctx.lineJoin = "round";
    for (const s of series) {
      ctx.strokeStyle = s.color;
      ctx.beginPath();
      samples.forEach((p, i) => {
        const x = xOf(p.t);
        const y = yOf(s.value(p));
        if (i === 0) ctx.moveTo(x, y);
        else ctx.lineTo(x, y);
      });
      ctx.stroke();
    }

    canvas.dataset.samples = String(samples.length);

    // Legend with the latest values.
    const last = samples[samples.length - 1];
    let x = pad.l;
    ctx.textAlign = "left";
    for (const s of series) {
      const text = s.name + " " + (last ? s.fmt(s.value(last)) : "–");
      ctx.fillStyle = s.color;
      ctx.fillRect(x, pad.t / 2 - 4, 8, 8);
      ctx.fillStyle = COLORS.label;
      ctx.fillText(text, x + 12, pad.t / 2);
      x += 12 + ctx.measureText(text).width + 16;
    }
  }

  // niceStep rounds v up to 1, 2, 2.5 or 5 times a power of ten.
  function niceStep(v) {
    if (!(v > 0)) return 0.25;
    const exp = Math.pow(10, Math.floor(Math.log10(v)));
    const f = v / exp;
    const nice = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10;
    return nice * exp;
  }

  // ---------------------------------------------------------------- room view

  function openRoom(id) {
    closeRoom();
    const ctl = new AbortController();
    const room = { id, ctl, info: null, frame: null, detail: null, closed: false };
    state.room = room;

    $("room-view").hidden = false;
    $("room-id").textContent = id;
    $("room-mode").textContent = "";
    $("room-tick").textContent = "–";
    $("room-figures").textContent = "";
    $("players-body").replaceChildren();
    $("players-empty").hidden = false;
    $("room-entities").tBodies[0].replaceChildren();
    setPaused(false);
    setControls(true);
    setMsg($("room-msg"), "");
    const canvas = $("room-canvas");
    canvas.dataset.drawn = "0";
    delete canvas.dataset.tick;
    canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
    for (const tr of $("rooms-body").children) tr.classList.toggle("selected", tr.dataset.room === id);

    const path = "/admin/rooms/" + encodeURIComponent(id) + "/watch?hz=" + WATCH_HZ;
    (async () => {
      while (!ctl.signal.aborted) {
        try {
          await stream(path, ctl.signal, (name, data) => onRoomEvent(room, name, data));
          if (ctl.signal.aborted || room.closed) return;
        } catch (err) {
          if (ctl.signal.aborted) return;
          if (err instanceof APIError && err.status === 401) {
            unauthorized();
            return;
          }
          if (err instanceof APIError && err.status === 404) {
            roomGone(room, "Room " + id + " does not exist (any more).");
            return;
          }
          setMsg($("room-msg"), "Watch feed lost (" + describe(err) + "); retrying…", "error");
        }
        await delay(RETRY_MS, ctl.signal);
      }
    })();
  }

  function closeRoom() {
    if (state.room) state.room.ctl.abort();
    state.room = null;
    $("room-view").hidden = true;
    for (const tr of $("rooms-body").children) tr.classList.remove("selected");
  }

  function roomGone(room, message) {
    room.closed = true;
    setControls(false);
    setMsg($("room-msg"), message, "info");
  }

  function onRoomEvent(room, name, data) {
    if (room !== state.room) return;
    switch (name) {
      case "view": {
        room.info = data;
        $("room-mode").textContent = data.mode;
        const hasView = !!data.view;
        const canvas = $("room-canvas");
        canvas.hidden = !hasView;
        $("room-entities").hidden = hasView;
        if (hasView) canvas.style.aspectRatio = data.view.width + " / " + data.view.height;
        if ($("room-msg").dataset.kind === "error") setMsg($("room-msg"), "");
        break;
      }
      case "frame":
        room.frame = data;
        $("room-tick").textContent = String(data.tick);
        setPaused(data.paused);
        drawRoom(room);
        break;
      case "room":
        room.detail = data;
        renderRoomDetail(data);
        break;
      case "closed":
        roomGone(room, "The room closed.");
        break;
    }
  }

  function drawRoom(room) {
    const f = room.frame;
    if (!f || !room.info) return;
    const v = room.info.view;
    if (!v) {
      renderEntityTable(f.entities);
      return;
    }
    const canvas = $("room-canvas");
    const { ctx, w: cw, h: ch } = fitCanvas(canvas);
    ctx.fillStyle = COLORS.bg;
    ctx.fillRect(0, 0, cw, ch);
    // The world is inset by a dot's width, so that dots on its edges show whole.
    const inset = 10;
    const w = cw - 2 * inset;
    const h = ch - 2 * inset;
    ctx.save();
    ctx.translate(inset, inset);
    ctx.strokeStyle = COLORS.grid;
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (let i = 0; i <= 10; i++) {
      const x = Math.round((w * i) / 10) + 0.5;
      const y = Math.round((h * i) / 10) + 0.5;
      ctx.moveTo(x, 0);
      ctx.lineTo(x, h);
      ctx.moveTo(0, y);
      ctx.lineTo(w, y);
    }
    ctx.stroke();

    ctx.font = MONO;
    ctx.textBaseline = "middle";
    ctx.textAlign = "left";
    let drawn = 0;
    for (const e of f.entities) {
      const id = e[0];
      const fields = e.slice(2);
      const fx = fields[v.x];
      const fy = fields[v.y];
      if (fx === undefined || fy === undefined) continue;
      const x = (fx / v.width) * w;
      const y = (fy / v.height) * h;
      ctx.fillStyle = PALETTE[id % PALETTE.length];
      ctx.beginPath();
      ctx.arc(x, y, 6, 0, 2 * Math.PI);
      ctx.fill();
      const label = String(id);
      const lw = ctx.measureText(label).width;
      const lx = x + 9 + lw > w + inset ? x - 9 - lw : x + 9; // keep labels inside
      ctx.fillStyle = COLORS.label;
      ctx.fillText(label, lx, y);
      drawn++;
    }
    ctx.restore();
    if (f.paused) {
      ctx.font = "bold 12px system-ui, sans-serif";
      ctx.textAlign = "right";
      ctx.fillStyle = COLORS.paused;
      ctx.fillText("PAUSED", cw - 16, 24);
    }
    canvas.dataset.drawn = String(drawn);
    canvas.dataset.tick = String(f.tick);
  }

  function renderEntityTable(entities) {
    const kinds = (state.room && state.room.info && state.room.info.view && state.room.info.view.kinds) || {};
    const rows = entities.map((e) => el("tr", {},
      el("td", { class: "num" }, String(e[0])),
      el("td", {}, kinds[e[1]] || String(e[1])),
      el("td", {}, e.slice(2).join("  "))));
    $("room-entities").tBodies[0].replaceChildren(...rows);
  }

  function renderRoomDetail(d) {
    setPaused(d.paused);
    const t = d.tick || {};
    const inputs = d.inputs || {};
    $("room-figures").textContent = [
      d.player_count + "/" + d.max_players + " players",
      (t.rate || "?") + " Hz",
      "game tick " + (t.game ?? "–"),
      "tick p99 " + fmtMs(t.p99_ms) + ", max " + fmtMs(t.max_ms),
      "late p99 " + fmtMs(t.lateness_p99_ms),
      (t.overruns || 0) + " overruns",
      (inputs.dropped || 0) + " inputs dropped",
      d.private ? "private" : "public",
      "age " + fmtSpan((d.age_s || 0) * 1000),
    ].join(" · ");
    renderPlayers(d.players || []);
  }

  // renderPlayers updates the players table in place, keyed by player id.
  function renderPlayers(players) {
    const body = $("players-body");
    const old = new Map();
    for (const tr of body.children) old.set(tr.dataset.player, tr);
    const order = [];
    for (const p of players) {
      const key = String(p.id);
      let tr = old.get(key);
      if (tr) {
        old.delete(key);
      } else {
        tr = el("tr", { "data-player": key },
          el("td", { class: "num mono" }, key),
          el("td", {}, el("span", { class: "badge" })),
          el("td", { class: "num" }),
          el("td", { class: "num" }),
          el("td", { class: "num" }),
          el("td", { class: "num" }),
          el("td", { class: "mono dim" }),
          el("td", { class: "actions" }, el("button", { type: "button", class: "small danger", "data-kick": key }, "Kick")));
      }
      const badge = tr.cells[1].firstChild;
      badge.textContent = p.state;
      badge.dataset.state = p.state;
      tr.cells[2].textContent = p.rtt_ms == null ? "–" : fmtMs(p.rtt_ms);
      tr.cells[3].textContent = fmtInt(p.last_input_seq);
      tr.cells[4].textContent = fmtBytes(p.bytes_in);
      tr.cells[5].textContent = fmtBytes(p.bytes_out);
      tr.cells[6].textContent = p.remote || "";
      order.push(tr);
    }
    body.replaceChildren(...order);
    $("players-empty").hidden = players.length > 0;
  }

  function setPaused(paused) {
    setBadge($("room-paused"), paused);
  }

  function setBadge(badge, paused) {
    badge.textContent = paused ? "paused" : "running";
    badge.dataset.paused = String(!!paused);
  }

  function setControls(enabled) {
    for (const id of ["btn-pause", "btn-resume", "btn-step", "btn-delete"]) $(id).disabled = !enabled;
    for (const b of $("broadcast-form").querySelectorAll("button, input")) b.disabled = !enabled;
  }

  // roomAction runs one room operation from a button and reports its outcome
  // in the room view, errors as the API's code and message.
  async function roomAction(button, what, run) {
    const room = state.room;
    if (!room) return;
    button.disabled = true;
    try {
      const msg = await run(room);
      if (room === state.room) setMsg($("room-msg"), msg, "ok");
    } catch (err) {
      if (room === state.room) setMsg($("room-msg"), what + " failed: " + describe(err), "error");
    } finally {
      if (!room.closed) button.disabled = false;
    }
  }

  function roomPath(room, rest) {
    return "/admin/rooms/" + encodeURIComponent(room.id) + rest;
  }

  async function refreshRoom(room) {
    const d = await api("GET", roomPath(room, ""));
    if (room === state.room) renderRoomDetail(d);
  }

  function pauseOp(op) {
    return async (room) => {
      const r = await api("POST", roomPath(room, "/" + op));
      setPaused(r.paused);
      return (r.paused ? "Paused" : "Running") + " at game tick " + r.game_tick + ".";
    };
  }

  async function step(room) {
    const ticks = parseInt($("step-ticks").value, 10) || 1;
    const r = await api("POST", roomPath(room, "/step?ticks=" + ticks));
    return "Stepped " + ticks + (ticks === 1 ? " tick" : " ticks") + "; the game is at tick " + r.game_tick + ".";
  }

  // The close button asks for a second click within a few seconds.
  let closeArmed = null;
  async function deleteRoom(room) {
    const button = $("btn-delete");
    if (!closeArmed) {
      button.textContent = "Really close?";
      closeArmed = setTimeout(disarmClose, 4000);
      return "Click again to close room " + room.id + " and disconnect its players.";
    }
    disarmClose();
    await api("DELETE", roomPath(room, ""));
    return "Room " + room.id + " closed.";
  }

  function disarmClose() {
    clearTimeout(closeArmed);
    closeArmed = null;
    $("btn-delete").textContent = "Close room";
  }

  async function kick(room, pid) {
    await api("POST", roomPath(room, "/players/" + encodeURIComponent(pid) + "/kick"), { reason: "kicked from the dashboard" });
    await refreshRoom(room).catch(() => {});
    return "Player " + pid + " kicked.";
  }

  async function broadcast(ev) {
    ev.preventDefault();
    const input = $("broadcast-data");
    let data;
    try {
      data = JSON.parse(input.value);
    } catch (_) {
      data = input.value; // plain text goes as a string
    }
    await roomAction(ev.submitter || input, "Broadcast", async (room) => {
      const r = await api("POST", roomPath(room, "/broadcast"), { data });
      return "Sent to " + r.recipients + (r.recipients === 1 ? " player." : " players.");
    });
  }

  async function createRoom(ev) {
    ev.preventDefault();
    const body = { mode: $("create-mode").value.trim() };
    const max = parseInt($("create-max").value, 10);
    if (max > 0) body.max_players = max;
    if ($("create-private").checked) body.private = true;
    const msg = $("create-msg");
    try {
      const r = await api("POST", "/admin/rooms", body);
      setMsg(msg, "Created room " + r.id + ".", "ok");
      openRoom(r.id);
    } catch (err) {
      setMsg(msg, "Create failed: " + describe(err), "error");
    }
  }

  // ---------------------------------------------------------------- helpers

  // el builds an element; attrs are attributes, children strings or nodes.
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    for (const c of children) e.append(c);
    return e;
  }

  function setMsg(node, text, kind) {
    node.textContent = text || "";
    node.dataset.kind = text ? kind || "info" : "";
  }

  function fmtInt(v) {
    return v == null ? "–" : Math.round(v).toLocaleString("en-US");
  }

  function trimNum(v) {
    if (v === 0) return "0";
    if (Math.abs(v) >= 100) return v.toFixed(0);
    if (Math.abs(v) >= 10) return v.toFixed(1).replace(/\.0$/, "");
    return String(+v.toFixed(3));
  }

  function fmtMs(v) {
    if (v == null) return "–";
    return (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 0.1 || v === 0 ? v.toFixed(2) : v.toFixed(3)) + " ms";
  }

  const UNITS = ["B", "kB", "MB", "GB", "TB"];

  function scaleBytes(v) {
    let i = 0;
    while (Math.abs(v) >= 1000 && i < UNITS.length - 1) {
      v /= 1000;
      i++;
    }
    return [v, UNITS[i]];
  }

  function fmtBytes(v) {
    if (v == null) return "–";
    const [n, unit] = scaleBytes(v);
    return (unit === "B" ? n.toFixed(0) : n.toFixed(1)) + " " + unit;
  }

  function fmtRate(v) {
    return v == null ? "–" : fmtBytes(v) + "/s";
  }

  // fmtBytesShort labels a chart axis: 2.5 kB, 10 kB.
  function fmtBytesShort(v) {
    const [n, unit] = scaleBytes(v);
    return trimNum(n) + " " + unit;
  }

  function fmtSpan(ms) {
    const s = Math.round(ms / 1000);
    if (s < 60) return s + "s";
    const m = Math.floor(s / 60);
    if (m < 60) return m + "m" + (s % 60 ? " " + (s % 60) + "s" : "");
    return Math.floor(m / 60) + "h " + (m % 60) + "m";
  }

  function fmtDuration(ms) {
    if (ms == null) return "–";
    return ms < 1000 ? ms + " ms" : fmtSpan(ms);
  }

  function fmtTime(t) {
    const d = new Date(t);
    const p = (n) => String(n).padStart(2, "0");
    return p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
  }

  // ---------------------------------------------------------------- wiring

  function wire() {
    $("login-form").addEventListener("submit", login);
    $("logout-btn").addEventListener("click", logout);
    $("create-form").addEventListener("submit", createRoom);
    $("broadcast-form").addEventListener("submit", broadcast);
    $("room-close-view").addEventListener("click", closeRoom);
    $("rooms-body").addEventListener("click", (ev) => {
      const tr = ev.target.closest("tr[data-room]");
      if (tr && (!state.room || state.room.id !== tr.dataset.room)) openRoom(tr.dataset.room);
    });
    $("btn-pause").addEventListener("click", (ev) => roomAction(ev.currentTarget, "Pause", pauseOp("pause")));
    $("btn-resume").addEventListener("click", (ev) => roomAction(ev.currentTarget, "Resume", pauseOp("resume")));
    $("btn-step").addEventListener("click", (ev) => roomAction(ev.currentTarget, "Step", step));
    $("btn-delete").addEventListener("click", (ev) => roomAction(ev.currentTarget, "Close", deleteRoom));
    $("players-body").addEventListener("click", (ev) => {
      const b = ev.target.closest("button[data-kick]");
      if (b) roomAction(b, "Kick", (room) => kick(room, b.dataset.kick));
    });
    let resize = 0;
    window.addEventListener("resize", () => {
      cancelAnimationFrame(resize);
      resize = requestAnimationFrame(() => {
        drawCharts();
        if (state.room) drawRoom(state.room);
      });
    });
  }

  wire();
  boot();
})();
