package main

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/tickroom/tickroom/cluster"
)

// clusterFlags are serve's cluster flags, before they become a
// cluster.Config.
type clusterFlags struct {
	cfg          cluster.Config
	join         string
	key          string
	gameURL      string
	adminURL     string
	gossipListen string
	route        string
	drainTimeout time.Duration
}

func registerClusterFlags(fs *flag.FlagSet) *clusterFlags {
	cf := &clusterFlags{cfg: cluster.DefaultConfig()}
	host, _ := os.Hostname()
	fs.StringVar(&cf.cfg.NodeName, "node-name", host, "this node's name in the cluster (a suffix drawn at each start keeps restarts apart)")
	fs.StringVar(&cf.gossipListen, "gossip-listen", "", "address of the cluster gossip (UDP and TCP), e.g. 127.0.0.1:7946; empty: no cluster, the node runs alone")
	fs.StringVar(&cf.join, "join", "", "seeds to join, comma-separated HOST:PORT or DNS names (a name may resolve to many nodes); retried until the first join succeeds")
	fs.StringVar(&cf.cfg.Advertise, "advertise", "", "gossip HOST:PORT the other nodes reach this node at; empty: --gossip-listen")
	fs.StringVar(&cf.gameURL, "public-url", "", "this node's game endpoint as clients reach it, for redirects (ws:// or wss://); empty: from --listen and the advertised host")
	fs.StringVar(&cf.adminURL, "admin-url", "", "this node's admin listener as operators reach it; empty: from --admin-listen and the advertised host")
	fs.StringVar(&cf.key, "cluster-key", "", "gossip encryption key, 16, 24 or 32 bytes in base64 or hex; every node needs the same (prefer the environment variable: flags show in ps)")
	fs.StringVar(&cf.cfg.Label, "cluster-label", "", "cluster name: nodes only gossip with nodes of the same label")
	fs.BoolVar(&cf.cfg.Replicate, "replicate", cf.cfg.Replicate, "checkpoint rooms to other nodes, fail them over when their node dies and hand them off on drain (needs --cluster-key)")
	fs.DurationVar(&cf.drainTimeout, "drain-timeout", 60*time.Second, "how long a drain (SIGTERM or POST /admin/drain) may take to hand the rooms to other nodes before the node stops anyway")
	fs.StringVar(&cf.route, "route", "redirect", "how a player whose room is on another node gets there: redirect (the client dials that node) or proxy (this node relays the connection)")
	return cf
}

// config returns the cluster configuration, or nil if the node runs
// alone. URLs left empty are filled in from the listeners
// (cluster.Config.FillURLs) once they are bound.
func (cf *clusterFlags) config() (*cluster.Config, error) {
	if cf.gossipListen == "" {
		if cf.join != "" {
			return nil, errors.New("--join needs --gossip-listen: the address this node gossips on")
		}
		return nil, nil
	}
	c := cf.cfg
	c.GossipListen = cf.gossipListen
	switch cf.route {
	case "redirect":
	case "proxy":
		c.Relay = true
	default:
		return nil, fmt.Errorf("--route must be redirect or proxy, not %q", cf.route)
	}
	for _, s := range strings.Split(cf.join, ",") {
		if s = strings.TrimSpace(s); s != "" {
			c.Join = append(c.Join, s)
		}
	}
	if cf.key != "" {
		key, err := decodeKey(cf.key)
		if err != nil {
			return nil, fmt.Errorf("--cluster-key: %w", err)
		}
		c.SecretKey = key
	}
	c.GameURL, c.AdminURL = cf.gameURL, cf.adminURL
	return &c, nil
}

func decodeKey(s string) ([]byte, error) {
	if b, err := hex.DecodeString(s); err == nil {
		return b, nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("neither hex nor base64")
	}
	return b, nil
}
