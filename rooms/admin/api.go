package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/tickroom/tickroom/netcode/wire"
	"github.com/tickroom/tickroom/rooms"
	"github.com/tickroom/tickroom/sim"
)

// Bounds on what an operator may attach to a room.
const (
	maxMetadataKeys  = 32
	maxMetadataKey   = 64
	maxMetadataValue = 1024
	defaultPageSize  = 100
	maxPageSize      = 500
)

// roomSummary is a room in a list.
type roomSummary struct {
	ID          string            `json:"id"`
	Mode        string            `json:"mode"`
	PlayerCount int               `json:"player_count"`
	MaxPlayers  int               `json:"max_players"`
	Private     bool              `json:"private"`
	Paused      bool              `json:"paused"`
	Created     time.Time         `json:"created"`
	AgeSeconds  float64           `json:"age_s"`
	TickP99Ms   float64           `json:"tick_p99_ms"`
	Metadata    map[string]string `json:"metadata"`
	seq         uint64            // the room's creation number, for cursors
}

// roomDetail is one room, with its players and tick figures.
type roomDetail struct {
	roomSummary
	Tick    tickFigures  `json:"tick"`
	Inputs  inputFigures `json:"inputs"`
	Players []playerJSON `json:"players"`
}

type tickFigures struct {
	Rate          int     `json:"rate"`
	Current       uint64  `json:"current"`
	Game          uint64  `json:"game"`
	Count         uint64  `json:"count"`
	Overruns      uint64  `json:"overruns"`
	LastMs        float64 `json:"last_ms"`
	P99Ms         float64 `json:"p99_ms"`
	MaxMs         float64 `json:"max_ms"`
	LatenessP99Ms float64 `json:"lateness_p99_ms"`
}

type inputFigures struct {
	Depth    int64  `json:"queue_depth"`
	DepthMax int64  `json:"queue_depth_max"`
	Dropped  uint64 `json:"dropped"`
}

