package cluster

import (
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tickroom/tickroom/cluster/internal/faultnet"
	"github.com/tickroom/tickroom/rooms"
)

// syntheticRooms stands in for a registry: rooms whose seat counts a
// churn loop changes, as players joining and leaving would.
type syntheticRooms struct {
	mu    sync.Mutex
	rooms []roomInfo
}

func (s *syntheticRooms) list() []roomInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]roomInfo(nil), s.rooms...)
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkDirectory10Nodes measures the directory at 10 nodes holding
// 1,000 rooms under join/leave churn: how long a host's change takes to
// reach the other nodes, and the gossip bytes per node per second,
// memberlist's own traffic included. Run it once:
//
//	go test -run XXX -bench Directory10Nodes -benchtime 1x ./cluster/
//
// TICKROOM_DIRBENCH_CHURN sets seat changes per second cluster-wide
// (default 100: every room changes about every 10 s), _SECONDS the run.
func BenchmarkDirectory10Nodes(b *testing.B) {
	const nodes, roomsPerNode = 10, 100
	churn := envInt("TICKROOM_DIRBENCH_CHURN", 100)
	seconds := envInt("TICKROOM_DIRBENCH_SECONDS", 20)
	for range b.N {
		fn := faultnet.NewNetwork()
		srcs := make([]*syntheticRooms, nodes)
		ns := make([]*Node, nodes)
		var seed string
		for i := range nodes {
			src := &syntheticRooms{}
			for j := range roomsPerNode {
				src.rooms = append(src.rooms, roomInfo{id: fmt.Sprintf("%02d%010x", i, j), mode: "arena", maxPlayers: 16, players: j % 16})
			}
			srcs[i] = src
			tr, err := fn.NewTransport("127.0.0.1", 0, log.New(io.Discard, "", 0))
			if err != nil {
				b.Fatal(err)
			}
			cfg := DefaultConfig()
			cfg.NodeName = fmt.Sprintf("n%d", i+1)
			cfg.GossipListen, cfg.Advertise = "127.0.0.1:0", tr.Addr()
			cfg.GameURL = "ws://127.0.0.1:1/ws"
			if i > 0 {
				cfg.Join = []string{seed}
			} else {
				seed = tr.Addr()
			}
			n, err := newNode(cfg, newBenchRegistry(b), options{transport: tr, listRooms: src.list})
			if err != nil {
				b.Fatal(err)
			}
			n.SetReady(true)
			ns[i] = n
			defer n.Close(100 * time.Millisecond)
		}
		converged := func() bool {
			for _, n := range ns {
				if live, _ := n.dir.size(); live != nodes*roomsPerNode || n.ml.NumMembers() != nodes {
					return false
				}
			}
			return true
		}
		deadline := time.Now().Add(90 * time.Second)
		for !converged() {
			if time.Now().After(deadline) {
				for _, n := range ns {
					live, _ := n.dir.size()
					b.Logf("%s: %d entries, %d members, queue %d relays %d", n.cfg.NodeName, live, n.ml.NumMembers(), n.queue.NumQueued(), n.relays.NumQueued())
				}
				b.Fatal("the directory never held every room on every node")
			}
			time.Sleep(50 * time.Millisecond)
		}
		for _, n := range ns {
			n.dir.mu.Lock()
			n.dir.lag = lagRing{}
			n.dir.mu.Unlock()
		}
		sent0, recv0 := gossipBytes(ns)

		b.ResetTimer()
		start := time.Now()
		rng := rand.New(rand.NewPCG(1, 2))
		every := time.Second / time.Duration(churn)
		changes := 0
		for next := start; time.Since(start) < time.Duration(seconds)*time.Second; next = next.Add(every) {
			time.Sleep(time.Until(next))
			src := srcs[rng.IntN(nodes)]
			src.mu.Lock()
			r := &src.rooms[rng.IntN(roomsPerNode)]
			switch {
			case r.players == 0:
				r.players++
			case r.players == r.maxPlayers || rng.IntN(2) == 0:
				r.players--
			default:
				r.players++
			}
			src.mu.Unlock()
			changes++
		}
		elapsed := time.Since(start)
		sent1, recv1 := gossipBytes(ns)
		b.StopTimer()

		// After the churn, every node must hold every room as its host has it.
		want := make(map[string]int)
		for _, s := range srcs {
			for _, r := range s.list() {
				want[r.id] = r.players
			}
		}
		// Differences left 1 s after the churn are changes the relayed
		// deltas missed; the full-directory repair must mend them within
		// its period (every 6th push/pull, a minute).
		differing := func() int {
			wrong := 0
			for _, n := range ns {
				for id, p := range want {
					if e, ok := n.dir.get(id); !ok || e.Players != p {
						wrong++
					}
				}
			}
			return wrong
		}
		time.Sleep(time.Second)
		missed := differing()
		deadline = time.Now().Add(75 * time.Second)
		for differing() > 0 {
			if time.Now().After(deadline) {
				b.Fatalf("%d entries still differ from their hosts 75 s after the churn", differing())
			}
			time.Sleep(100 * time.Millisecond)
		}
		b.ReportMetric(float64(missed), "missed-after-1s")
		var all []time.Duration
		for _, n := range ns {
			n.dir.mu.RLock()
			k := min(n.dir.lag.n, len(n.dir.lag.samples))
			all = append(all, n.dir.lag.samples[:k]...)
			n.dir.mu.RUnlock()
		}
		lag := summarize(all)
		secs := elapsed.Seconds()
		b.ReportMetric(float64(changes)/secs, "changes/s")
		b.ReportMetric(float64(sent1-sent0)/secs/nodes/1024, "KB/s/node-sent")
		b.ReportMetric(float64(recv1-recv0)/secs/nodes/1024, "KB/s/node-recv")
		b.ReportMetric(ms(lag.P50), "lag-p50-ms")
		b.ReportMetric(ms(lag.P99), "lag-p99-ms")
		b.ReportMetric(ms(lag.Max), "lag-max-ms")
	}
}

func gossipBytes(ns []*Node) (sent, recv uint64) {
	for _, n := range ns {
		sent += n.stats.BytesOut.Load()
		recv += n.stats.BytesIn.Load()
	}
	return sent, recv
}

func summarize(s []time.Duration) Lag {
	if len(s) == 0 {
		return Lag{}
	}
	sorted := append([]time.Duration(nil), s...)
	slicesSort(sorted)
	n := len(sorted)
	return Lag{Samples: n, P50: sorted[n/2], P99: sorted[n*99/100], Max: sorted[n-1]}
}

func slicesSort(s []time.Duration) { slices.Sort(s) }

func newBenchRegistry(b *testing.B) *rooms.Registry {
	reg, err := rooms.NewRegistry(rooms.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = reg.Close(b.Context()) })
	return reg
}
