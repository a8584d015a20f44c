package admin

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// Config configures the admin listener. Start from DefaultConfig.
type Config struct {
	// Token is the bearer token every route but health and the dashboard's
	// static files requires. Empty means no token: then Listen refuses any
	// address but loopback.
	Token string
	// MaxBodyBytes bounds a request body; larger ones get 413.
	MaxBodyBytes int64
	// MaxBroadcastBytes bounds a broadcast's MessagePack payload.
	MaxBroadcastBytes int
	// MaxStreams bounds the event streams (dashboard feeds) open at once.
	MaxStreams int
	// SampleInterval is how often the node feed samples the node's counters.
	SampleInterval time.Duration
	// History is how much of the node feed a new dashboard gets at once.
	History time.Duration
	// WatchRate is the largest frame rate of a room's watch feed, per second.
	WatchRate int
	// MaxSteps bounds one step request.
	MaxSteps int
	// StreamWriteTimeout drops an event stream whose client does not read.
	StreamWriteTimeout time.Duration
	// Logger receives the admin listener's logs; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns the configuration tickroom serve starts from.
func DefaultConfig() Config {
	return Config{
		MaxBodyBytes:       64 << 10,        // room metadata and broadcasts are small
		MaxBroadcastBytes:  1 << 10,         // a chat line, like a room message
		MaxStreams:         32,              // a few operators, each with a tab or two
		SampleInterval:     time.Second,     // a live chart's resolution
		History:            5 * time.Minute, // "the last minutes" a new dashboard shows at once
		WatchRate:          30,              // smooth enough to watch, half the tick rate
		MaxSteps:           600,             // ten seconds at 60 Hz: a step request returns in reasonable time
		StreamWriteTimeout: 5 * time.Second, // a dashboard that stops reading is gone
	}
}

func (c *Config) validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.MaxBodyBytes > 0, "MaxBodyBytes must be positive")
	check(c.MaxBroadcastBytes > 0, "MaxBroadcastBytes must be positive")
	check(c.MaxStreams > 0, "MaxStreams must be positive")
	check(c.SampleInterval > 0, "SampleInterval must be positive")
	check(c.History >= c.SampleInterval, "History %v must be at least SampleInterval %v", c.History, c.SampleInterval)
	check(c.WatchRate > 0 && c.WatchRate <= 1000, "WatchRate %d must be in 1..1000", c.WatchRate)
	check(c.MaxSteps > 0, "MaxSteps must be positive")
	check(c.StreamWriteTimeout > 0, "StreamWriteTimeout must be positive")
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("admin: invalid config: %w", err)
	}
	return nil
}

// ErrInsecureListen is returned by Listen for an address that is not
// loopback when no token is configured.
var ErrInsecureListen = errors.New("admin: refusing to listen beyond loopback without a token")

// Listen opens the admin listener on addr. Without a token it accepts only
// loopback addresses (127.0.0.0/8, ::1, localhost), since anyone who reaches
// the listener could then close rooms and kick players.
func Listen(addr, token string) (net.Listener, error) {
	if token == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("admin: listen %q: %w", addr, err)
		}
		if !isLoopback(host) {
			return nil, fmt.Errorf("%w: %q (set a token, or listen on 127.0.0.1)", ErrInsecureListen, addr)
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin: listen: %w", err)
	}
	// "localhost" is whatever the resolver says: check what was bound.
	if tcp, ok := ln.Addr().(*net.TCPAddr); token == "" && (!ok || !tcp.IP.IsLoopback()) {
		ln.Close()
		return nil, fmt.Errorf("%w: %q resolved to %v", ErrInsecureListen, addr, ln.Addr())
	}
	return ln, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
