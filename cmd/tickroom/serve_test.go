package main

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tickroom/tickroom/netcode/client"
	"github.com/tickroom/tickroom/netcode/wire"
	"github.com/tickroom/tickroom/sim"
)

// buildBinary builds the tickroom command once per test binary run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tickroom")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// node is a tickroom serve process started by a test.
type node struct {
	cmd      *exec.Cmd
	url      string
	adminURL string // http://127.0.0.1:PORT
	done     chan error

	mu  sync.Mutex
	log strings.Builder // everything the process wrote to stderr
}

var (
	listeningRE = regexp.MustCompile(`msg="tickroom serving" url=(ws://\S+)`)
	adminRE     = regexp.MustCompile(`msg="admin listening" url=http://(\S+)/`)
)

func startNode(t *testing.T, bin string, env []string, args ...string) *node {
	t.Helper()
	// Ports chosen by the kernel, so that nodes never collide.
	cmd := exec.Command(bin, append([]string{"serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	return launch(t, cmd, "on loopback")
}

// launch starts cmd, a tickroom serve, keeps its log, and waits until it
// reports its game and admin addresses. The process is killed by its PID
// when the test ends. where says where it runs, for failure messages.
func launch(t *testing.T, cmd *exec.Cmd, where string) *node {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	n := &node{cmd: cmd, done: make(chan error, 1)}
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // only our own process, by its PID
		<-n.done
	})
	urls := make(chan string, 1)
	admins := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
			if m := adminRE.FindStringSubmatch(sc.Text()); m != nil {
				admins <- "http://" + m[1]
			}
			n.mu.Lock()
			n.log.WriteString(sc.Text() + "\n")
			n.mu.Unlock()
		}
		n.done <- cmd.Wait()
	}()
	select {
	case n.url = <-urls:
	case err := <-n.done:
		n.done <- err // for the cleanup
		t.Fatalf("tickroom serve %s exited: %v; logs:\n%s", where, err, n.logs())
	case <-time.After(10 * time.Second):
		t.Fatalf("tickroom serve %s did not report its address; logs:\n%s", where, n.logs())
	}
	select {
	case n.adminURL = <-admins: // logged before the game endpoint's
	default:
		t.Fatalf("tickroom serve %s did not report its admin address; logs:\n%s", where, n.logs())
	}
	return n
}

func (n *node) logs() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.log.String()
}

func TestServeRunsTheDemoAndShutsDownGracefully(t *testing.T) {
	bin := buildBinary(t)
	n := startNode(t, bin, []string{"TICKROOM_TICK_RATE=30"}, "--max-players", "4")

	cfg := client.DefaultConfig()
	cfg.Reconnect.Attempts = 0
	c, err := client.Dial(context.Background(), n.url, cfg)
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, uint32(30), c.Welcome().TickRate, "TICKROOM_TICK_RATE sets the tick rate")
	j, err := c.Join(context.Background(), client.JoinOptions{Mode: sim.ArenaMode})
	require.NoError(t, err)
	assert.Equal(t, 4, j.MaxPlayers, "--max-players sets the seats")
	require.Eventually(t, func() bool { return len(c.State().Entities) == 1 }, 5*time.Second, 10*time.Millisecond)

	require.NoError(t, n.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-n.done:
		n.done <- err // for the cleanup
		require.NoError(t, err, "exit status 0 after SIGTERM; logs:\n%s", n.logs())
	case <-time.After(15 * time.Second):
		t.Fatal("tickroom serve did not exit after SIGTERM")
	}
	<-c.Done()
	var ce *client.CloseError
	require.True(t, errors.As(c.Err(), &ce), "client ended with %v", c.Err())
	assert.Equal(t, wire.CloseGoingAway, ce.Code, "clients get 1001 with a reason")
	assert.Contains(t, ce.Reason, "shutting down")
	assert.Contains(t, n.logs(), "shut down cleanly")
}

func TestServeRejectsBadConfiguration(t *testing.T) {
	bin := buildBinary(t)
	cases := []struct {
		name    string
		env     []string
		args    []string
		code    int
		message string
	}{
		{
			name:    "unknown flag",
			args:    []string{"--no-such-flag"},
			code:    2,
			message: "flag provided but not defined",
		},
		{
			name:    "bad environment value",
			env:     []string{"TICKROOM_TICK_RATE=fast"},
			code:    2,
			message: "TICKROOM_TICK_RATE",
		},
		{
			name:    "invalid tick rate",
			args:    []string{"--tick-rate", "0"},
			code:    1,
			message: "TickRate 0 must be in 1..1000",
		},
		{
			name:    "unusable address",
			args:    []string{"--listen", "256.0.0.1:1"},
			code:    1,
			message: "listen",
		},
		{
			name:    "open admin listener without a token",
			args:    []string{"--admin-listen", "0.0.0.0:0"},
			code:    1,
			message: "refusing to listen beyond loopback without a token",
		},
		{
			name:    "bad log format",
			args:    []string{"--log-format", "xml"},
			code:    2,
			message: "--log-format must be text or json",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, append([]string{"serve", "--admin-listen", "127.0.0.1:0"}, tc.args...)...)
			cmd.Env = append(os.Environ(), tc.env...)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee, "output: %s", out)
			assert.Equal(t, tc.code, ee.ExitCode(), "output: %s", out)
			assert.Contains(t, string(out), tc.message)
			assert.NotContains(t, string(out), "goroutine ", "no panic")
		})
	}

	out, err := exec.Command(bin, "frobnicate").CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), `unknown command "frobnicate"`)
}

// The admin listener of the real binary: health without a token, the API
// only with the one from the environment, and not ready once shutting down.
func TestServeAdminListener(t *testing.T) {
	bin := buildBinary(t)
	n := startNode(t, bin, []string{"TICKROOM_ADMIN_TOKEN=s3cret"})
	get := func(path, token string) int {
		req, err := http.NewRequest("GET", n.adminURL+path, nil)
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusOK, get("/healthz", ""))
	assert.Equal(t, http.StatusOK, get("/readyz", ""))
	assert.Equal(t, http.StatusUnauthorized, get("/admin/rooms", ""))
	assert.Equal(t, http.StatusUnauthorized, get("/admin/rooms", "wrong"))
	assert.Equal(t, http.StatusOK, get("/admin/rooms", "s3cret"))
	assert.Equal(t, http.StatusOK, get("/metrics", "s3cret"))
	assert.Equal(t, http.StatusOK, get("/", ""), "the dashboard page loads without the token")
	assert.Contains(t, n.logs(), `msg="admin listening"`)
	assert.NotContains(t, n.logs(), "s3cret", "the token is never logged")
}
