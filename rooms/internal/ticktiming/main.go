//go:build unix

// Command ticktiming measures how precisely rooms keep their tick schedule:
// it runs N rooms on a real node, each with real loopback clients sending
// inputs at the tick rate, and reports tick-start lateness and whether the
// ticks counted match elapsed time x rate.
//
//	go run ./rooms/internal/ticktiming -rooms 100 -players 2 -duration 10m
//	go run ./rooms/internal/ticktiming -rooms 1000 -players 0 -held 1 -duration 1m
//
// Held players join and drop at once, so their seats are held for the whole
// run: they keep a room awake (an empty room sleeps) without a socket to
// write, which isolates the clock and the rooms' own work from the sockets'.
//
// It reads its CPU time with getrusage, so it builds on Unix only.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/tickroom/tickroom/netcode"
	"github.com/tickroom/tickroom/netcode/client"
	"github.com/tickroom/tickroom/netcode/wire"
	"github.com/tickroom/tickroom/rooms"
	"github.com/tickroom/tickroom/sim"
)

type report struct {
	Rooms            int     `json:"rooms"`
	PlayersPerRoom   int     `json:"players_per_room"`
	HeldPerRoom      int     `json:"held_per_room"`
	TickRate         int     `json:"tick_rate"`
	DurationS        float64 `json:"duration_s"`
	Ticks            uint64  `json:"ticks"`
	Overruns         uint64  `json:"overruns"`
	MaxTickCountDiff float64 `json:"max_tick_count_diff"` // max over rooms of |ticks + overruns - floor(elapsed x rate)|
	LatenessP50Us    float64 `json:"lateness_p50_us"`
	LatenessP99Us    float64 `json:"lateness_p99_us"`
	LatenessP999Us   float64 `json:"lateness_p999_us"`
	LatenessMaxUs    float64 `json:"lateness_max_us"`
	TickDurP99Us     float64 `json:"tick_duration_p99_us"`
	ClockLateP99Us   float64 `json:"clock_lateness_p99_us"` // the node clock's own release lateness
	ClockLateMaxUs   float64 `json:"clock_lateness_max_us"`
	ProcessCPUCores  float64 `json:"process_cpu_cores"`
	Threads          int     `json:"threads"` // OS threads at the end of the run (Linux: /proc/self/status)
}

