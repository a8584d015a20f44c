//go:build linux

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// This file runs the cluster across real network stacks: each node in its
// own Linux network namespace, the three joined by veth pairs to a bridge
// in a fourth ("switch") namespace. Nothing is added to the host's own
// namespace: every link is created directly inside ours (ip -n), and
// deleting the namespaces removes them.
//
// The test process stays in the host's namespace, so it cannot reach the
// nodes' addresses. What must run on the LAN (the admin checks and the bot
// run) runs through `ip netns exec`: the bots as the tickroom binary, the
// HTTP checks as this test binary re-executed into TestNetnsHelper, so the
// test needs nothing beyond iproute2 (no curl).

const (
	netnsSubnet   = "10.213.0." // hosts .1, .2, .3 on a /24 that exists only inside our namespaces
	netnsPrefix   = "trt-"      // namespace names: trt-<pid>-<random>-<role>
	netnsCmdLimit = 15 * time.Second

	// Environment of TestNetnsHelper, the HTTP client run inside a
	// namespace.
	netnsHelperURL   = "TICKROOM_NETNS_GET_URL"
	netnsHelperToken = "TICKROOM_NETNS_GET_TOKEN"
	netnsHelperOut   = "TICKROOM_NETNS_GET_OUT"
)

// netnsHost is one node's namespace on the test LAN.
type netnsHost struct {
	ip   string // path of the ip command
	ns   string // namespace name
	addr string // its address on the LAN
}

// netnsClusterView is the part of GET /admin/cluster this test reads.
type netnsClusterView struct {
	Members []struct {
		Name   string `json:"name"`
		State  string `json:"state"`
		Ready  bool   `json:"ready"`
		Gossip string `json:"gossipAddr"`
	} `json:"members"`
	Placement []struct {
		Name  string `json:"name"`
		Rooms int    `json:"rooms"`
	} `json:"placement"`
	Routing struct {
		Redirects uint64 `json:"redirects"`
		Proxied   uint64 `json:"proxied"`
	} `json:"routing"`
}

func TestClusterAcrossNetworkNamespaces(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a four-namespace LAN, starts three servers and a bot run")
	}
	if os.Geteuid() != 0 {
		t.Skip("creating network namespaces needs root")
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("creating network namespaces needs ip (iproute2)")
	}
	bin := buildBinary(t)
	hosts := netnsLAN(t, ip, 3)
	token := netnsRandom(t, 16)
	key := "TICKROOM_CLUSTER_KEY=000102030405060708090a0b0c0d0e0f"
	env := []string{key, "TICKROOM_ADMIN_TOKEN=" + token}

	// Fixed ports are safe here: each namespace is new and holds nothing
	// but its one node.
	seed := hosts[0].addr + ":7946"
	nodes := make([]*node, len(hosts))
	for i, h := range hosts {
		args := []string{
			"--node-name", fmt.Sprintf("n%d", i+1),
			"--listen", h.addr + ":8080",
			"--public-url", "ws://" + h.addr + ":8080/ws",
			"--admin-listen", h.addr + ":8081",
			"--gossip-listen", h.addr + ":7946",
		}
		if i > 0 {
			args = append(args, "--join", seed)
		}
		if i == 2 {
			args = append(args, "--max-rooms", "0")
		}
		nodes[i] = h.startNode(t, bin, env, args...)
		require.Equal(t, "ws://"+h.addr+":8080/ws", nodes[i].url)
	}

	// Every node, asked on the LAN, sees three ready members at the three
	// namespaces' addresses: the gossip crossed the bridge.
	want := []string{seed, hosts[1].addr + ":7946", hosts[2].addr + ":7946"}
	for i, h := range hosts {
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			v, err := h.cluster(nodes[i].adminURL, token)
			if !assert.NoError(c, err) {
				return
			}
			var gossip []string
			for _, m := range v.Members {
				if m.State == "alive" && m.Ready {
					gossip = append(gossip, m.Gossip)
				}
			}
			assert.ElementsMatch(c, want, gossip, "alive, ready members")
		}, 20*time.Second, 200*time.Millisecond, "%s sees the cluster; logs:\n%s", h.ns, nodes[i].logs())
	}

	// The bots run in n3's namespace and join through n3, which hosts no
	// room: every redirect sends them across the bridge to n1 or n2.
	report := filepath.Join(t.TempDir(), "report.json")
	out, err := hosts[2].bots(bin, nodes[2].url, report)
	require.NoError(t, err, "%s\nn3 logs:\n%s", out, nodes[2].logs())
	assert.Regexp(t, `bots joined +48 of 48`, out)

	var rep struct {
		Joined              int     `json:"joined"`
		SnapshotsPerPlayerS float64 `json:"snapshots_per_player_s"`
		Errors              uint64  `json:"errors"`
		Drops               uint64  `json:"drops"`
	}
	b, err := os.ReadFile(report)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &rep))
	assert.Equal(t, 48, rep.Joined)
	assert.Zero(t, rep.Errors)
	assert.Zero(t, rep.Drops)
	assert.InDelta(t, 60, rep.SnapshotsPerPlayerS, 6, "about 60 snapshots a second across namespaces")

	v, err := hosts[2].cluster(nodes[2].adminURL, token)
	require.NoError(t, err)
	rooms := map[string]int{}
	for _, p := range v.Placement {
		rooms[p.Name] += p.Rooms
	}
	assert.Zero(t, rooms["n3"], "the node with --max-rooms 0 hosts no room")
	assert.Positive(t, rooms["n1"], "n1 hosts rooms")
	assert.Positive(t, rooms["n2"], "n2 hosts rooms")
	assert.Equal(t, uint64(48), v.Routing.Redirects, "every player redirected")
	t.Logf("rooms per node after the run: %v", rooms)
}

