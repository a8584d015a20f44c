package bots

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// Report is what a run measured. Its JSON form is the --json report; the
// keys are documented in README.md.
type Report struct {
	Players             int          `json:"players"` // bots asked for
	Joined              int          `json:"joined"`  // bots that took a seat
	DurationS           float64      `json:"duration_s"`
	SnapshotsPerPlayerS float64      `json:"snapshots_per_player_s"`
	SnapshotGapMs       GapQuantiles `json:"snapshot_gap_ms"`
	InputLatencyMs      Quantiles    `json:"input_latency_ms"`
	RTTMs               RTTQuantiles `json:"rtt_ms"`
	ConnectMs           Quantiles    `json:"connect_ms"`
	BytesDownPerPlayerS float64      `json:"bytes_down_per_player_s"`
	BytesUpPerPlayerS   float64      `json:"bytes_up_per_player_s"`
	Drops               uint64       `json:"drops"`
	Resumes             uint64       `json:"resumes"`
	Moves               uint64       `json:"moves"`             // seats that followed their room to another node (RoomMoved)
	SeatsLost           int          `json:"seats_lost"`        // bots that joined and hold no seat at the end
	OutageMs            Quantiles    `json:"outage_ms"`         // from a drop to the seat resumed
	GameTimeLostMs      float64      `json:"game_time_lost_ms"` // the most game time a bot saw taken back (failover to an older checkpoint)
	Errors              uint64       `json:"errors"`
	JoinFailures        uint64       `json:"join_failures"`
	LastError           string       `json:"last_error,omitempty"`
	BotsCPUCores        float64      `json:"bots_cpu_cores"`
	Interrupted         bool         `json:"interrupted"`
	Gates               []GateResult `json:"gates,omitempty"`
}

// GapQuantiles are snapshot inter-arrival gaps, in milliseconds.
type GapQuantiles struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// Quantiles are latencies in milliseconds.
type Quantiles struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// RTTQuantiles are round trips in milliseconds.
type RTTQuantiles struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
}

// collect builds the report at the end of a run. Rates are per second of
// seat time (from each bot's join to the end), so the ramp does not dilute
// them.
func (r *runner) collect(start, end time.Time, cpu time.Duration) *Report {
	rep := &Report{
		Players:      r.cfg.Players,
		Joined:       int(r.joined.Load()),
		DurationS:    end.Sub(start).Seconds(),
		Errors:       r.metrics.errors.Load(),
		JoinFailures: r.metrics.joinFailures.Load(),
		BotsCPUCores: cpu.Seconds() / end.Sub(start).Seconds(),
	}
	if p := r.metrics.lastError.Load(); p != nil && *p != nil {
		rep.LastError = (*p).Error()
	}
	var seatSeconds float64
	var snaps, down, up uint64
	for i := range r.bots {
		b := r.bots[i].Load()
		if b == nil {
			continue
		}
		st := b.c.Stats()
		seatSeconds += end.Sub(b.joinedAt).Seconds()
		snaps += st.Snapshots.Load()
		down += st.BytesIn.Load()
		up += st.BytesOut.Load()
		rep.Drops += st.Drops.Load()
		rep.Resumes += st.Resumes.Load()
		rep.Moves += st.Moves.Load()
		if b.c.Seat() == nil {
			rep.SeatsLost++
		}
	}
	if rate := r.tickRate(); rate > 0 {
		rep.GameTimeLostMs = float64(r.metrics.rewindTicks.Load()) * 1000 / float64(rate)
	}
	out := r.metrics.outage.merged()
	rep.OutageMs = Quantiles{P50: ms(out, 50), P99: ms(out, 99), Max: ms(out, 100)}
	if seatSeconds > 0 {
		rep.SnapshotsPerPlayerS = float64(snaps) / seatSeconds
		rep.BytesDownPerPlayerS = float64(down) / seatSeconds
		rep.BytesUpPerPlayerS = float64(up) / seatSeconds
	}
	gap, lat, rtt, conn := r.metrics.gap.merged(), r.metrics.latency.merged(), r.metrics.rtt.merged(), r.metrics.connect.merged()
	rep.SnapshotGapMs = GapQuantiles{P50: ms(gap, 50), P90: ms(gap, 90), P99: ms(gap, 99), Max: ms(gap, 100)}
	rep.InputLatencyMs = Quantiles{P50: ms(lat, 50), P99: ms(lat, 99), Max: ms(lat, 100)}
	rep.RTTMs = RTTQuantiles{P50: ms(rtt, 50), P99: ms(rtt, 99)}
	rep.ConnectMs = Quantiles{P50: ms(conn, 50), P99: ms(conn, 99), Max: ms(conn, 100)}
	return rep
}

