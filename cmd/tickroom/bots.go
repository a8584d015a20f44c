package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/tickroom/tickroom/bots"
)

// Exit codes of tickroom bots.
const (
	exitOK          = 0
	exitFailed      = 1   // the run could not be made (unreachable server, unwritable report)
	exitUsage       = 2   // bad flags
	exitGateFailed  = 3   // the run was made and broke an SLO gate
	exitInterrupted = 130 // Ctrl-C: the summary of what was measured is still printed
)

type botsFlags struct {
	cfg        bots.Config
	gates      bots.Gates
	json       string
	cpuProfile string
}

func parseBotsFlags(args []string, stderr io.Writer) (*botsFlags, error) {
	f := &botsFlags{cfg: bots.DefaultConfig(), gates: bots.NoGates()}
	c := &f.cfg
	fs := flag.NewFlagSet("bots", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = flagUsage(fs, "tickroom bots --url ws://HOST:PORT/ws --players N [flags]")

	fs.StringVar(&c.URL, "url", "ws://127.0.0.1:8080/ws", "the server's WebSocket endpoint")
	fs.Func("seeds", "more game endpoints of the cluster, comma-separated, that bots reconnect through when the node they are on is gone", func(v string) error {
		for _, u := range strings.Split(v, ",") {
			if u = strings.TrimSpace(u); u != "" {
				c.Client.Seeds = append(c.Client.Seeds, u)
			}
		}
		return nil
	})
	fs.IntVar(&c.Players, "players", c.Players, "how many bots to run")
	fs.IntVar(&c.RoomSize, "room-size", c.RoomSize, "seats per room the bots join or create (0: the server's default)")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "how long the run lasts, ramp included")
	fs.Float64Var(&c.Ramp, "ramp", c.Ramp, "bots connecting per second")
	behavior := fs.String("behavior", string(c.Behavior), "how bots move: wander, idle or chase")
	fs.Float64Var(&c.InputHz, "input-hz", c.InputHz, "inputs per bot per second; 0 sends none; negative: the server's tick rate")
	fs.Uint64Var(&c.Seed, "seed", c.Seed, "seed for the bots' movement, for repeatable runs")
	fs.StringVar(&c.Mode, "mode", c.Mode, "game mode to join-or-create")
	fs.IntVar(&c.Pollers, "pollers", c.Pollers, "how many epoll readers serve the bots' connections (Linux); 0: each bot reads its own socket")
	fs.StringVar(&f.json, "json", "", "write the report as JSON to this file")
	fs.StringVar(&f.cpuProfile, "cpu-profile", "", "write a pprof CPU profile of the bots to this file")
	fs.DurationVar(&f.gates.MaxP99Gap, "max-p99-gap", 0, "SLO gate: fail if the p99 snapshot gap exceeds this (0: off)")
	fs.DurationVar(&f.gates.MaxP99Latency, "max-p99-latency", 0, "SLO gate: fail if the p99 input-to-applied latency exceeds this (0: off)")
	fs.IntVar(&f.gates.MaxErrors, "max-errors", -1, "SLO gate: fail if errors exceed this (-1: off)")
	fs.IntVar(&f.gates.MaxDrops, "max-drops", -1, "SLO gate: fail if connection drops exceed this (-1: off)")
	fs.Float64Var(&f.gates.MinSnapshotRate, "min-snapshot-rate", 0, "SLO gate: fail if snapshots per bot per second fall below this (0: off)")

	if err := parseArgs(fs, args); err != nil {
		return nil, err
	}
	c.Behavior = bots.Behavior(*behavior)
	return f, nil
}

// runBots runs a bot load and returns the exit code.
func runBots(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, err := parseBotsFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "tickroom bots: %v\n", err)
		return exitUsage
	}
	f.cfg.Progress = progressPrinter(stderr)
	stop, err := startCPUProfile(f.cpuProfile)
	if err != nil {
		fmt.Fprintf(stderr, "tickroom bots: %v\n", err)
		return exitFailed
	}
	rep, err := bots.Run(ctx, f.cfg)
	stop()
	if err != nil {
		fmt.Fprintf(stderr, "\ntickroom bots: %v\n", err)
		if errors.Is(err, bots.ErrUnreachable) {
			return exitFailed
		}
		return exitUsage // configuration errors
	}
	pass := f.gates.Check(rep)
	fmt.Fprintln(stderr)
	rep.WriteSummary(stdout)
	if f.json != "" {
		if err := writeJSON(f.json, rep); err != nil {
			fmt.Fprintf(stderr, "tickroom bots: %v\n", err)
			return exitFailed
		}
	}
	switch {
	case rep.Interrupted:
		return exitInterrupted
	case !pass:
		fmt.Fprintln(stderr, "tickroom bots: an SLO gate failed")
		return exitGateFailed
	}
	return exitOK
}

func writeJSON(path string, rep *bots.Report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// progressPrinter returns a Progress callback: on a terminal, one status line
// rewritten in place; otherwise a plain line each time.
func progressPrinter(w io.Writer) func(bots.Progress) {
	tty := isTerminal(w)
	return func(p bots.Progress) {
		line := fmt.Sprintf("%5.0fs  connected %d/%d  snapshots/s %.0f  p99 gap %.1f ms  p99 latency %.1f ms  errors %d",
			p.Elapsed.Round(time.Second).Seconds(), p.Connected, p.Target, p.SnapshotsPerS, p.P99GapMs, p.P99LatencyMs, p.Errors)
		if tty {
			fmt.Fprintf(w, "\r%s\x1b[K", line)
			return
		}
		fmt.Fprintln(w, line)
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
