package admin

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/tickroom/tickroom/netcode"
	"github.com/tickroom/tickroom/rooms"
)

// feedRooms and feedDisconnects bound what each node sample lists.
const (
	feedRooms       = 200
	feedDisconnects = 20
)

// sample is one point of the node feed: the node's state at a moment and its
// rates over the interval before it.
type sample struct {
	TimeMs          int64   `json:"t"`
	Rooms           int     `json:"rooms"`
	Players         int     `json:"players"`
	Connections     int     `json:"connections"`
	BytesInPerSec   float64 `json:"bytes_in_per_s"`
	BytesOutPerSec  float64 `json:"bytes_out_per_s"`
	TickP50Ms       float64 `json:"tick_p50_ms"`
	TickP99Ms       float64 `json:"tick_p99_ms"`
	LatenessP99Ms   float64 `json:"lateness_p99_ms"`
	Overruns        uint64  `json:"overruns"`
	DisconnectCount uint64  `json:"disconnects"`
}

// nodeEvent is the payload of a "sample" event.
type nodeEvent struct {
	sample
	RoomRows    []roomRow        `json:"room_list"`
	RoomsTotal  int              `json:"rooms_total"`
	Disconnects []disconnectJSON `json:"recent_disconnects"`
}

type roomRow struct {
	ID          string  `json:"id"`
	Mode        string  `json:"mode"`
	PlayerCount int     `json:"player_count"`
	MaxPlayers  int     `json:"max_players"`
	Paused      bool    `json:"paused"`
	TickP99Ms   float64 `json:"tick_p99_ms"`
}

type disconnectJSON struct {
	TimeMs     int64  `json:"t"`
	Conn       uint64 `json:"conn"`
	Remote     string `json:"remote"`
	Client     string `json:"client"`
	Label      string `json:"label"`
	Reason     string `json:"reason"`
	Code       int    `json:"code"`
	Detail     string `json:"detail"`
	DurationMs int64  `json:"duration_ms"`
}

// feed samples the node for the dashboards and fans each sample out, encoded
// once, to every open node stream.
type feed struct {
	s *Server

	mu      sync.Mutex
	history []sample // oldest first, at most keep
	keep    int
	subs    map[chan []byte]struct{}

	// Sampler goroutine only.
	last     netcode.Totals
	lastAt   time.Time
	lastDur  rooms.Histogram
	lastLate rooms.Histogram
	lastOver uint64
	lastDisc uint64
}

func newFeed(s *Server, keep int) *feed {
	return &feed{s: s, keep: max(keep, 1), subs: make(map[chan []byte]struct{})}
}

// run samples every SampleInterval until ctx ends.
func (f *feed) run(ctx context.Context) {
	t := time.NewTicker(f.s.cfg.SampleInterval)
	defer t.Stop()
	f.take(time.Now()) // the baseline for the first rates
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			ev := f.take(now)
			msg, err := sseMessage("sample", ev)
			if err != nil {
				f.s.log.Error("encoding a dashboard sample", "err", err)
				continue
			}
			f.publish(ev.sample, msg)
		}
	}
}

