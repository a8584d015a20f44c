package bots

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tickroom/tickroom/netcode/client"
)

// ErrUnreachable: the first bot could not connect, so no run was made.
var ErrUnreachable = errors.New("bots: server unreachable")

// Progress is a once-a-second view of a run.
type Progress struct {
	Elapsed       time.Duration
	Connected     int // bots holding a seat
	Target        int
	SnapshotsPerS float64 // over the last second, all bots together
	P99GapMs      float64 // so far
	P99LatencyMs  float64 // so far
	Errors        uint64
}

type metrics struct {
	gap, latency, rtt, connect *histogram
	outage                     *histogram    // from a drop to the seat resumed
	rewindTicks                atomic.Uint64 // the most ticks a bot saw taken back (a failover restored an older checkpoint)
	errors                     atomic.Uint64
	joinFailures               atomic.Uint64
	lastError                  atomic.Pointer[error]
}

type runner struct {
	cfg      Config
	pollers  []*client.Poller
	inputHz  float64
	metrics  metrics
	bots     []atomic.Pointer[bot] // published once joined
	joined   atomic.Int64
	stopping atomic.Bool
	rate     int // the server's ticks per second
}

// Run runs the bots until cfg.Duration passes or ctx ends, and reports what
// they measured. An interrupted run (ctx ended early) still reports, with
// Interrupted set. It returns ErrUnreachable if the first bot cannot connect.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &runner{
		cfg:  cfg,
		bots: make([]atomic.Pointer[bot], cfg.Players),
		metrics: metrics{
			gap: newHistogram(), latency: newHistogram(), rtt: newHistogram(), connect: newHistogram(), outage: newHistogram(),
		},
	}
	for range cfg.Pollers {
		p, err := client.NewPoller()
		if err != nil {
			r.closePollers()
			return nil, fmt.Errorf("bots: %w", err)
		}
		r.pollers = append(r.pollers, p)
	}
	defer r.closePollers() // after the bots' clients, which closeAll closes
	start := time.Now()
	cpu0 := processCPU()
	deadline := start.Add(cfg.Duration)
	runCtx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()

	// The first bot doubles as the probe: an unreachable server or a
	// refused join ends the run before it starts.
	first, err := r.join(runCtx, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrUnreachable, cfg.URL, err)
	}
	r.rate = int(first.c.Welcome().TickRate)
	r.inputHz = cfg.InputHz
	if r.inputHz < 0 {
		r.inputHz = float64(first.c.Welcome().TickRate)
	}
	if cfg.Behavior == Idle {
		r.inputHz = 0
	}

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.ramp(runCtx)
	}()
	drivers := max(1, min(runtime.GOMAXPROCS(0), 4))
	for d := range drivers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.drive(runCtx, d, drivers)
		}()
	}
	if cfg.Progress != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.report(runCtx, start)
		}()
	}
	<-runCtx.Done()
	end := time.Now()
	r.stopping.Store(true)
	wg.Wait()
	rep := r.collect(start, end, processCPU()-cpu0)
	rep.Interrupted = ctx.Err() != nil && end.Before(deadline)
	r.closeAll()
	return rep, nil
}

// join dials bot i and takes a seat; on success the bot is published to the
// drivers.
func (r *runner) join(ctx context.Context, i int) (*bot, error) {
	b := &bot{id: i, run: r, rng: rand.New(rand.NewPCG(r.cfg.Seed, uint64(i)))}
	cc := r.cfg.Client
	cc.OnSnapshot = b.onSnapshot
	cc.OnEvent = b.onEvent
	cc.OnPong = b.onPong
	if len(r.pollers) > 0 {
		cc.Poller = r.pollers[i%len(r.pollers)]
	}
	t0 := time.Now()
	c, err := client.Dial(ctx, r.cfg.URL, cc)
	if err != nil {
		return nil, err
	}
	joined, err := c.Join(ctx, client.JoinOptions{Mode: r.cfg.Mode, MaxPlayers: r.cfg.RoomSize})
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("join: %w", err)
	}
	r.metrics.connect.record(i, time.Since(t0))
	b.c = c
	b.player.Store(joined.Player)
	b.joinedAt = time.Now()
	b.online.Store(true)
	r.bots[i].Store(b)
	r.joined.Add(1)
	return b, nil
}

// ramp connects bots 1..Players-1 at cfg.Ramp per second.
func (r *runner) ramp(ctx context.Context) {
	interval := time.Duration(float64(time.Second) / r.cfg.Ramp)
	sem := make(chan struct{}, r.cfg.MaxDialing)
	var wg sync.WaitGroup
	defer wg.Wait()
	next := time.Now()
	for i := 1; i < r.cfg.Players; i++ {
		next = next.Add(interval)
		if d := time.Until(next); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := r.join(ctx, i); err != nil && ctx.Err() == nil {
				r.metrics.joinFailures.Add(1)
				r.metrics.errors.Add(1)
				r.metrics.lastError.Store(&err)
			}
		}()
	}
}

// phases is how many slots a driver splits each input period into. Bot i
// sends in slot i%phases, so bots' inputs reach the server spread over the
// tick like real players' do, rather than all at one phase of it (which would
// make input latency depend on where that phase falls).
const phases = 4

// drive sends the inputs and pings of bots d, d+n, d+2n... on one schedule.
func (r *runner) drive(ctx context.Context, d, n int) {
	hz := r.inputHz
	if hz <= 0 {
		hz = 10 // still wake to ping
	}
	period := time.Duration(float64(time.Second) / hz)
	pingEvery := max(1, int(r.cfg.PingInterval/period))
	t := time.NewTicker(period / phases)
	defer t.Stop()
	var payloads [16][]byte
	for i := range payloads {
		payloads[i] = []byte{byte(i)}
	}
	for k := 0; ; k++ {
		var now time.Time
		select {
		case <-ctx.Done():
			return
		case now = <-t.C:
		}
		slot, round := k%phases, k/phases
		for i := d + slot*n; i < len(r.bots); i += n * phases {
			b := r.bots[i].Load()
			if b == nil {
				continue
			}
			if r.inputHz > 0 {
				b.step(now, &payloads)
			}
			if (round+i)%pingEvery == 0 {
				_ = b.c.SendPing() // a drop is counted by the client
			}
		}
	}
}

// report calls cfg.Progress once a second.
func (r *runner) report(ctx context.Context, start time.Time) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var lastSnaps uint64
	last := start
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			var snaps uint64
			connected := 0
			for i := range r.bots {
				if b := r.bots[i].Load(); b != nil {
					snaps += b.c.Stats().Snapshots.Load()
					if b.online.Load() {
						connected++
					}
				}
			}
			r.cfg.Progress(Progress{
				Elapsed:       now.Sub(start),
				Connected:     connected,
				Target:        r.cfg.Players,
				SnapshotsPerS: float64(snaps-lastSnaps) / now.Sub(last).Seconds(),
				P99GapMs:      ms(r.metrics.gap.merged(), 99),
				P99LatencyMs:  ms(r.metrics.latency.merged(), 99),
				Errors:        r.metrics.errors.Load(),
			})
			lastSnaps, last = snaps, now
		}
	}
}

// closeAll closes every bot's connection, a few at a time.
func (r *runner) closeAll() {
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := range r.bots {
		b := r.bots[i].Load()
		if b == nil {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_ = b.c.Close()
		}()
	}
	wg.Wait()
}

func (r *runner) closePollers() {
	for _, p := range r.pollers {
		_ = p.Close()
	}
}

// tickRate returns the server's ticks per second, 0 before the first join.
func (r *runner) tickRate() int { return r.rate }
