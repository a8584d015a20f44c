package bots_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tickroom/tickroom/bots"
	"github.com/tickroom/tickroom/netcode/netcodetest"
	"github.com/tickroom/tickroom/rooms/roomstest"
)

func config(url string, players int, d time.Duration) bots.Config {
	cfg := bots.DefaultConfig()
	cfg.URL = url
	cfg.Players = players
	cfg.RoomSize = 8
	cfg.Duration = d
	cfg.Ramp = 500
	cfg.Client.Reconnect.Base = 20 * time.Millisecond
	cfg.Client.Reconnect.Cap = 200 * time.Millisecond
	return cfg
}

// A short run against a real server reports plausible figures: every bot
// joined, about a snapshot per tick each, inputs acknowledged, no errors.
func TestRunReportsPlausibleFigures(t *testing.T) {
	srv := roomstest.StartDefault(t)
	var progress []bots.Progress
	cfg := config(srv.URL, 24, 3*time.Second)
	cfg.Progress = func(p bots.Progress) { progress = append(progress, p) }
	rep, err := bots.Run(context.Background(), cfg)
	require.NoError(t, err)
	t.Logf("%+v", *rep)

	assert.Equal(t, 24, rep.Joined)
	assert.Zero(t, rep.Errors)
	assert.Zero(t, rep.Drops)
	assert.False(t, rep.Interrupted)
	assert.InDelta(t, 3, rep.DurationS, 0.5)
	// About 60 a second: generous bounds, since the race detector and a
	// shared machine slow everything down.
	assert.Greater(t, rep.SnapshotsPerPlayerS, 40.0)
	assert.Less(t, rep.SnapshotsPerPlayerS, 62.0)
	assert.Greater(t, rep.SnapshotGapMs.P50, 10.0)
	assert.Less(t, rep.SnapshotGapMs.P50, 30.0)
	assert.Positive(t, rep.InputLatencyMs.P50, "inputs were sent and acknowledged")
	assert.Positive(t, rep.RTTMs.P50, "pings were answered")
	assert.Positive(t, rep.BytesDownPerPlayerS)
	assert.Positive(t, rep.BytesUpPerPlayerS)
	assert.Positive(t, rep.BotsCPUCores)
	assert.Len(t, srv.Registry.List(), 3, "24 bots in rooms of 8")

	require.NotEmpty(t, progress, "progress once a second")
	last := progress[len(progress)-1]
	assert.Equal(t, 24, last.Connected)
	assert.Equal(t, 24, last.Target)
	assert.Positive(t, last.SnapshotsPerS)
}

// Connections cut mid-run show up as drops, then as resumed seats.
func TestRunCountsDropsAndResumes(t *testing.T) {
	srv := roomstest.StartDefault(t)
	proxy, url := netcodetest.NewProxyURL(t, srv.URL)
	cfg := config(url, 10, 4*time.Second)
	cut := make(chan struct{})
	cfg.Progress = func(p bots.Progress) {
		if p.Elapsed >= time.Second && p.Connected == 10 {
			select {
			case <-cut:
			default:
				close(cut)
				proxy.CutAll()
			}
		}
	}
	rep, err := bots.Run(context.Background(), cfg)
	require.NoError(t, err)
	t.Logf("%+v", *rep)
	select {
	case <-cut:
	default:
		t.Fatal("the connections were never cut")
	}
	assert.Equal(t, uint64(10), rep.Drops)
	assert.Equal(t, uint64(10), rep.Resumes, "every seat resumed within the grace period")
	assert.Zero(t, rep.Errors)
}

// A gate the run breaks fails the run; one it meets passes.
func TestGates(t *testing.T) {
	srv := roomstest.StartDefault(t)
	rep, err := bots.Run(context.Background(), config(srv.URL, 4, 2*time.Second))
	require.NoError(t, err)

	strict := bots.NoGates()
	strict.MaxP99Gap = time.Millisecond // no 60 Hz stream has 1 ms gaps
	strict.MaxErrors = 0
	assert.False(t, strict.Check(rep))
	require.Len(t, rep.Gates, 2)
	assert.False(t, rep.Gates[0].Pass, "the gap gate fails")
	assert.True(t, rep.Gates[1].Pass, "the error gate passes")

	lenient := bots.NoGates()
	lenient.MaxP99Gap = 5 * time.Second
	lenient.MinSnapshotRate = 1
	assert.True(t, lenient.Check(rep))

	assert.True(t, bots.NoGates().Check(rep), "no gates, no failure")
	assert.Empty(t, rep.Gates)
}

func TestRunRefusesBadConfigAndUnreachableServers(t *testing.T) {
	cfg := config("http://127.0.0.1:1/ws", 1, time.Second)
	_, err := bots.Run(context.Background(), cfg)
	require.ErrorContains(t, err, "--url")

	cfg = config("ws://127.0.0.1:1/ws", 1, time.Second) // nothing listens on port 1
	cfg.Client.DialTimeout = time.Second
	_, err = bots.Run(context.Background(), cfg)
	require.ErrorIs(t, err, bots.ErrUnreachable)

	for _, mutate := range []func(*bots.Config){
		func(c *bots.Config) { c.Players = 0 },
		func(c *bots.Config) { c.Duration = 0 },
		func(c *bots.Config) { c.Behavior = "dance" },
		func(c *bots.Config) { c.Ramp = 0 },
	} {
		cfg := config("ws://127.0.0.1:1/ws", 1, time.Second)
		mutate(&cfg)
		_, err := bots.Run(context.Background(), cfg)
		require.Error(t, err)
		require.NotErrorIs(t, err, bots.ErrUnreachable)
	}
}

// Ending the run early still reports what was measured.
func TestInterruptedRunStillReports(t *testing.T) {
	srv := roomstest.StartDefault(t)
	ctx, cancel := context.WithCancel(context.Background())
	cfg := config(srv.URL, 4, time.Minute)
	cfg.Progress = func(p bots.Progress) {
		if p.Elapsed >= time.Second {
			cancel()
		}
	}
	rep, err := bots.Run(ctx, cfg)
	require.NoError(t, err)
	assert.True(t, rep.Interrupted)
	assert.Less(t, rep.DurationS, 10.0)
	assert.Equal(t, 4, rep.Joined)
	assert.Positive(t, rep.SnapshotsPerPlayerS)
}

func TestBehaviors(t *testing.T) {
	srv := roomstest.StartDefault(t)
	for _, b := range []bots.Behavior{bots.Idle, bots.Chase} {
		cfg := config(srv.URL, 4, 2*time.Second)
		cfg.Behavior = b
		rep, err := bots.Run(context.Background(), cfg)
		require.NoError(t, err)
		assert.Equal(t, 4, rep.Joined, "%s", b)
		assert.Zero(t, rep.Errors, "%s", b)
		if b == bots.Idle {
			assert.Zero(t, rep.InputLatencyMs.P50, "idle bots send no inputs")
		} else {
			assert.Positive(t, rep.InputLatencyMs.P50)
		}
	}
}
