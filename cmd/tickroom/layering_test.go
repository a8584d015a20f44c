package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/tickroom/tickroom"

// The packages' dependencies point one way: sim knows nothing of the
// network, netcode nothing of rooms, rooms nothing of the cluster, and no
// library package reaches up into cmd or bots. A package that needs to reach
// up is missing an interface.
func TestDependenciesPointOneWay(t *testing.T) {
	out, err := exec.Command("go", "list", "-f",
		`{{.ImportPath}} {{join .Imports " "}} | {{join .TestImports " "}} {{join .XTestImports " "}}`,
		module+"/...").CombinedOutput()
	require.NoError(t, err, "go list: %s", out)

	// forbidden[layer] lists what packages under layer must not import.
	forbidden := map[string][]string{
		"sim":     {"netcode", "rooms", "cluster", "bots", "cmd"},
		"netcode": {"rooms", "cluster", "bots", "cmd"},
		"rooms":   {"cluster", "bots", "cmd"},
		"cluster": {"bots", "cmd"},
		"bots":    {"rooms", "cluster", "cmd"},
	}
	// Tests may reach further for real things to test against: the bots'
	// tests run a real in-process server; the cluster's tests run bots.
	testAllowed := map[string][]string{
		"bots":    {"rooms"},
		"cluster": {"bots"},
	}
	// Third-party modules the library may use; anything new must be added
	// here on purpose, with its reason in the commit.
	allowed := []string{
		"github.com/gobwas/ws",
		"github.com/vmihailenco/msgpack/v5",
		"github.com/HdrHistogram/hdrhistogram-go",
		"github.com/stretchr/testify",
		"github.com/prometheus/client_golang", // the admin listener's /metrics
		"github.com/chromedp/chromedp",        // the dashboard's browser test
		"github.com/chromedp/cdproto",
		"golang.org/x/sys/unix",           // timerfd for the node clock; the standard syscall package lacks it
		"github.com/hashicorp/memberlist", // the cluster's gossip membership (SWIM + Lifeguard)
		"go.yaml.in/yaml/v3",              // tests only: strict decoding of the Kubernetes manifests
	}

	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := fields[0]
		layer := strings.SplitN(strings.TrimPrefix(pkg, module+"/"), "/", 2)[0]
		inTests := false
		for _, imp := range fields[1:] {
			if imp == "|" {
				inTests = true
				continue
			}
			if rest, ok := strings.CutPrefix(imp, module+"/"); ok {
				target := strings.SplitN(rest, "/", 2)[0]
				for _, bad := range forbidden[layer] {
					if target == bad && !(inTests && slices.Contains(testAllowed[layer], target)) {
						t.Errorf("%s imports %s: %s must not depend on %s", pkg, imp, layer, bad)
					}
				}
				continue
			}
			if !strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") {
				continue // standard library
			}
			ok := false
			for _, a := range allowed {
				ok = ok || imp == a || strings.HasPrefix(imp, a+"/")
			}
			if !ok {
				t.Errorf("%s imports %s, which is not an approved dependency", pkg, imp)
			}
		}
		checked++
	}
	require.Greater(t, checked, 5, "go list found the module's packages")
}
