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
	reg     *rooms.Registry
	net     *netcode.Server
	cluster *clusterSlot // read at each scrape: SetCluster comes after New
	members []string     // the member states always exported, even at 0

	rooms, players, connections, paused         *prometheus.Desc
	roomsCreated, roomsClosed                   *prometheus.Desc
	ticks, overruns, tickDuration, tickLateness *prometheus.Desc
	inputDepth, inputDepthMax, inputsDropped    *prometheus.Desc
	snapshotBytes, snapshotsReplaced            *prometheus.Desc
	bytes, messages                             *prometheus.Desc
	disconnects, handshakeFailures, accepted    *prometheus.Desc
	clockTicks, clockOverruns, clockLateness    *prometheus.Desc
	clockHelpers                                *prometheus.Desc

	// Exported only while a Cluster is set.
	clusterMembers, directoryRooms, directoryTombstones                                         *prometheus.Desc
	checkpoints, checkpointBytes, checkpointAge, witnessed, failovers, handOffs, fenced, freeze *prometheus.Desc
	directoryLag, directoryLagSamples                                                           *prometheus.Desc
	gossipBytes, gossipPackets, gossipDropped                                                   *prometheus.Desc
	redirects, proxied, placements, placementsLocal                                             *prometheus.Desc
}

func newCollector(reg *rooms.Registry, srv *netcode.Server, cluster *clusterSlot) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("tickroom_"+name, help, labels, nil)
	}
	return &collector{
		reg: reg, net: srv, cluster: cluster,
		members:           []string{"alive", "suspect", "dead", "left"},
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

		clusterMembers:      d("cluster_members", "Cluster members by state (alive, suspect, dead, left), as this node sees them, itself included.", "state"),
		directoryRooms:      d("cluster_directory_rooms", "Live rooms in this node's copy of the cluster's room directory, on all nodes."),
		directoryTombstones: d("cluster_directory_tombstones", "Closed rooms the directory still remembers, so that late news of them is ignored."),
		directoryLag:        d("cluster_directory_lag_seconds", "Directory convergence lag, from a host's change to this node seeing it, over the recent entries from other nodes: the median (0.5), 99th percentile (0.99) and maximum (1). It relies on the nodes' clocks agreeing.", "quantile"),
		directoryLagSamples: d("cluster_directory_lag_samples", "Recent directory entries the lag quantiles are over."),
		gossipBytes:         d("cluster_gossip_bytes_total", "Gossip bytes received (in) and sent (out).", "direction"),
		gossipPackets:       d("cluster_gossip_packets_total", "Gossip packets received (in) and sent (out).", "direction"),
		gossipDropped:       d("cluster_gossip_dropped_total", "Gossip messages from peers dropped because they could not be decoded."),
		redirects:           d("cluster_redirects_total", "Joins this node redirected to the node that serves their room."),
		proxied:             d("cluster_proxied_total", "Joins this node proxied to the node that serves their room."),
		placements:          d("cluster_placements_total", "Join-or-create placements by kind: into a room with a free seat (free_seat) or onto the node chosen to create a room (new_room).", "kind"),
		placementsLocal:     d("cluster_placements_local_total", "Placements, of either kind, that this node served itself."),
		checkpoints:         d("cluster_checkpoints_total", "Room checkpoints this node sent to witnesses (sent), stored for other hosts (stored), and refused because the room runs elsewhere at a higher epoch (refused).", "kind"),
		checkpointBytes:     d("cluster_checkpoint_bytes_total", "Bytes of checkpoint messages this node sent to witnesses."),
		checkpointAge:       d("cluster_checkpoint_age_max_seconds", "Age of the oldest latest-checkpoint among this node's replicated rooms: the most game time a failover would lose now."),
		witnessed:           d("cluster_witnessed_rooms", "Other hosts' rooms this node keeps a checkpoint of."),
		failovers:           d("cluster_failovers_total", "Rooms this node restored from a checkpoint after their host's lease ran out, by result (ok, failed).", "result"),
		handOffs:            d("cluster_handoffs_total", "Live hand-offs: rooms sent from this node (sent), that failed (failed), and taken by it (received).", "kind"),
		fenced:              d("cluster_fenced_rooms_total", "Rooms this node stopped because their lease no longer held (cut off, or taken over elsewhere)."),
		freeze:              d("cluster_handoff_freeze_seconds", "How long hand-offs from this node kept their room frozen: the median (0.5), 99th percentile (0.99) and maximum (1).", "quantile"),
	}
}