// bots runs the bot run of TestBotsThroughANodeThatHostsNoRooms inside
// h's namespace against url, and returns what it printed.
func (h netnsHost) bots(bin, url, report string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.ip, "netns", "exec", h.ns, bin, "bots", "--url", url,
		"--players", "48", "--room-size", "8", "--ramp", "24", "--duration", "6s", "--json", report,
		"--max-errors", "0", "--max-drops", "0", "--min-snapshot-rate", "50")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// netnsLAN builds n hosts on one bridge and removes everything in
// t.Cleanup. Namespace names carry this process's PID and a random part,
// so that runs never collide; namespaces left by a test process that died
// before its cleanup are removed first.
func netnsLAN(t *testing.T, ip string, n int) []netnsHost {
	t.Helper()
	netnsSweep(t, ip)
	prefix := fmt.Sprintf("%s%d-%s-", netnsPrefix, os.Getpid(), netnsRandom(t, 3))
	sw := prefix + "sw"
	netnsAdd(t, ip, sw)
	netnsRun(t, ip, "-n", sw, "link", "add", "br0", "type", "bridge")
	netnsRun(t, ip, "-n", sw, "link", "set", "br0", "up")

	hosts := make([]netnsHost, n)
	for i := range hosts {
		h := netnsHost{ip: ip, ns: fmt.Sprintf("%sn%d", prefix, i+1), addr: netnsSubnet + strconv.Itoa(i+1)}
		netnsAdd(t, ip, h.ns)
		// The pair is made inside the switch namespace and one end moved
		// straight into the host's: neither end ever exists in ours.
		port := fmt.Sprintf("p%d", i+1)
		netnsRun(t, ip, "-n", sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", h.ns)
		netnsRun(t, ip, "-n", sw, "link", "set", port, "master", "br0", "up")
		netnsRun(t, ip, "-n", h.ns, "addr", "add", h.addr+"/24", "dev", "eth0")
		netnsRun(t, ip, "-n", h.ns, "link", "set", "eth0", "up")
		netnsRun(t, ip, "-n", h.ns, "link", "set", "lo", "up")
		hosts[i] = h
	}
	return hosts
}

// netnsAdd creates a namespace and deletes it in t.Cleanup, which runs
// after the cleanups of the processes started in it (t.Cleanup is LIFO).
func netnsAdd(t *testing.T, ip, ns string) {
	t.Helper()
	netnsRun(t, ip, "netns", "add", ns)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), netnsCmdLimit)
		defer cancel()
		if out, err := exec.CommandContext(ctx, ip, "netns", "delete", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v: %s", ns, err, out)
		}
	})
}

