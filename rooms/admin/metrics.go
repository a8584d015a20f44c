package admin

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickroom/tickroom/netcode"
	"github.com/tickroom/tickroom/rooms"
)

// durationBuckets are the tick histograms' Prometheus buckets: multiples of
// the rooms' 10 µs resolution, up to the 10 ms their histograms cover (the
// rest is +Inf). A bucket counts durations below its bound.
var durationBuckets = []time.Duration{
	50 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond, 8 * time.Millisecond, 10 * time.Millisecond,
}

// collector exports the counters rooms and connections already keep. It
// reads them at scrape time, so metrics add nothing to the tick path.
type collector struct {
	reg *rooms.Registry
	net *netcode.Server

	rooms, players, connections, paused         *prometheus.Desc
	roomsCreated, roomsClosed                   *prometheus.Desc
	ticks, overruns, tickDuration, tickLateness *prometheus.Desc
	inputDepth, inputDepthMax, inputsDropped    *prometheus.Desc
	snapshotBytes, snapshotsReplaced            *prometheus.Desc
	bytes, messages                             *prometheus.Desc
	disconnects, handshakeFailures, accepted    *prometheus.Desc
	clockTicks, clockOverruns, clockLateness    *prometheus.Desc
	clockHelpers                                *prometheus.Desc
}

func newCollector(reg *rooms.Registry, srv *netcode.Server) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("tickroom_"+name, help, labels, nil)
	}
	return &collector{
		reg: reg, net: srv,
		rooms:             d("rooms", "Rooms open on this node."),
		paused:            d("rooms_paused", "Rooms an operator paused."),
		players:           d("players", "Seats taken, including seats held for a dropped player's resume."),
		connections:       d("connections", "Open WebSocket connections."),
		roomsCreated:      d("rooms_created_total", "Rooms created."),
		roomsClosed:       d("rooms_closed_total", "Rooms closed."),
		ticks:             d("ticks_total", "Room ticks run."),
		overruns:          d("tick_overruns_total", "Tick slots skipped because a room fell a period or more behind."),
		tickDuration:      d("tick_duration_seconds", "How long a room's tick took."),
		tickLateness:      d("tick_lateness_seconds", "How late a room's tick started against its node tick: the clock's own lateness plus the wait for a worker while earlier rooms of the same node tick ran."),
		clockTicks:        d("clock_ticks_total", "Node ticks the node clock released to its rooms."),
		clockOverruns:     d("clock_overruns_total", "Node ticks skipped because the node clock woke a period or more late."),
		clockLateness:     d("clock_lateness_seconds", "How late the node clock released each node tick: the precision of the node's one wait."),
		clockHelpers:      d("clock_helpers_total", "Helper workers started because workers were stuck in slow rooms."),
		inputDepth:        d("input_queue_depth", "Inputs waiting in players' queues at each room's latest tick, summed over rooms."),
		inputDepthMax:     d("input_queue_depth_max", "The fullest player input queue at any room's latest tick."),
		inputsDropped:     d("inputs_dropped_total", "Inputs dropped: a player's queue was full (queue_full) or the client exceeded its rate (rate_limited).", "reason"),
		snapshotBytes:     d("snapshot_bytes", "Size of encoded snapshot bodies; each is encoded once per room, tick and base, and shared by the players who get it."),
		snapshotsReplaced: d("snapshots_replaced_total", "Snapshots replaced unsent in a slow client's mailbox by a newer one."),
		bytes:             d("bytes_total", "WebSocket bytes received (in) and sent (out).", "direction"),
		messages:          d("messages_total", "WebSocket messages received (in) and sent (out).", "direction"),
		disconnects:       d("disconnects_total", "Connections ended, by reason.", "reason"),
		handshakeFailures: d("handshake_failures_total", "WebSocket upgrades that failed, and Hellos that were malformed, of another version or late. Clients that hung up before their Hello count only in disconnects_total{reason=\"handshake_failed\"}."),
		accepted:          d("connections_accepted_total", "TCP connections accepted on the game endpoint."),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(c, ch)
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}

	list := c.reg.List()
	var players, paused int
	var depth, deepest int64
	for _, r := range list {
		players += r.Players()
		if r.Paused() {
			paused++
		}
		st := r.Stats()
		depth += st.InputDepth.Load()
		deepest = max(deepest, st.InputDepthMax.Load())
	}
	gauge(c.rooms, float64(len(list)))
	gauge(c.paused, float64(paused))
	gauge(c.players, float64(players))
	gauge(c.connections, float64(c.net.Conns()))
	gauge(c.inputDepth, float64(depth))
	gauge(c.inputDepthMax, float64(deepest))

	node := c.reg.Stats()
	counter(c.roomsCreated, node.RoomsCreated)
	counter(c.roomsClosed, node.RoomsClosed)
	counter(c.ticks, node.Ticks)
	counter(c.overruns, node.Overruns)
	ch <- durationHistogram(c.tickDuration, &node.Duration)
	ch <- durationHistogram(c.tickLateness, &node.Lateness)
	counter(c.clockTicks, node.NodeTicks)
	counter(c.clockOverruns, node.NodeOverruns)
	counter(c.clockHelpers, node.Helpers)
	ch <- durationHistogram(c.clockLateness, &node.ClockLateness)

	counts, sum := node.SnapshotBytes.Counts()
	buckets := make(map[float64]uint64, rooms.SizeBuckets-1)
	var total, cum uint64
	for i, n := range counts {
		total += n
		if bound := rooms.SizeBound(i); bound >= 0 {
			cum += n
			buckets[float64(bound)] = cum
		}
	}
	ch <- prometheus.MustNewConstHistogram(c.snapshotBytes, total, float64(sum), buckets)

	t := c.net.Totals()
	counter(c.inputsDropped, node.InputsDropped, "queue_full")
	counter(c.inputsDropped, t.InputsDropped, "rate_limited")
	counter(c.snapshotsReplaced, t.SnapshotsReplaced)
	counter(c.bytes, t.BytesIn, "in")
	counter(c.bytes, t.BytesOut, "out")
	counter(c.messages, t.MessagesIn, "in")
	counter(c.messages, t.MessagesOut, "out")

	st := c.net.Stats()
	for _, reason := range netcode.DisconnectReasons() {
		counter(c.disconnects, st.Disconnects(reason), reason.String())
	}
	counter(c.handshakeFailures, st.HandshakeFailures.Load())
	counter(c.accepted, st.Accepted.Load())
}

// durationHistogram exports a rooms.Histogram with durationBuckets.
func durationHistogram(d *prometheus.Desc, h *rooms.Histogram) prometheus.Metric {
	buckets := make(map[float64]uint64, len(durationBuckets))
	var below uint64
	for _, b := range durationBuckets {
		below = h.CumulativeUpTo(b)
		buckets[b.Seconds()] = below
	}
	// Ticks recorded during the scrape may show in the buckets before the
	// count: keep the count at least the largest bucket.
	return prometheus.MustNewConstHistogram(d, max(h.Count(), below), h.Sum().Seconds(), buckets)
}