// take reads the node's counters.
func (f *feed) take(now time.Time) nodeEvent {
	reg, srv := f.s.reg, f.s.net
	totals := srv.Totals()
	secs := now.Sub(f.lastAt).Seconds()
	node := reg.Stats()
	dur := rooms.HistogramDiff(&node.Duration, &f.lastDur)
	late := rooms.HistogramDiff(&node.Lateness, &f.lastLate)
	var disc uint64
	for _, r := range netcode.DisconnectReasons() {
		disc += srv.Stats().Disconnects(r)
	}
	over := node.Overruns

	list := reg.List()
	ev := nodeEvent{
		sample: sample{
			TimeMs:          now.UnixMilli(),
			Rooms:           len(list),
			Connections:     srv.Conns(),
			TickP50Ms:       ms(dur.Quantile(0.5)),
			TickP99Ms:       ms(dur.Quantile(0.99)),
			LatenessP99Ms:   ms(late.Quantile(0.99)),
			Overruns:        over - f.lastOver,
			DisconnectCount: disc - f.lastDisc,
		},
		RoomsTotal:  len(list),
		RoomRows:    []roomRow{},
		Disconnects: []disconnectJSON{},
	}
	if !f.lastAt.IsZero() && secs > 0 {
		ev.BytesInPerSec = float64(totals.BytesIn-f.last.BytesIn) / secs
		ev.BytesOutPerSec = float64(totals.BytesOut-f.last.BytesOut) / secs
	}
	// Room rows cost a histogram scan per room: only for open dashboards.
	watched := f.watched()
	rows := make([]roomRow, 0, len(list))
	for _, r := range list {
		n := r.Players()
		ev.Players += n
		if watched {
			rows = append(rows, roomRow{ID: r.ID(), Mode: r.Mode(), PlayerCount: n, MaxPlayers: r.MaxPlayers(), Paused: r.Paused(), TickP99Ms: ms(r.Stats().Duration.Quantile(0.99))})
		}
	}
	// The busiest rooms first; creation order among equals keeps rows still.
	slices.SortStableFunc(rows, func(a, b roomRow) int { return cmp.Compare(b.PlayerCount, a.PlayerCount) })
	ev.RoomRows = rows[:min(len(rows), feedRooms)]
	for _, d := range srv.RecentDisconnects() {
		if len(ev.Disconnects) == feedDisconnects {
			break
		}
		ev.Disconnects = append(ev.Disconnects, disconnectJSON{
			TimeMs: d.Time.UnixMilli(), Conn: d.Conn, Remote: d.Remote, Client: d.Client, Label: d.Label,
			Reason: d.Reason.String(), Code: int(d.Code), Detail: d.Detail, DurationMs: d.Duration.Milliseconds(),
		})
	}

	f.last, f.lastAt, f.lastOver, f.lastDisc = totals, now, over, disc
	f.lastDur = rooms.Histogram{}
	f.lastDur.Merge(&node.Duration)
	f.lastLate = rooms.Histogram{}
	f.lastLate.Merge(&node.Lateness)
	return ev
}

// watched reports whether any node stream is open.
func (f *feed) watched() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs) > 0
}

func (f *feed) publish(s sample, msg []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.history) == f.keep {
		f.history = slices.Delete(f.history, 0, 1)
	}
	f.history = append(f.history, s)
	for ch := range f.subs {
		select {
		case ch <- msg:
		default: // a stream that fell behind skips a sample
		}
	}
}

// subscribe returns the history so far and a channel of encoded samples.
func (f *feed) subscribe() ([]sample, chan []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan []byte, 4)
	f.subs[ch] = struct{}{}
	// Not slices.Clone: before the first sample that is nil, which a
	// "history" event would send as null rather than [].
	return append(make([]sample, 0, len(f.history)), f.history...), ch
}

func (f *feed) unsubscribe(ch chan []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.subs, ch)
}

// sseMessage encodes one Server-Sent Event.
func sseMessage(event string, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("admin: encode %s event: %w", event, err)
	}
	msg := make([]byte, 0, len(b)+len(event)+16)
	msg = append(msg, "event: "...)
	msg = append(msg, event...)
	msg = append(msg, "\ndata: "...)
	msg = append(msg, b...)
	return append(msg, "\n\n"...), nil
}

// stream is one open Server-Sent Events response.
type stream struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

// openStream takes a stream slot and starts the event-stream response; it
// answers 503 itself when all slots are taken.
func (s *Server) openStream(w http.ResponseWriter, r *http.Request) (*stream, func(), bool) {
	if r.Method == http.MethodHead {
		// Headers only: a HEAD must not hold a stream slot.
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		return nil, nil, false
	}
	select {
	case s.streams <- struct{}{}:
	default:
		writeError(w, http.StatusServiceUnavailable, "too_many_streams", fmt.Sprintf("at most %d event streams may be open", s.cfg.MaxStreams))
		return nil, nil, false
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // tell proxies not to buffer the stream
	w.WriteHeader(http.StatusOK)
	st := &stream{w: w, rc: http.NewResponseController(w), timeout: s.cfg.StreamWriteTimeout}
	return st, func() { <-s.streams }, true
}

// send writes and flushes one encoded event, within the write timeout.
func (st *stream) send(msg []byte) error {
	_ = st.rc.SetWriteDeadline(time.Now().Add(st.timeout))
	if _, err := st.w.Write(msg); err != nil {
		return err
	}
	return st.rc.Flush()
}

func (st *stream) event(name string, v any) error {
	msg, err := sseMessage(name, v)
	if err != nil {
		return err
	}
	return st.send(msg)
}

// events is the node feed: a "history" event with the recent samples, then
// a "sample" event every SampleInterval.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	st, release, ok := s.openStream(w, r)
	if !ok {
		return
	}
	defer release()
	history, ch := s.feed.subscribe()
	defer s.feed.unsubscribe(ch)
	if err := st.event("history", map[string]any{"interval_ms": s.cfg.SampleInterval.Milliseconds(), "samples": history}); err != nil {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case msg := <-ch:
			if st.send(msg) != nil {
				return
			}
		}
	}
}