func main() {
	roomCount := flag.Int("rooms", 100, "rooms to run")
	players := flag.Int("players", 2, "loopback clients per room, each sending an input per tick")
	held := flag.Int("held", 0, "players per room that join and drop at once, their seats held for the run")
	bare := flag.Bool("bare", false, "measure only this machine's wake-up precision: one goroutine sleeping to each tick (a Go timer to 2 ms before it, then nanosleep), nothing else running")
	duration := flag.Duration("duration", time.Minute, "how long to measure")
	tickRate := flag.Int("tick-rate", 60, "ticks per second")
	flag.Parse()
	if *bare {
		bareWakeups(*tickRate, *duration)
		return
	}
	if *roomCount < 1 || *players < 0 || *held < 0 || *players+*held == 0 || *duration <= 0 {
		log.Fatal("ticktiming: -rooms must be positive, -players and -held not negative and not both 0 (an empty room sleeps), -duration positive")
	}

	rcfg := rooms.DefaultConfig()
	rcfg.TickRate = *tickRate
	rcfg.EmptyTimeout = *duration + time.Hour
	rcfg.SeatGrace = *duration + time.Hour
	rcfg.MaxPlayers = max(rcfg.MaxPlayers, *players+*held)
	reg, err := rooms.NewRegistry(rcfg)
	if err != nil {
		log.Fatal(err)
	}
	ncfg := netcode.DefaultServerConfig()
	ncfg.TickRate = *tickRate
	srv, err := netcode.NewServer(ncfg, reg)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	url := fmt.Sprintf("ws://%s/ws", ln.Addr())

	ctx := context.Background()
	var all []*rooms.Room
	var clients []*client.Client
	for range *roomCount {
		r, err := reg.Create(rooms.RoomOptions{Mode: sim.ArenaMode})
		if err != nil {
			log.Fatal(err)
		}
		all = append(all, r)
		for range *players {
			c, err := client.Dial(ctx, url, client.DefaultConfig())
			if err != nil {
				log.Fatal(err)
			}
			if _, err := c.Join(ctx, client.JoinOptions{RoomID: r.ID()}); err != nil {
				log.Fatal(err)
			}
			clients = append(clients, c)
		}
		for range *held {
			if err := joinAndDrop(ctx, url, r); err != nil {
				log.Fatal(err)
			}
		}
	}

	// Measure from a clean slate: the set-up above is not part of it.
	var lateness, duration0 rooms.Histogram
	base := make([]uint64, len(all))
	overruns0 := make([]uint64, len(all))
	for i, r := range all {
		base[i] = r.Stats().Ticks.Load()
		overruns0[i] = r.Stats().Overruns.Load()
	}
	baseLate := make([]*rooms.Histogram, len(all))
	for i, r := range all {
		baseLate[i] = snapshotHistogram(&r.Stats().Lateness)
	}
	cpu0 := cpuTime()
	start := time.Now()

	inputs := time.NewTicker(time.Second / time.Duration(*tickRate))
	moves := [][]byte{{sim.ArenaRight}, {sim.ArenaDown}, {sim.ArenaLeft}, {sim.ArenaUp}}
	for k := 0; time.Since(start) < *duration; k++ {
		<-inputs.C
		for i, c := range clients {
			_, _ = c.SendInput(moves[(k/60+i)%len(moves)])
		}
	}
	inputs.Stop()
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0

	rep := report{
		Rooms:           *roomCount,
		PlayersPerRoom:  *players,
		HeldPerRoom:     *held,
		TickRate:        *tickRate,
		DurationS:       elapsed.Seconds(),
		ProcessCPUCores: cpu.Seconds() / elapsed.Seconds(),
	}
	for i, r := range all {
		st := r.Stats()
		ticks := st.Ticks.Load()
		overruns := st.Overruns.Load()
		now := time.Now() // read with the counters, not before the loop
		rep.Ticks += ticks - base[i]
		rep.Overruns += overruns - overruns0[i]
		// Over the room's whole life, ticks run plus slots skipped (overrun
		// or slept through before its players came) must equal the slots
		// that have come due on its schedule: floor(elapsed x rate).
		want := math.Floor(now.Sub(r.Start()).Seconds() * float64(*tickRate))
		rep.MaxTickCountDiff = math.Max(rep.MaxTickCountDiff, math.Abs(float64(ticks+overruns+st.Slept.Load())-want))
		lateness.Merge(subtract(&st.Lateness, baseLate[i]))
		duration0.Merge(&st.Duration)
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	rep.LatenessP50Us = us(lateness.Quantile(0.50))
	rep.LatenessP99Us = us(lateness.Quantile(0.99))
	rep.LatenessP999Us = us(lateness.Quantile(0.999))
	rep.LatenessMaxUs = us(lateness.Max())
	rep.TickDurP99Us = us(duration0.Quantile(0.99))
	clockLate := &reg.Stats().ClockLateness
	rep.ClockLateP99Us = us(clockLate.Quantile(0.99))
	rep.ClockLateMaxUs = us(clockLate.Max())
	rep.Threads = threads()

	for _, c := range clients {
		_ = c.Close()
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx, "done")
	_ = reg.Close(sctx)

	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(rep)
}

// snapshotHistogram copies h's counts so far.
func snapshotHistogram(h *rooms.Histogram) *rooms.Histogram {
	var c rooms.Histogram
	c.Merge(h)
	return &c
}

// subtract returns h minus an earlier copy of it.
func subtract(h, earlier *rooms.Histogram) *rooms.Histogram {
	return rooms.HistogramDiff(h, earlier)
}

// bareWakeups prints how late one goroutine wakes for each tick of a
// fixed-rate schedule when nothing else runs: the floor under any tick
// scheduler's lateness on this machine (a virtual machine's idle vCPU
// wakes late when its host is busy).
func bareWakeups(rate int, duration time.Duration) {
	period := time.Second / time.Duration(rate)
	var late rooms.Histogram
	start := time.Now()
	timer := time.NewTimer(time.Hour)
	for k := 1; ; k++ {
		due := start.Add(time.Duration(k) * period)
		if due.Sub(start) > duration {
			break
		}
		if d := time.Until(due) - 2*time.Millisecond; d > 0 {
			timer.Reset(d)
			<-timer.C
		}
		if d := time.Until(due); d > 0 {
			sleepPrecisely(d)
		}
		late.Record(time.Since(due))
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(map[string]any{
		"bare": true, "tick_rate": rate, "wakeups": late.Count(),
		"lateness_p50_us": us(late.Quantile(0.5)), "lateness_p99_us": us(late.Quantile(0.99)),
		"lateness_max_us": us(late.Max()),
	})
}

// joinAndDrop seats a player in r over a raw WebSocket and drops the
// connection without a close frame, as a lost network does: the seat is
// held for the seat grace.
func joinAndDrop(ctx context.Context, url string, r *rooms.Room) error {
	before := r.Players()
	nc, _, _, err := ws.Dial(ctx, url)
	if err != nil {
		return fmt.Errorf("ticktiming: dial: %w", err)
	}
	defer nc.Close()
	enc := wire.NewEncoder()
	if err := wsutil.WriteClientBinary(nc, enc.Hello(wire.Hello{Version: wire.Version, Client: "ticktiming"})); err != nil {
		return fmt.Errorf("ticktiming: hello: %w", err)
	}
	if err := wsutil.WriteClientBinary(nc, enc.Join(wire.Join{ReqID: 1, RoomID: r.ID()})); err != nil {
		return fmt.Errorf("ticktiming: join: %w", err)
	}
	for deadline := time.Now().Add(5 * time.Second); r.Players() == before; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("ticktiming: a held player did not join room %s", r.ID())
		}
	}
	return nil
}

// threads reads the process's OS thread count, or -1 where /proc is not.
func threads() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err == nil {
				return n
			}
		}
	}
	return -1
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