type playerJSON struct {
	ID           uint32     `json:"id"`
	State        string     `json:"state"` // "connected" or "held"
	HeldSince    *time.Time `json:"held_since,omitempty"`
	LastInputSeq uint32     `json:"last_input_seq"`
	RTTMs        *float64   `json:"rtt_ms"` // null until measured
	BytesIn      uint64     `json:"bytes_in"`
	BytesOut     uint64     `json:"bytes_out"`
	Conn         uint64     `json:"conn,omitempty"`
	Remote       string     `json:"remote,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func summarize(r *rooms.Room, now time.Time) roomSummary {
	md := r.Metadata()
	if md == nil {
		md = map[string]string{}
	}
	return roomSummary{
		ID:          r.ID(),
		Mode:        r.Mode(),
		PlayerCount: r.Players(),
		MaxPlayers:  r.MaxPlayers(),
		Private:     r.Private(),
		Paused:      r.Paused(),
		Created:     r.Created().UTC(),
		AgeSeconds:  now.Sub(r.Created()).Seconds(),
		TickP99Ms:   ms(r.Stats().Duration.Quantile(0.99)),
		Metadata:    md,
	}
}

func detail(r *rooms.Room, in rooms.Inspection, now time.Time) roomDetail {
	st := r.Stats()
	d := roomDetail{
		roomSummary: summarize(r, now),
		Tick: tickFigures{
			Rate:          r.TickRate(),
			Current:       in.Tick,
			Game:          in.GameTick,
			Count:         st.Ticks.Load(),
			Overruns:      st.Overruns.Load(),
			LastMs:        ms(time.Duration(st.LastDuration.Load())),
			P99Ms:         ms(st.Duration.Quantile(0.99)),
			MaxMs:         ms(st.Duration.Max()),
			LatenessP99Ms: ms(st.Lateness.Quantile(0.99)),
		},
		Inputs: inputFigures{
			Depth:    st.InputDepth.Load(),
			DepthMax: st.InputDepthMax.Load(),
			Dropped:  st.InputsDropped.Load(),
		},
		Players: make([]playerJSON, 0, len(in.Players)),
	}
	d.Paused = in.Paused
	for _, p := range in.Players {
		pj := playerJSON{
			ID:           uint32(p.ID),
			State:        "connected",
			LastInputSeq: p.LastInputSeq,
			BytesIn:      p.BytesIn,
			BytesOut:     p.BytesOut,
			Conn:         p.Conn,
			Remote:       p.Remote,
		}
		if !p.Connected {
			pj.State = "held"
			held := p.HeldSince.UTC()
			pj.HeldSince = &held
		}
		if p.RTT > 0 {
			rtt := ms(p.RTT)
			pj.RTTMs = &rtt
		}
		d.Players = append(d.Players, pj)
	}
	return d
}

// roomList is the body of GET /admin/rooms.
type roomList struct {
	Rooms      []roomSummary `json:"rooms"`
	Total      int           `json:"total"`
	NextCursor string        `json:"next_cursor,omitempty"`
}

func (s *Server) listRooms(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !knownParams(w, q, "mode", "has_free_seats", "limit", "cursor") {
		return
	}
	mode := q.Get("mode")
	var free *bool
	if v := q.Get("has_free_seats"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("has_free_seats must be true or false, not %q", v))
			return
		}
		free = &b
	}
	limit := defaultPageSize
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("limit must be an integer in 1..%d, not %q", maxPageSize, v))
			return
		}
		limit = n
	}
	var after uint64
	if v := q.Get("cursor"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("cursor %q is not one this server returned", v))
			return
		}
		after = n
	}
	now := time.Now()
	list := roomList{Rooms: []roomSummary{}}
	for _, room := range s.reg.List() { // creation order, so Seq ascends
		if mode != "" && room.Mode() != mode {
			continue
		}
		if free != nil && (room.Players() < room.MaxPlayers()) != *free {
			continue
		}
		list.Total++
		if room.Seq() <= after {
			continue
		}
		if len(list.Rooms) == limit {
			if list.NextCursor == "" {
				list.NextCursor = strconv.FormatUint(list.Rooms[limit-1].seq, 10)
			}
			continue
		}
		sum := summarize(room, now)
		sum.seq = room.Seq()
		list.Rooms = append(list.Rooms, sum)
	}
	writeJSON(w, http.StatusOK, list)
}

// createRequest is the body of POST /admin/rooms.
type createRequest struct {
	Mode       string            `json:"mode"`
	MaxPlayers int               `json:"max_players"`
	Private    bool              `json:"private"`
	Metadata   map[string]string `json:"metadata"`
}

func (s *Server) createRoom(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if s.decodeJSON(w, r, &req, false) != nil {
		return
	}
	if req.Mode == "" {
		writeError(w, http.StatusBadRequest, "bad_request", "mode is required")
		return
	}
	if len(req.Metadata) > maxMetadataKeys {
		writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("at most %d metadata keys", maxMetadataKeys))
		return
	}
	for k, v := range req.Metadata {
		if k == "" || len(k) > maxMetadataKey || len(v) > maxMetadataValue {
			writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("metadata keys must be 1..%d bytes and values at most %d", maxMetadataKey, maxMetadataValue))
			return
		}
	}
	if s.placeElsewhere(w, r, req.Mode, req.MaxPlayers) {
		return
	}
	room, err := s.reg.Create(rooms.RoomOptions{Mode: req.Mode, MaxPlayers: req.MaxPlayers, Private: req.Private, Metadata: req.Metadata})
	if err != nil {
		s.roomError(w, err)
		return
	}
	in, err := room.Inspect()
	if err != nil {
		s.roomError(w, err)
		return
	}
	w.Header().Set("Location", "/admin/rooms/"+room.ID())
	writeJSON(w, http.StatusCreated, detail(room, in, time.Now()))
}

// room finds the request's room, or answers 404.
func (s *Server) room(w http.ResponseWriter, r *http.Request) (*rooms.Room, bool) {
	id := r.PathValue("id")
	room, ok := s.reg.Get(id)
	if !ok {
		writeError(w, http.StatusNotFound, "room_not_found", fmt.Sprintf("no room %q", id))
	}
	return room, ok
}

func (s *Server) getRoom(w http.ResponseWriter, r *http.Request) {
	room, ok := s.room(w, r)
	if !ok {
		return
	}
	in, err := room.Inspect()
	if err != nil {
		s.roomError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, detail(room, in, time.Now()))
}

func (s *Server) deleteRoom(w http.ResponseWriter, r *http.Request) {
	room, ok := s.room(w, r)
	if !ok {
		return
	}
	if err := room.CloseContext(r.Context(), "closed by operator"); err != nil {
		s.roomError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// kickRequest is the optional body of a kick.
type kickRequest struct {
	Reason string `json:"reason"`
}

func (s *Server) kick(w http.ResponseWriter, r *http.Request) {
	room, ok := s.room(w, r)
	if !ok {
		return
	}
	pid, err := strconv.ParseUint(r.PathValue("pid"), 10, 32)
	if err != nil || pid == 0 {
		writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("player id %q must be a positive integer", r.PathValue("pid")))
		return
	}
	req := kickRequest{Reason: "kicked by an operator"}
	if s.decodeJSON(w, r, &req, true) != nil {
		return
	}
	if len(req.Reason) > wire.MaxCloseReason || !utf8.ValidString(req.Reason) {
		writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("reason must be UTF-8 of at most %d bytes: it travels in the close frame", wire.MaxCloseReason))
		return
	}
	if err := room.Kick(sim.PlayerID(pid), req.Reason); err != nil {
		s.roomError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"room": room.ID(), "player": pid, "kicked": true})
}

// broadcastRequest is the body of a broadcast: any JSON value, which players
// receive as MessagePack.
type broadcastRequest struct {
	Data json.RawMessage `json:"data"`
}

func (s *Server) broadcast(w http.ResponseWriter, r *http.Request) {
	room, ok := s.room(w, r)
	if !ok {
		return
	}
	var req broadcastRequest
	if s.decodeJSON(w, r, &req, false) != nil {
		return
	}
	if len(req.Data) == 0 {
		writeError(w, http.StatusBadRequest, "bad_request", `"data" is required: the JSON value to send`)
		return
	}
	payload, err := jsonToMsgpack(req.Data)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("data: %v", err))
		return
	}
	if len(payload) > s.cfg.MaxBroadcastBytes {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("data is %d bytes as MessagePack; at most %d", len(payload), s.cfg.MaxBroadcastBytes))
		return
	}
	n, err := room.Broadcast(payload)
	if err != nil {
		s.roomError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"room": room.ID(), "recipients": n})
}

// jsonToMsgpack re-encodes one JSON value as MessagePack; integers stay
// integers.
func jsonToMsgpack(raw json.RawMessage) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	v, err := numbers(v)
	if err != nil {
		return nil, err
	}
	return msgpack.Marshal(v)
}

// numbers turns json.Numbers into int64 or float64 throughout v; a number
// no float64 holds (1e400) is an error rather than an infinity.
func numbers(v any) (any, error) {
	var err error
	switch x := v.(type) {
	case json.Number:
		if i, ierr := x.Int64(); ierr == nil {
			return i, nil
		}
		f, ferr := x.Float64()
		if ferr != nil {
			return nil, fmt.Errorf("number %s is out of range", x)
		}
		return f, nil
	case map[string]any:
		for k, e := range x {
			if x[k], err = numbers(e); err != nil {
				return nil, err
			}
		}
	case []any:
		for i, e := range x {
			if x[i], err = numbers(e); err != nil {
				return nil, err
			}
		}
	}
	return v, nil
}

// pauseState is the body of pause, resume and step answers.
type pauseState struct {
	Room     string `json:"room"`
	Paused   bool   `json:"paused"`
	GameTick uint64 `json:"game_tick"`
}

func (s *Server) pause(w http.ResponseWriter, r *http.Request) {
	s.pauseOp(w, r, (*rooms.Room).Pause)
}

func (s *Server) resume(w http.ResponseWriter, r *http.Request) {
	s.pauseOp(w, r, (*rooms.Room).Resume)
}

func (s *Server) pauseOp(w http.ResponseWriter, r *http.Request, op func(*rooms.Room) error) {
	room, ok := s.room(w, r)
	if !ok {
		return
	}
	if s.noBody(w, r) {
		return
	}
	if err := op(room); err != nil {
		s.roomError(w, err)
		return
	}
	in, err := room.Inspect()
	if err != nil {
		s.roomError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, pauseState{Room: room.ID(), Paused: in.Paused, GameTick: in.GameTick})
}

func (s *Server) step(w http.ResponseWriter, r *http.Request) {
	room, ok := s.room(w, r)
	if !ok {
		return
	}
	if s.noBody(w, r) {
		return
	}
	if !knownParams(w, r.URL.Query(), "ticks") {
		return
	}
	n := 1
	if v := r.URL.Query().Get("ticks"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > s.cfg.MaxSteps {
			writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("ticks must be an integer in 1..%d, not %q", s.cfg.MaxSteps, v))
			return
		}
	}
	tick, err := room.Step(r.Context(), n)
	if err != nil {
		s.roomError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, pauseState{Room: room.ID(), Paused: room.Paused(), GameTick: tick})
}

// noBody refuses a body on a request that takes none: anything but nothing
// or an empty JSON object gets 400 (or 413 or 415, as any body may).
func (s *Server) noBody(w http.ResponseWriter, r *http.Request) bool {
	var empty struct{}
	return s.decodeJSON(w, r, &empty, true) != nil
}

func (s *Server) state(w http.ResponseWriter, r *http.Request) {
	room, ok := s.room(w, r)
	if !ok {
		return
	}
	tick, state, err := room.State()
	if err != nil {
		s.roomError(w, err)
		return
	}
	h := w.Header()
	// The bytes are whatever the game's MarshalState makes (the arena's are
	// MessagePack); X-Tickroom-Mode says which game can read them.
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="room-%s-%s-tick-%d.state"`, room.ID(), room.Mode(), tick))
	h.Set("X-Tickroom-Mode", room.Mode())
	h.Set("X-Tickroom-Tick", strconv.FormatUint(tick, 10))
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(state)
}

