package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"time"
)

// Config configures a Node. Start from DefaultConfig.
type Config struct {
	// NodeName is the node's human name, shown to operators. The gossip
	// name adds a random suffix per process start.
	NodeName string
	// GossipListen is the host:port the gossip UDP and TCP sockets bind.
	GossipListen string
	// Advertise is the host:port other nodes reach this node's gossip at;
	// empty uses GossipListen (which then must not be a wildcard address).
	Advertise string
	// Join lists seeds: host:port or DNS names (one name may resolve to
	// many nodes, as a Kubernetes headless Service does). Empty: this node
	// starts a cluster of its own and waits for others to join it.
	Join []string
	// GameURL is this node's public game endpoint (ws:// or wss://), the
	// address redirected clients dial.
	GameURL string
	// AdminURL is this node's admin listener, shown to operators; may be
	// empty.
	AdminURL string
	// SecretKey encrypts and authenticates gossip (AES-GCM; 16, 24 or 32
	// bytes). Nodes without the key cannot join or read the gossip. Empty
	// gossips in the clear, for a trusted network only.
	SecretKey []byte
	// Relay relays the connections of players whose room is on another
	// node through this node, instead of redirecting them there: for
	// clients that can reach only one load-balanced address.
	Relay bool
	// Label separates clusters that share a network: a node only talks to
	// nodes with the same label.
	Label string

	// Membership timing (memberlist). The defaults are tuned for games:
	// a killed node is known dead within about 3 s, while a node that
	// stalls for a second is not declared dead (README: Cluster).
	ProbeInterval    time.Duration
	ProbeTimeout     time.Duration
	SuspicionMult    int
	SuspicionMaxMult int
	GossipInterval   time.Duration
	PushPullInterval time.Duration

	// JoinRetry is the first wait between failed joins; it doubles up to
	// RejoinInterval.
	JoinRetry time.Duration
	// RejoinInterval is how often a joined node joins its seeds again, so
	// that a cluster split by a partition heals.
	RejoinInterval time.Duration
	// ScanInterval is how often the host publishes its rooms' changes.
	ScanInterval time.Duration
	// MetaInterval bounds how often the node's gossiped metadata changes
	// for load alone (draining and readiness go out at once).
	MetaInterval time.Duration
	// TombstoneTTL is how long a closed room's tombstone is kept.
	TombstoneTTL time.Duration
	// OrphanGrace is how long an entry whose host is not an alive member
	// is kept: entries can arrive before their host's membership does.
	OrphanGrace time.Duration
	// Candidates is how many nodes, by rendezvous hash, placement weighs.
	Candidates int
	// LoadCap refuses to place on a node whose load is above LoadCap times
	// the mean, while another candidate is below it.
	LoadCap float64

	// Replicate checkpoints this node's rooms to witnesses, fences them
	// with leases, takes over the rooms of dead hosts and hands rooms off
	// on drain (FAILOVER.md). It needs SecretKey: checkpoints carry
	// reconnect tokens, which must not cross the network in the clear.
	// Without a key a node runs as if Replicate were false, and says so.
	Replicate bool
	// Witnesses is how many other nodes keep a copy of each room and vote
	// on who runs it. Two makes a group of three, which survives one loss.
	Witnesses int
	// RenewInterval is how often a node renews its lease with each peer.
	RenewInterval time.Duration
	// LeaseDuration is how long a renewal holds. A host whose leases lapse
	// stops its rooms; a witness votes for a takeover only after it.
	LeaseDuration time.Duration
	// LeaseMargin is how much earlier than its witnesses the host counts
	// its lease as gone: the room stops before anyone may take it.
	LeaseMargin time.Duration
	// ClaimTimeout bounds the wait for one voter's answer.
	ClaimTimeout time.Duration
	// HandOffTimeout bounds the wait for a target to take a room.
	HandOffTimeout time.Duration
	// FenceWait is how long a fenced room waits to learn its new host
	// before its players are sent to reconnect wherever they can.
	FenceWait time.Duration
	// DrainConcurrency is how many rooms a drain hands off at once.
	DrainConcurrency int
	// MaxWitnessBytes bounds the checkpoint bytes a node keeps for others.
	MaxWitnessBytes int

	// Logger receives membership logs; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns the configuration tickroom serve starts from.
func DefaultConfig() Config {
	return Config{
		// 400 ms probes with a 150 ms ack timeout and a fixed suspicion of
		// 4 probe intervals (1.6 s; max-mult 1): a killed node was dead on
		// every node after 2.2-2.4 s, and a node stopped for 1 s was never
		// declared dead (cluster/scripts/detection.sh; README, BENCHMARKS.md).
		ProbeInterval:    400 * time.Millisecond,
		ProbeTimeout:     150 * time.Millisecond, // under 0.4 x ProbeInterval: the TCP fallback needs the rest
		SuspicionMult:    4,
		SuspicionMaxMult: 1,
		GossipInterval:   100 * time.Millisecond, // directory deltas reach 10 nodes in ~0.3 s
		PushPullInterval: 10 * time.Second,       // membership repair (a missed metadata update); the full directory rides on every 6th
		JoinRetry:        time.Second,
		RejoinInterval:   30 * time.Second, // heals a split cluster within half a minute
		ScanInterval:     100 * time.Millisecond,
		MetaInterval:     10 * time.Second, // load alone: placement weighs the directory's fresher figures; each change costs every node
		TombstoneTTL:     time.Minute,      // far longer than any gossip path
		OrphanGrace:      10 * time.Second,
		Candidates:       3,    // power of d choices: enough to avoid herding
		LoadCap:          1.25, // spills before one node runs far above the rest
		Replicate:        true,
		Witnesses:        2, // a group of three: any one node may die
		// Renewals every 250 ms for a lease of 1.5 s: six chances before it
		// lapses, so a lost packet or two change nothing, and a killed
		// host's rooms are taken over 1.25-1.5 s after the kill, inside
		// the 5 s target (FAILOVER.md has the budget).
		RenewInterval:    250 * time.Millisecond,
		LeaseDuration:    1500 * time.Millisecond,
		LeaseMargin:      200 * time.Millisecond, // covers a tick in progress and scheduling delay
		ClaimTimeout:     time.Second,
		HandOffTimeout:   5 * time.Second,
		FenceWait:        10 * time.Second, // longer than a takeover plus gossip of its entry
		DrainConcurrency: 4,                // hand-offs are round trips: a few at once hide the latency
		MaxWitnessBytes:  512 << 20,        // 1,000 rooms of 16 players take about 3 MB per witness
	}
}

// maxMetaField bounds the name and URLs, so that the gossiped metadata
// stays well under memberlist's 512-byte limit.
const maxMetaField = 150

func (c *Config) validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.NodeName != "" && len(c.NodeName) <= 64, "NodeName must be 1..64 bytes")
	check(len(c.Label) <= 255, "Label must be at most 255 bytes")
	check(len(c.GameURL) <= maxMetaField && len(c.AdminURL) <= maxMetaField, "GameURL and AdminURL must be at most %d bytes", maxMetaField)
	if u, err := url.Parse(c.GameURL); err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		errs = append(errs, fmt.Errorf("GameURL %q must be a ws:// or wss:// URL with a host", c.GameURL))
	}
	if _, _, err := splitHostPort(c.GossipListen); err != nil {
		errs = append(errs, fmt.Errorf("GossipListen: %w", err))
	}
	adv := c.Advertise
	if adv == "" {
		adv = c.GossipListen
	}
	if host, _, err := splitHostPort(adv); err != nil {
		errs = append(errs, fmt.Errorf("Advertise: %w", err))
	} else if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		errs = append(errs, fmt.Errorf("advertise address %q must be an IP address others can reach (set Advertise when GossipListen is a wildcard)", adv))
	}
	switch len(c.SecretKey) {
	case 0, 16, 24, 32:
	default:
		errs = append(errs, fmt.Errorf("SecretKey must be 16, 24 or 32 bytes, not %d", len(c.SecretKey)))
	}
	check(c.ProbeInterval > 0 && c.ProbeTimeout > 0 && c.ProbeTimeout < c.ProbeInterval, "ProbeTimeout must be positive and below ProbeInterval")
	check(c.SuspicionMult >= 1 && c.SuspicionMaxMult >= 1, "SuspicionMult and SuspicionMaxMult must be at least 1")
	check(c.GossipInterval > 0 && c.PushPullInterval > 0, "GossipInterval and PushPullInterval must be positive")
	check(c.JoinRetry > 0 && c.RejoinInterval >= c.JoinRetry, "JoinRetry must be positive and at most RejoinInterval")
	check(c.ScanInterval > 0 && c.MetaInterval > 0, "ScanInterval and MetaInterval must be positive")
	check(c.TombstoneTTL > 0 && c.OrphanGrace > 0, "TombstoneTTL and OrphanGrace must be positive")
	check(c.Candidates >= 1, "Candidates must be at least 1")
	check(c.LoadCap >= 1, "LoadCap must be at least 1")
	if c.Replicate {
		check(c.Witnesses >= 1 && c.Witnesses <= maxGroup-1, "Witnesses must be in 1..%d", maxGroup-1)
		check(c.RenewInterval > 0 && c.LeaseDuration >= 2*c.RenewInterval, "LeaseDuration must be at least twice RenewInterval")
		check(c.LeaseMargin > 0 && c.LeaseMargin < c.LeaseDuration-c.RenewInterval, "LeaseMargin must be positive and below LeaseDuration minus RenewInterval")
		check(c.ClaimTimeout > 0 && c.HandOffTimeout > 0 && c.FenceWait > 0, "ClaimTimeout, HandOffTimeout and FenceWait must be positive")
		check(c.DrainConcurrency >= 1, "DrainConcurrency must be at least 1")
		check(c.MaxWitnessBytes >= 0, "MaxWitnessBytes must not be negative")
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cluster: invalid config: %w", err)
	}
	return nil
}

