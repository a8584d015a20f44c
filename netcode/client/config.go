package client

import (
	"errors"
	"log/slog"
	"slices"
	"time"
)

// This file holds the client's configuration and its defaults.

// ReconnectConfig sets how a client reconnects after an abnormal drop.
type ReconnectConfig struct {
	// Attempts is how many reconnects are tried before giving up; 0 never
	// reconnects.
	Attempts int
	// Base is the delay before the first attempt; each further attempt
	// doubles it, up to Cap. Each delay is drawn at random from its upper
	// half (jitter), so that clients dropped together do not return together.
	Base time.Duration
	Cap  time.Duration
}

// Config configures a Client.
type Config struct {
	// Name is sent in the Hello, for the server's logs.
	Name string
	// DialTimeout bounds connecting plus the Hello/Welcome handshake.
	DialTimeout time.Duration
	// RequestTimeout bounds requests whose context has no deadline.
	RequestTimeout time.Duration
	// WriteTimeout bounds one socket write.
	WriteTimeout time.Duration
	// MaxMessageSize bounds a server message, in bytes.
	MaxMessageSize int
	// Reconnect sets reconnection after abnormal drops.
	Reconnect ReconnectConfig
	// Seeds are further URLs of the same cluster as the one given to Dial
	// (ws://host:port/ws), where the client reconnects when its own node
	// is gone. The client remembers its current host: the URL it is
	// connected to, which after a redirected Join is the node that seated
	// it. After a drop it dials the current host first; each time a dial
	// fails, the next attempt (after the backoff) dials the next URL of
	// the URL given to Dial and then the seeds, in turn, and round again.
	// Any node of the cluster redirects the resume to the seat's host.
	// Nil: only the current host and the URL given to Dial.
	Seeds []string
	// EventBuffer is the capacity of the Events channel; events that do not
	// fit are dropped and counted in Stats.EventsDropped.
	EventBuffer int
	// OnSnapshot, if set, is called after each snapshot is applied, from
	// the goroutine that reads the connection: the client's, or its
	// Poller's, which reads for other clients too. It must not block or call
	// the client's request methods or Close; s and its Entities are valid
	// only during the call.
	OnSnapshot func(s *Snapshot)
	// OnEvent, if set, receives events instead of the Events channel, from
	// the goroutine that reads the connection (the client's or its
	// Poller's) or, for drops and resumes, the client's. It must not block
	// or call the client's request methods or Close.
	OnEvent func(e Event)
	// OnPong, if set, is called with the round trip of each Pong answering
	// SendPing, from the goroutine that reads the connection.
	OnPong func(rtt time.Duration)
	// Logger receives connection lifecycle logs; nil discards them.
	Logger *slog.Logger
	// Poller, if set, reads the client's connection instead of the
	// client's goroutine (which then only waits), and calls OnSnapshot,
	// OnEvent and OnPong from its own goroutine. One poller serves many
	// clients, sparing a goroutine wake-up and an extra read per message:
	// it is for processes that run thousands of clients, like the bots. A
	// TLS (wss://) connection is read by the client's goroutine regardless.
	Poller *Poller
}

// DefaultConfig returns a configuration suited to a game client.
func DefaultConfig() Config {
	return Config{
		Name:           "tickroom-go",
		DialTimeout:    5 * time.Second,
		RequestTimeout: 5 * time.Second,
		WriteTimeout:   5 * time.Second,
		MaxMessageSize: 1 << 20, // a full snapshot of a large room
		Reconnect: ReconnectConfig{
			Attempts: 10,
			Base:     100 * time.Millisecond,
			Cap:      5 * time.Second, // ten attempts span about the server's seat grace and then some
		},
		EventBuffer: 256,
	}
}

func (c *Config) validate() error {
	switch {
	case c.DialTimeout <= 0 || c.RequestTimeout <= 0 || c.WriteTimeout <= 0:
		return errors.New("client: DialTimeout, RequestTimeout and WriteTimeout must be positive")
	case c.MaxMessageSize < 64:
		return errors.New("client: MaxMessageSize must be at least 64")
	case c.Reconnect.Attempts < 0:
		return errors.New("client: Reconnect.Attempts must not be negative")
	case c.Reconnect.Attempts > 0 && (c.Reconnect.Base <= 0 || c.Reconnect.Cap < c.Reconnect.Base):
		return errors.New("client: Reconnect.Base must be positive and Cap at least Base")
	case c.EventBuffer < 0:
		return errors.New("client: EventBuffer must not be negative")
	case slices.Contains(c.Seeds, ""):
		return errors.New("client: Seeds must not hold an empty URL")
	}
	return nil
}
