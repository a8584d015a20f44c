package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func exitCode(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	return ee.ExitCode()
}

func TestBotsCommand(t *testing.T) {
	bin := buildBinary(t)
	n := startNode(t, bin, nil)

	t.Run("a run writes the summary and the JSON report", func(t *testing.T) {
		report := filepath.Join(t.TempDir(), "report.json")
		out, err := exec.Command(bin, "bots", "--url", n.url, "--players", "8", "--room-size", "4",
			"--duration", "2s", "--json", report, "--max-errors", "0").CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Contains(t, string(out), "bots joined          8 of 8")
		assert.Contains(t, string(out), "connected 8/8", "a progress line")
		assert.Regexp(t, `gate max-errors +PASS`, string(out))

		var rep map[string]any
		b, err := os.ReadFile(report)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(b, &rep))
		for _, key := range []string{"players", "duration_s", "snapshots_per_player_s", "snapshot_gap_ms",
			"input_latency_ms", "rtt_ms", "bytes_down_per_player_s", "bytes_up_per_player_s",
			"drops", "resumes", "errors", "bots_cpu_cores"} {
			assert.Contains(t, rep, key)
		}
		for _, key := range []string{"p50", "p90", "p99", "max"} {
			assert.Contains(t, rep["snapshot_gap_ms"], key)
		}
		assert.Equal(t, 8.0, rep["players"])
	})

	t.Run("a broken gate exits 3", func(t *testing.T) {
		report := filepath.Join(t.TempDir(), "report.json")
		out, err := exec.Command(bin, "bots", "--url", n.url, "--players", "2", "--duration", "1s",
			"--max-p99-gap", "1ms", "--json", report).CombinedOutput()
		assert.Equal(t, 3, exitCode(t, err), "%s", out)
		assert.Contains(t, string(out), "FAIL")
		assert.Contains(t, string(out), "an SLO gate failed")
		assert.FileExists(t, report, "the report is written even when a gate fails")
	})

	t.Run("Ctrl-C ends the run and still prints the summary", func(t *testing.T) {
		cmd := exec.Command(bin, "bots", "--url", n.url, "--players", "2", "--duration", "1m")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		require.NoError(t, cmd.Start())
		time.AfterFunc(1500*time.Millisecond, func() { _ = cmd.Process.Signal(syscall.SIGINT) })
		err := cmd.Wait()
		assert.Equal(t, 130, exitCode(t, err), "%s", out.String())
		assert.Contains(t, out.String(), "(interrupted)")
		assert.Contains(t, out.String(), "snapshots / bot / s")
	})
}

func TestBotsCommandRejectsBadInput(t *testing.T) {
	bin := buildBinary(t)
	cases := []struct {
		name    string
		args    []string
		code    int
		message string
	}{
		{"no such flag", []string{"--frobs", "1"}, 2, "flag provided but not defined"},
		{"zero players", []string{"--players", "0"}, 2, "--players 0 must be positive"},
		{"bad behavior", []string{"--behavior", "dance"}, 2, "--behavior \"dance\""},
		{"not a ws URL", []string{"--url", "http://127.0.0.1:1/ws"}, 2, "--url"},
		{"unreachable server", []string{"--url", "ws://127.0.0.1:1/ws", "--duration", "5s"}, 1, "server unreachable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			out, err := exec.Command(bin, append([]string{"bots"}, tc.args...)...).CombinedOutput()
			assert.Equal(t, tc.code, exitCode(t, err), "%s", out)
			assert.Contains(t, string(out), tc.message)
			assert.NotContains(t, string(out), "goroutine ", "no panic")
			assert.Less(t, time.Since(start), 10*time.Second, "no hang")
		})
	}
}
