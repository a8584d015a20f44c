package netcode_test

import (
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tickroom/tickroom/netcode"
	"github.com/tickroom/tickroom/netcode/internal/wsframe"
	"github.com/tickroom/tickroom/netcode/netcodetest"
	"github.com/tickroom/tickroom/netcode/wire"
)

// PROTOCOL.md section 14 promises, in every read mode: pings go out
// PingInterval to PingInterval+PingInterval/4 apart, and a client silent
// after its Hello is closed with 4000 HeartbeatTimeout to
// HeartbeatTimeout+PingInterval/4 after its last frame. This holds the
// code to the document. The lower bounds are exact (the server never acts
// early); the upper bounds allow for a loaded machine, since what they
// guard against is a schedule that is off by a whole step.
func TestHeartbeatTimingMatchesTheProtocol(t *testing.T) {
	const (
		ping      = 200 * time.Millisecond
		heartbeat = 700 * time.Millisecond
		slack     = ping / 4
		loaded    = 150 * time.Millisecond // scheduling delay allowed on a shared machine under -race
	)
	for _, mode := range readModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			cfg := mode.config()
			cfg.PingInterval, cfg.HeartbeatTimeout = ping, heartbeat
			_, url := startServer(t, cfg, connHandler{conns: make(chan *netcode.Conn, 1)})
			c := netcodetest.DialHello(t, url)
			last := time.Now() // the Hello, the client's last frame

			var pings []time.Time
			for {
				op, p, err := c.ReadRawFrame(5 * time.Second)
				require.NoError(t, err)
				now := time.Now()
				if op == ws.OpPing {
					pings = append(pings, now)
					continue
				}
				require.Equal(t, ws.OpClose, op, "only pings, then the close")
				code, _, err := wsframe.ParseClose(p)
				require.NoError(t, err)
				assert.Equal(t, uint16(wire.CloseHeartbeatTimeout), code)
				silent := now.Sub(last)
				assert.GreaterOrEqual(t, silent, heartbeat, "closed before the heartbeat timeout")
				assert.LessOrEqual(t, silent, heartbeat+slack+loaded, "closed after the heartbeat timeout plus its slack")
				break
			}
			require.GreaterOrEqual(t, len(pings), 2, "pings every %v within a %v silence", ping, heartbeat)
			for i := 1; i < len(pings); i++ {
				gap := pings[i].Sub(pings[i-1])
				assert.GreaterOrEqual(t, gap, ping-loaded/3, "ping %d came %v after the one before", i, gap)
				assert.LessOrEqual(t, gap, ping+slack+loaded, "ping %d came %v after the one before", i, gap)
			}
		})
	}
}
