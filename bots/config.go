package bots

import (
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"time"

	"github.com/tickroom/tickroom/netcode/client"
	"github.com/tickroom/tickroom/sim"
)

// Behavior is how bots move.
type Behavior string

// Behaviors.
const (
	Wander Behavior = "wander" // hold a random direction, change it about once a second
	Idle   Behavior = "idle"   // join and send nothing
	Chase  Behavior = "chase"  // head for the nearest other player
)

// Config configures a bot run. Start from DefaultConfig.
type Config struct {
	// URL of the server's WebSocket endpoint, ws://HOST:PORT/ws.
	URL string
	// Players is how many bots to run.
	Players int
	// RoomSize is the seat count of the rooms bots join or create; 0 takes
	// the server's default.
	RoomSize int
	// Mode is the game mode bots join.
	Mode string
	// Duration is how long the run lasts, ramp included.
	Duration time.Duration
	// Ramp is how many bots connect per second.
	Ramp float64
	// Behavior is how bots move.
	Behavior Behavior
	// InputHz is how many inputs each bot sends per second; 0 sends none.
	// A negative value means the server's tick rate.
	InputHz float64
	// PingInterval is how often each bot measures its round trip.
	PingInterval time.Duration
	// Seed makes wander and chase repeatable.
	Seed uint64
	// MaxDialing bounds connection attempts in flight.
	MaxDialing int
	// Pollers is how many client pollers (client.Poller, Linux only) read
	// the bots' connections, bot i on poller i%Pollers; 0 gives each bot a
	// reader goroutine of its own, which costs more CPU per snapshot.
	Pollers int
	// Client configures each bot's connection (timeouts, reconnects). Its
	// Poller and callbacks are the runner's.
	Client client.Config
	// Progress, if set, is called once a second from the reporter goroutine.
	Progress func(Progress)
}

// defaultPollers is one poller per four cores, at least one, on Linux; none
// elsewhere. One poller's goroutine keeps up with thousands of bots, and
// fewer pollers wake less often for more work each.
func defaultPollers() int {
	if runtime.GOOS != "linux" {
		return 0
	}
	return max(1, runtime.GOMAXPROCS(0)/4)
}

// DefaultConfig returns a 60-second run of 100 wandering arena bots.
func DefaultConfig() Config {
	cc := client.DefaultConfig()
	cc.Name = "tickroom-bots"
	cc.EventBuffer = 0 // bots take events through OnEvent
	return Config{
		Players:      100,
		RoomSize:     16,
		Mode:         sim.ArenaMode,
		Duration:     time.Minute,
		Ramp:         200, // a lobby filling, not a thundering herd
		Behavior:     Wander,
		InputHz:      -1, // one input per tick
		PingInterval: time.Second,
		Seed:         1,
		MaxDialing:   64,
		Pollers:      defaultPollers(),
		Client:       cc,
	}
}

func (c *Config) validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	u, err := url.Parse(c.URL)
	check(err == nil && (u.Scheme == "ws" || u.Scheme == "wss") && u.Host != "", "--url %q must be a ws:// or wss:// URL", c.URL)
	check(c.Players > 0, "--players %d must be positive", c.Players)
	check(c.RoomSize >= 0, "--room-size %d must not be negative", c.RoomSize)
	check(c.Mode != "", "--mode must not be empty")
	check(c.Duration > 0, "--duration must be positive")
	check(c.Ramp > 0, "--ramp %v must be positive", c.Ramp)
	check(c.Behavior == Wander || c.Behavior == Idle || c.Behavior == Chase, "--behavior %q must be wander, idle or chase", c.Behavior)
	check(c.InputHz <= 1000, "--input-hz %v must be at most 1000", c.InputHz)
	check(c.PingInterval > 0, "ping interval must be positive")
	check(c.MaxDialing > 0, "MaxDialing must be positive")
	check(c.Pollers >= 0 && c.Pollers <= 64, "--pollers %d must be between 0 and 64", c.Pollers)
	check(c.Pollers == 0 || runtime.GOOS == "linux", "--pollers %d needs Linux; use 0", c.Pollers)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bots: %w", err)
	}
	return nil
}