// Gates are SLOs a run must meet; zero values (and negative counts) are off.
type Gates struct {
	MaxP99Gap       time.Duration
	MaxP99Latency   time.Duration
	MaxErrors       int // -1: no gate
	MaxDrops        int // -1: no gate
	MinSnapshotRate float64
}

// NoGates returns Gates with every gate off.
func NoGates() Gates { return Gates{MaxErrors: -1, MaxDrops: -1} }

// GateResult is one gate's verdict.
type GateResult struct {
	Name  string  `json:"name"`
	Limit float64 `json:"limit"`
	Value float64 `json:"value"`
	Pass  bool    `json:"pass"`
}

// Check evaluates the gates against rep, records the verdicts in rep.Gates
// and reports whether all passed.
func (g Gates) Check(rep *Report) bool {
	rep.Gates = nil
	add := func(name string, limit, value float64, pass bool) {
		rep.Gates = append(rep.Gates, GateResult{Name: name, Limit: limit, Value: value, Pass: pass})
	}
	if g.MaxP99Gap > 0 {
		limit := float64(g.MaxP99Gap) / float64(time.Millisecond)
		add("max-p99-gap-ms", limit, rep.SnapshotGapMs.P99, rep.SnapshotGapMs.P99 <= limit)
	}
	if g.MaxP99Latency > 0 {
		limit := float64(g.MaxP99Latency) / float64(time.Millisecond)
		add("max-p99-latency-ms", limit, rep.InputLatencyMs.P99, rep.InputLatencyMs.P99 <= limit)
	}
	if g.MaxErrors >= 0 {
		add("max-errors", float64(g.MaxErrors), float64(rep.Errors), rep.Errors <= uint64(g.MaxErrors))
	}
	if g.MaxDrops >= 0 {
		add("max-drops", float64(g.MaxDrops), float64(rep.Drops), rep.Drops <= uint64(g.MaxDrops))
	}
	if g.MinSnapshotRate > 0 {
		add("min-snapshot-rate", g.MinSnapshotRate, rep.SnapshotsPerPlayerS, rep.SnapshotsPerPlayerS >= g.MinSnapshotRate)
	}
	pass := true
	for _, gr := range rep.Gates {
		pass = pass && gr.Pass
	}
	return pass
}

// WriteSummary writes a readable table of rep.
func (rep *Report) WriteSummary(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	row("bots joined", "%d of %d", rep.Joined, rep.Players)
	row("duration", "%.1f s%s", rep.DurationS, map[bool]string{true: " (interrupted)"}[rep.Interrupted])
	row("snapshots / bot / s", "%.1f", rep.SnapshotsPerPlayerS)
	row("snapshot gap ms", "p50 %.1f  p90 %.1f  p99 %.1f  max %.1f", rep.SnapshotGapMs.P50, rep.SnapshotGapMs.P90, rep.SnapshotGapMs.P99, rep.SnapshotGapMs.Max)
	row("input latency ms", "p50 %.1f  p99 %.1f  max %.1f", rep.InputLatencyMs.P50, rep.InputLatencyMs.P99, rep.InputLatencyMs.Max)
	row("rtt ms", "p50 %.2f  p99 %.2f", rep.RTTMs.P50, rep.RTTMs.P99)
	row("connect ms", "p50 %.1f  p99 %.1f  max %.1f", rep.ConnectMs.P50, rep.ConnectMs.P99, rep.ConnectMs.Max)
	row("bytes / bot / s", "down %.0f  up %.0f", rep.BytesDownPerPlayerS, rep.BytesUpPerPlayerS)
	row("drops / resumes", "%d / %d", rep.Drops, rep.Resumes)
	row("moves / seats lost", "%d / %d", rep.Moves, rep.SeatsLost)
	row("outage ms", "p50 %.1f  p99 %.1f  max %.1f", rep.OutageMs.P50, rep.OutageMs.P99, rep.OutageMs.Max)
	row("game time lost ms", "%.1f", rep.GameTimeLostMs)
	row("errors", "%d (join failures %d)", rep.Errors, rep.JoinFailures)
	if rep.LastError != "" {
		row("last error", "%s", rep.LastError)
	}
	row("bots CPU", "%.2f cores", rep.BotsCPUCores)
	for _, g := range rep.Gates {
		verdict := "PASS"
		if !g.Pass {
			verdict = "FAIL"
		}
		row("gate "+g.Name, "%s (value %.2f, limit %.2f)", verdict, g.Value, g.Limit)
	}
	_ = tw.Flush()
}