func splitHostPort(hp string) (string, int, error) {
	host, p, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port in %q", hp)
	}
	return host, port, nil
}

// FillURLs sets GameURL and AdminURL, where empty, from the addresses the
// game and admin listeners are bound to (adminAddr may be empty: no admin
// listener) and the game endpoint's path. A listener on a wildcard
// address is named by the advertised gossip host.
func (c *Config) FillURLs(gameAddr, adminAddr, path string) error {
	adv := c.Advertise
	if adv == "" {
		adv = c.GossipListen
	}
	advHost, _, err := net.SplitHostPort(adv)
	if err != nil {
		return fmt.Errorf("cluster: advertise address: %w", err)
	}
	if c.GameURL == "" {
		if c.GameURL, err = urlFor("ws", gameAddr, advHost, path); err != nil {
			return fmt.Errorf("cluster: game URL from %q: %w", gameAddr, err)
		}
	}
	if c.AdminURL == "" && adminAddr != "" {
		if c.AdminURL, err = urlFor("http", adminAddr, advHost, ""); err != nil {
			return fmt.Errorf("cluster: admin URL from %q: %w", adminAddr, err)
		}
	}
	return nil
}

// urlFor makes scheme://host:port/path from a listener's address, naming
// the host by advHost when the listener binds every address.
func urlFor(scheme, addr, advHost, path string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = advHost
	}
	return scheme + "://" + net.JoinHostPort(host, port) + path, nil
}
