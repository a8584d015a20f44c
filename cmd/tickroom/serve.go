package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/pprof"
	"time"

	"github.com/tickroom/tickroom/cluster"
	"github.com/tickroom/tickroom/netcode"
	"github.com/tickroom/tickroom/rooms"
	"github.com/tickroom/tickroom/rooms/admin"
)

// serveConfig is everything serve's flags set.
type serveConfig struct {
	listen          string
	adminListen     string
	cpuProfile      string
	logLevel        slog.Level
	logFormat       string
	shutdownTimeout time.Duration
	net             netcode.ServerConfig
	rooms           rooms.Config
	admin           admin.Config
	cluster         *cluster.Config // nil: the node runs alone
	drainTimeout    time.Duration
}

func parseServeFlags(args []string, stderr io.Writer) (*serveConfig, error) {
	cfg := &serveConfig{net: netcode.DefaultServerConfig(), rooms: rooms.DefaultConfig(), admin: admin.DefaultConfig()}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = flagUsage(fs, "tickroom serve [flags]")

	fs.StringVar(&cfg.listen, "listen", ":8080", "address of the game WebSocket endpoint, ws://ADDR/ws")
	fs.StringVar(&cfg.adminListen, "admin-listen", "127.0.0.1:8081", "address of the admin API, metrics and dashboard, http://ADDR/; empty disables it")
	fs.StringVar(&cfg.admin.Token, "admin-token", "", "bearer token for the admin listener; without one it binds only to loopback (prefer the environment variable: flags show in ps)")
	fs.TextVar(&cfg.logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn or error")
	fs.StringVar(&cfg.logFormat, "log-format", "text", "log format: text or json")
	fs.DurationVar(&cfg.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long a graceful shutdown may take")
	fs.StringVar(&cfg.cpuProfile, "cpu-profile", "", "write a pprof CPU profile of the whole run to this file (for benchmarks)")

	r := &cfg.rooms
	fs.IntVar(&r.TickRate, "tick-rate", r.TickRate, "room ticks (and snapshots) per second")
	fs.IntVar(&r.MaxPlayers, "max-players", r.MaxPlayers, "seats per room created by join-or-create")
	fs.IntVar(&r.MaxRoomSize, "max-room-size", r.MaxRoomSize, "largest room a client may ask join-or-create for")
	fs.IntVar(&r.MaxRooms, "max-rooms", r.MaxRooms, "most rooms this node runs at once")
	fs.DurationVar(&r.SeatGrace, "seat-grace", r.SeatGrace, "how long a dropped player's seat is held for a resume")
	fs.DurationVar(&r.EmptyTimeout, "empty-timeout", r.EmptyTimeout, "how long an empty room lives")
	fs.IntVar(&r.CheckpointEvery, "checkpoint-every", r.CheckpointEvery, "ticks between a room's checkpoints to its witnesses in a cluster (the most game time a failover loses); 0: none")
	fs.IntVar(&r.InputQueue, "input-queue", r.InputQueue, "inputs a player may have waiting for the next tick")
	fs.IntVar(&r.Workers, "workers", r.Workers, "goroutines that run the rooms' ticks, released by the node's one clock")

	n := &cfg.net
	fs.IntVar(&n.MaxMessageSize, "max-message-size", n.MaxMessageSize, "largest client message in bytes; larger ones close the connection with 1009")
	fs.DurationVar(&n.PingInterval, "ping-interval", n.PingInterval, "how often the server pings each client")
	fs.DurationVar(&n.HeartbeatTimeout, "heartbeat-timeout", n.HeartbeatTimeout, "drop a client silent for this long")
	fs.DurationVar(&n.WriteTimeout, "write-timeout", n.WriteTimeout, "drop a client whose socket does not drain for this long")
	fs.IntVar(&n.WriteBuffer, "write-buffer", n.WriteBuffer, "kernel send buffer per connection in bytes; 0 keeps the OS default")
	fs.IntVar(&n.Pollers, "pollers", n.Pollers, "how many pollers read joined connections on epoll readiness (Linux); 0: one blocking reader per connection")
	fs.TextVar(&n.ReadMode, "read-mode", n.ReadMode, "when pollers read joined connections: tick (once per node tick, just before it) or arrival (as data comes)")
	fs.Float64Var(&n.InputRate, "input-rate", n.InputRate, "inputs per second a client may send; the excess is dropped")
	fs.IntVar(&n.InputBurst, "input-burst", n.InputBurst, "inputs a client may send in a burst above the rate")

	cf := registerClusterFlags(fs)

	if err := parseArgs(fs, args); err != nil {
		return nil, err
	}
	var err error
	if cfg.cluster, err = cf.config(); err != nil {
		return nil, err
	}
	cfg.drainTimeout = cf.drainTimeout
	if cfg.logFormat != "text" && cfg.logFormat != "json" {
		return nil, fmt.Errorf("--log-format must be text or json, not %q", cfg.logFormat)
	}
	n.TickRate = r.TickRate
	return cfg, nil
}

func newLogger(cfg *serveConfig, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.logLevel}
	if cfg.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// serve runs a node until ctx ends, then shuts it down gracefully.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseServeFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "tickroom serve: %v\n", err)
		return 2
	}
	log := newLogger(cfg, stderr)
	stop, err := startCPUProfile(cfg.cpuProfile)
	if err != nil {
		fmt.Fprintf(stderr, "tickroom serve: %v\n", err)
		return 1
	}
	defer stop()
	if err := runNode(ctx, cfg, log); err != nil {
		log.Error("server failed", "err", err)
		return 1
	}
	return 0
}