var netnsNameRE = regexp.MustCompile(`^` + netnsPrefix + `(\d+)-[0-9a-f]+-\w+$`)

// netnsSweep deletes our namespaces whose test process no longer runs.
func netnsSweep(t *testing.T, ip string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), netnsCmdLimit)
	defer cancel()
	out, err := exec.CommandContext(ctx, ip, "netns", "list").Output()
	require.NoError(t, err, "ip netns list")
	for _, line := range strings.Split(string(out), "\n") {
		fields := strings.Fields(line) // "NAME (id: N)"
		if len(fields) == 0 {
			continue
		}
		m := netnsNameRE.FindStringSubmatch(fields[0])
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid == os.Getpid() || !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			continue
		}
		t.Logf("removing namespace %s left by test process %d", fields[0], pid)
		_ = exec.CommandContext(ctx, ip, "netns", "delete", fields[0]).Run()
	}
}

func netnsRun(t *testing.T, ip string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), netnsCmdLimit)
	defer cancel()
	out, err := exec.CommandContext(ctx, ip, args...).CombinedOutput()
	require.NoError(t, err, "ip %s: %s", strings.Join(args, " "), out)
}

func netnsRandom(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

// startNode starts tickroom serve inside h's namespace, as startNode does
// on loopback. The process is ip's own (ip netns exec execs the command),
// so its PID is the server's; it is killed by that PID in t.Cleanup, and
// by the kernel if this test process dies first (Pdeathsig).
func (h netnsHost) startNode(t *testing.T, bin string, env []string, args ...string) *node {
	t.Helper()
	cmd := exec.Command(h.ip, append([]string{"netns", "exec", h.ns, bin, "serve"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return launch(t, cmd, "in "+h.ns)
}

// cluster reads GET adminURL/admin/cluster from inside h's namespace.
func (h netnsHost) cluster(adminURL, token string) (netnsClusterView, error) {
	var v netnsClusterView
	b, err := h.get(adminURL+"/admin/cluster", token)
	if err != nil {
		return v, err
	}
	return v, json.Unmarshal(b, &v)
}

// get fetches url from inside h's namespace by running this test binary
// there as TestNetnsHelper, and returns the body of a 200 answer.
func (h netnsHost) get(url, token string) ([]byte, error) {
	f, err := os.CreateTemp("", "tickroom-netns-get-")
	if err != nil {
		return nil, err
	}
	f.Close()
	defer os.Remove(f.Name())
	ctx, cancel := context.WithTimeout(context.Background(), netnsCmdLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.ip, "netns", "exec", h.ns, os.Args[0], "-test.run=^TestNetnsHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), netnsHelperURL+"="+url, netnsHelperToken+"="+token, netnsHelperOut+"="+f.Name())
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("GET %s in %s: %w: %s", url, h.ns, err, out)
	}
	return os.ReadFile(f.Name())
}

// TestNetnsHelper is not a test: it is the HTTP client that get runs
// inside a namespace. It writes the body of a 200 answer to the file
// named by TICKROOM_NETNS_GET_OUT and fails on anything else.
func TestNetnsHelper(t *testing.T) {
	url := os.Getenv(netnsHelperURL)
	if url == "" {
		t.Skip("the HTTP client of TestClusterAcrossNetworkNamespaces, run only by it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+os.Getenv(netnsHelperToken))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s: %s", url, body)
	require.NoError(t, os.WriteFile(os.Getenv(netnsHelperOut), body, 0o600))
}