// Describe sends every descriptor, the cluster's too: a Cluster may be set
// after registration.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.rooms, c.paused, c.players, c.connections, c.roomsCreated, c.roomsClosed,
		c.ticks, c.overruns, c.tickDuration, c.tickLateness,
		c.clockTicks, c.clockOverruns, c.clockLateness, c.clockHelpers,
		c.inputDepth, c.inputDepthMax, c.inputsDropped, c.snapshotBytes, c.snapshotsReplaced,
		c.bytes, c.messages, c.disconnects, c.handshakeFailures, c.accepted,
		c.clusterMembers, c.directoryRooms, c.directoryTombstones, c.directoryLag, c.directoryLagSamples,
		c.gossipBytes, c.gossipPackets, c.gossipDropped, c.redirects, c.proxied, c.placements, c.placementsLocal,
		c.checkpoints, c.checkpointBytes, c.checkpointAge, c.witnessed, c.failovers, c.handOffs, c.fenced, c.freeze,
	} {
		ch <- d
	}
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

	if cl := c.cluster.load(); cl != nil {
		c.collectCluster(cl.ClusterStatus(), gauge, counter)
	}
}

// collectCluster exports what the cluster counts, from one status.
func (c *collector) collectCluster(st ClusterStatus, gauge func(*prometheus.Desc, float64, ...string), counter func(*prometheus.Desc, uint64, ...string)) {
	states := make(map[string]int, len(c.members))
	for _, s := range c.members {
		states[s] = 0
	}
	for _, m := range st.Members {
		states[m.State]++
	}
	for s, n := range states {
		gauge(c.clusterMembers, float64(n), s)
	}

	d := st.Directory
	gauge(c.directoryRooms, float64(d.Rooms))
	gauge(c.directoryTombstones, float64(d.Tombstones))
	gauge(c.directoryLagSamples, float64(d.LagSamples))
	if d.LagSamples > 0 { // no samples, no quantiles (not a lag of 0)
		seconds := func(ms float64) float64 { return ms / 1000 }
		gauge(c.directoryLag, seconds(d.LagP50Ms), "0.5")
		gauge(c.directoryLag, seconds(d.LagP99Ms), "0.99")
		gauge(c.directoryLag, seconds(d.LagMaxMs), "1")
	}

	g := st.Gossip
	counter(c.gossipBytes, g.BytesIn, "in")
	counter(c.gossipBytes, g.BytesOut, "out")
	counter(c.gossipPackets, g.PacketsIn, "in")
	counter(c.gossipPackets, g.PacketsOut, "out")
	counter(c.gossipDropped, g.Dropped)
	counter(c.redirects, st.Routing.Redirects)
	counter(c.proxied, st.Routing.Proxied)
	counter(c.placements, st.Decisions.ToFreeSeat, "free_seat")
	counter(c.placements, st.Decisions.ToNewRoom, "new_room")
	counter(c.placementsLocal, st.Decisions.Local)

	o := st.Ownership
	if !o.Enabled {
		return
	}
	counter(c.checkpoints, o.CheckpointsSent, "sent")
	counter(c.checkpoints, o.CheckpointsStored, "stored")
	counter(c.checkpoints, o.CheckpointsRefused, "refused")
	counter(c.checkpointBytes, o.CheckpointBytesSent)
	gauge(c.checkpointAge, o.MaxCheckpointAgeMs/1000)
	gauge(c.witnessed, float64(o.Witnessed))
	counter(c.failovers, o.Failovers, "ok")
	counter(c.failovers, o.FailoverFailures, "failed")
	counter(c.handOffs, o.HandOffs, "sent")
	counter(c.handOffs, o.HandOffFailures, "failed")
	counter(c.handOffs, o.HandOffsReceived, "received")
	counter(c.fenced, o.Fenced)
	gauge(c.freeze, o.FreezeP50Ms/1000, "0.5")
	gauge(c.freeze, o.FreezeP99Ms/1000, "0.99")
	gauge(c.freeze, o.FreezeMaxMs/1000, "1")
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