// knownParams answers 400 if q has a parameter not in names: a misspelt
// parameter (step?tick=5) must not silently mean its default.
func knownParams(w http.ResponseWriter, q url.Values, names ...string) bool {
	for key := range q {
		if !slices.Contains(names, key) {
			writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("unknown query parameter %q (this route takes: %s)", key, strings.Join(names, ", ")))
			return false
		}
	}
	return true
}

// roomError answers a registry or room error with its status.
func (s *Server) roomError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, rooms.ErrRoomNotFound), errors.Is(err, rooms.ErrRoomClosed):
		writeError(w, http.StatusNotFound, "room_not_found", "the room closed or does not exist")
	case errors.Is(err, rooms.ErrPlayerNotFound):
		writeError(w, http.StatusNotFound, "player_not_found", err.Error())
	case errors.Is(err, rooms.ErrUnknownMode):
		writeError(w, http.StatusBadRequest, "unknown_mode", err.Error())
	case errors.Is(err, rooms.ErrInvalidOptions):
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
	case errors.Is(err, rooms.ErrTooManyRooms):
		writeError(w, http.StatusConflict, "too_many_rooms", err.Error())
	case errors.Is(err, rooms.ErrAlreadyPaused):
		writeError(w, http.StatusConflict, "already_paused", "the room is already paused")
	case errors.Is(err, rooms.ErrNotPaused):
		writeError(w, http.StatusConflict, "not_paused", "the room is not paused")
	case errors.Is(err, rooms.ErrStepping):
		writeError(w, http.StatusConflict, "stepping", err.Error())
	case errors.Is(err, rooms.ErrClosed):
		writeError(w, http.StatusServiceUnavailable, "shutting_down", "the node is shutting down")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, "cancelled", err.Error())
	case errors.Is(err, rooms.ErrRoomUnresponsive):
		writeError(w, http.StatusServiceUnavailable, "room_unresponsive", err.Error())
	default:
		s.log.Error("admin request failed", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
	}
}
