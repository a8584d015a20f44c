// Command tickroom is the tickroom game server.
//
//	tickroom serve [flags]   run a node
//	tickroom bots [flags]    run headless bots against a node and report
//
// Every flag of a subcommand may also be set by an environment variable: the
// flag's name in upper case with dashes as underscores, prefixed TICKROOM_
// (--tick-rate is TICKROOM_TICK_RATE). A flag on the command line wins.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `tickroom: an authoritative multiplayer game state server.

Usage:
  tickroom serve [flags]   run a server node (tickroom serve -h lists the flags)
  tickroom bots [flags]    load a server with headless bots and report (tickroom bots -h)

`

// run runs a subcommand and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout, stderr)
	case "bots":
		return runBots(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "tickroom: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}