func runNode(ctx context.Context, cfg *serveConfig, log *slog.Logger) error {
	cfg.rooms.Logger = log.With("component", "rooms")
	reg, err := rooms.NewRegistry(cfg.rooms)
	if err != nil {
		return err
	}
	cfg.net.Logger = log.With("component", "netcode")
	srv, err := netcode.NewServer(cfg.net, reg)
	if err != nil {
		return err
	}
	// Both listeners are bound first: a cluster member gossips the
	// addresses they actually got (a port of 0 included).
	var aln net.Listener
	if cfg.adminListen != "" {
		if aln, err = admin.Listen(cfg.adminListen, cfg.admin.Token); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		if aln != nil {
			_ = aln.Close()
		}
		return fmt.Errorf("listen: %w", err)
	}
	closeListeners := func() {
		_ = ln.Close()
		if aln != nil {
			_ = aln.Close()
		}
	}
	var node *cluster.Node
	if cfg.cluster != nil {
		cc := *cfg.cluster
		cc.Logger = log.With("component", "cluster")
		if err := cc.FillURLs(ln.Addr().String(), addrOf(aln), cfg.net.Path); err != nil {
			closeListeners()
			return err
		}
		if node, err = cluster.New(cc, reg); err != nil {
			closeListeners()
			return err
		}
		reg.SetRouter(node)
		defer func() {
			if err := node.Close(time.Second); err != nil {
				log.Warn("leaving the cluster", "err", err)
			}
		}()
	}
	// The admin listener serves first, so that /healthz answers while the
	// node starts and /readyz says it is not ready yet.
	var adm *admin.Server
	adminErr := make(chan error, 1)
	if aln != nil {
		cfg.admin.Logger = log.With("component", "admin")
		if adm, err = admin.New(cfg.admin, reg, srv); err != nil {
			closeListeners()
			return err
		}
		if node != nil {
			adm.SetCluster(node)
		}
		log.Info("admin listening", "url", fmt.Sprintf("http://%s/", aln.Addr()), "addr", aln.Addr().String(), "token", cfg.admin.Token != "")
		go func() { adminErr <- adm.Serve(aln) }()
	}
	log.Info("tickroom serving",
		"url", fmt.Sprintf("ws://%s%s", ln.Addr(), cfg.net.Path),
		"addr", ln.Addr().String(),
		"tick_rate", cfg.rooms.TickRate,
		"modes", reg.Modes())

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	if adm != nil {
		adm.SetReady(true)
	}
	if node != nil {
		node.SetReady(true)
	}

	var drainReq <-chan struct{}
	if node != nil {
		drainReq = node.DrainRequested()
	}
	var failed error
	drain := false
	select {
	case err := <-serveErr:
		failed = fmt.Errorf("serve: %w", err)
		serveErr <- err // for the shutdown below
	case err := <-adminErr:
		failed = fmt.Errorf("admin: %w", err)
	case <-ctx.Done():
		drain = true
	case <-drainReq:
		drain = true
		log.Info("drain requested by an operator")
	}
	if drain && node != nil && node.Replicating() {
		// Hand the rooms to other nodes first: readiness fails and
		// placement skips this node at once; players follow their rooms.
		if adm != nil {
			adm.SetReady(false)
		}
		log.Info("draining: handing rooms to other nodes", "rooms", len(reg.List()), "timeout", cfg.drainTimeout)
		dctx, dcancel := context.WithTimeout(context.Background(), cfg.drainTimeout)
		start := time.Now()
		if err := node.Drain(dctx); err != nil {
			log.Warn("drain did not hand every room off; the rest close with the node (their witnesses fail them over)", "err", err)
		} else {
			log.Info("drained: no rooms left", "took", time.Since(start))
		}
		dcancel()
	}
	log.Info("shutting down", "timeout", cfg.shutdownTimeout)
	if adm != nil {
		adm.SetReady(false)
	}
	if node != nil {
		node.SetReady(false) // placement stops sending players here
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	// Players first, with a close frame they can act on (a client
	// reconnects after 1001), then the rooms, then the admin listener, so
	// that operators see the node until the end.
	netErr := srv.Shutdown(sctx, "server shutting down")
	roomsErr := reg.Close(sctx)
	if err := <-serveErr; !errors.Is(err, netcode.ErrServerClosed) && failed == nil {
		log.Warn("accept loop ended with an error", "err", err)
	}
	var adminShutdownErr error
	if adm != nil {
		adminShutdownErr = adm.Shutdown(sctx)
	}
	if err := errors.Join(failed, netErr, roomsErr, adminShutdownErr); err != nil {
		return err
	}
	log.Info("shut down cleanly")
	return nil
}

// addrOf returns ln's address, or "" for no listener.
func addrOf(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}

// startCPUProfile profiles the process's CPU into path until stop is called;
// an empty path profiles nothing.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}