// watchView is the payload of a watch stream's first event.
type watchView struct {
	Room       string  `json:"room"`
	Mode       string  `json:"mode"`
	MaxPlayers int     `json:"max_players"`
	TickRate   int     `json:"tick_rate"`
	View       *viewJS `json:"view"` // null: the game has no positions; show entities as text
}

type viewJS struct {
	Width  int32             `json:"width"`
	Height int32             `json:"height"`
	X      int               `json:"x"`
	Y      int               `json:"y"`
	Kinds  map[string]string `json:"kinds"`
}

// frameJSON is a "frame" event: entities as [id, kind, fields...].
type frameJSON struct {
	Tick     uint64    `json:"tick"`
	Paused   bool      `json:"paused"`
	Entities [][]int64 `json:"entities"`
}

// watch streams one room for the dashboard's room view: a "view" event
// saying how to draw it, then a "frame" event per 1/hz seconds and a "room"
// event (the room's detail, players included) each second, until the room
// closes ("closed") or the client goes.
func (s *Server) watch(w http.ResponseWriter, r *http.Request) {
	room, ok := s.room(w, r)
	if !ok {
		return
	}
	if !knownParams(w, r.URL.Query(), "hz") {
		return
	}
	hz := s.cfg.WatchRate
	if v := r.URL.Query().Get("hz"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > s.cfg.WatchRate {
			writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("hz must be an integer in 1..%d, not %q", s.cfg.WatchRate, v))
			return
		}
		hz = n
	}
	st, release, ok := s.openStream(w, r)
	if !ok {
		return
	}
	defer release()
	wv := watchView{Room: room.ID(), Mode: room.Mode(), MaxPlayers: room.MaxPlayers(), TickRate: room.TickRate()}
	if v, ok := room.View(); ok {
		wv.View = &viewJS{Width: v.Width, Height: v.Height, X: v.X, Y: v.Y, Kinds: map[string]string{}}
		for k, name := range v.Kinds {
			wv.View.Kinds[strconv.Itoa(int(k))] = name
		}
	}
	if st.event("view", wv) != nil {
		return
	}
	frames := time.NewTicker(time.Second / time.Duration(hz))
	defer frames.Stop()
	var lastDetail time.Time
	for {
		select {
		case <-r.Context().Done():
			return
		case <-room.Done():
			_ = st.event("closed", map[string]string{"room": room.ID()})
			return
		case now := <-frames.C:
			f, err := room.Frame()
			if errors.Is(err, rooms.ErrRoomClosed) {
				_ = st.event("closed", map[string]string{"room": room.ID()})
				return
			}
			if err != nil {
				continue // unresponsive for now; try the next frame
			}
			fj := frameJSON{Tick: f.Tick, Paused: f.Paused, Entities: make([][]int64, len(f.Entities))}
			for i, e := range f.Entities {
				row := make([]int64, 0, 2+len(e.Fields))
				row = append(row, int64(e.ID), int64(e.Kind))
				for _, v := range e.Fields {
					row = append(row, int64(v))
				}
				fj.Entities[i] = row
			}
			if st.event("frame", fj) != nil {
				return
			}
			if now.Sub(lastDetail) >= time.Second {
				lastDetail = now
				in, err := room.Inspect()
				if err == nil && st.event("room", detail(room, in, now)) != nil {
					return
				}
			}
		}
	}
}
