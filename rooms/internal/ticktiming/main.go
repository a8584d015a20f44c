//go:build unix

// Command ticktiming measures how precisely rooms keep their tick schedule:
// it runs N rooms on a real node, each with real loopback clients sending
// inputs at the tick rate, and reports tick-start lateness and whether the
// ticks counted match elapsed time x rate.
//
//	go run ./rooms/internal/ticktiming -rooms 100 -players 2 -duration 10m
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
	"syscall"
	"time"

	"github.com/tickroom/tickroom/netcode"
	"github.com/tickroom/tickroom/netcode/client"
	"github.com/tickroom/tickroom/rooms"
	"github.com/tickroom/tickroom/sim"
)

type report struct {
	Rooms            int     `json:"rooms"`
	PlayersPerRoom   int     `json:"players_per_room"`
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
	ProcessCPUCores  float64 `json:"process_cpu_cores"`
}

func main() {
	roomCount := flag.Int("rooms", 100, "rooms to run")
	players := flag.Int("players", 2, "loopback clients per room, each sending an input per tick")
	duration := flag.Duration("duration", time.Minute, "how long to measure")
	tickRate := flag.Int("tick-rate", 60, "ticks per second")
	flag.Parse()
	if *roomCount < 1 || *players < 0 || *duration <= 0 {
		log.Fatal("ticktiming: -rooms must be positive, -players not negative, -duration positive")
	}

	rcfg := rooms.DefaultConfig()
	rcfg.TickRate = *tickRate
	rcfg.EmptyTimeout = *duration + time.Hour
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
		// Over the room's whole life, ticks run plus slots skipped must
		// equal the slots that have come due: floor(elapsed x rate).
		want := math.Floor(now.Sub(r.Created()).Seconds() * float64(*tickRate))
		rep.MaxTickCountDiff = math.Max(rep.MaxTickCountDiff, math.Abs(float64(ticks+overruns)-want))
		lateness.Merge(subtract(&st.Lateness, baseLate[i]))
		duration0.Merge(&st.Duration)
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	rep.LatenessP50Us = us(lateness.Quantile(0.50))
	rep.LatenessP99Us = us(lateness.Quantile(0.99))
	rep.LatenessP999Us = us(lateness.Quantile(0.999))
	rep.LatenessMaxUs = us(lateness.Max())
	rep.TickDurP99Us = us(duration0.Quantile(0.99))

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

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
