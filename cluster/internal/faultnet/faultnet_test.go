package faultnet

import (
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// noPacketWait is how long a test waits to be satisfied that a packet is not
// coming. On loopback a packet that is coming arrives in microseconds.
const noPacketWait = 100 * time.Millisecond

// checkGoroutines fails the test if goroutines started during it are still
// running shortly after its other cleanups. Call it first in a test, so that
// its cleanup runs last.
func checkGoroutines(t testing.TB) {
	t.Helper()
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > base {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("goroutines leaked: %d before, %d after:\n%s", base, runtime.NumGoroutine(), buf)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// newTransport starts a Transport on 127.0.0.1 with a free port and shuts
// it down when the test ends.
func newTransport(t testing.TB, n *Network) *Transport {
	t.Helper()
	tr, err := n.NewTransport("127.0.0.1", 0, nil)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, tr.Shutdown()) })
	return tr
}

// recvPacket waits up to within for the next packet on tr.
func recvPacket(t testing.TB, tr *Transport, within time.Duration) (*memberlist.Packet, bool) {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	select {
	case p := <-tr.PacketCh():
		return p, true
	case <-timer.C:
		return nil, false
	}
}

// requirePacket sends payload from one transport to another and requires
// that it arrives.
func requirePacket(t testing.TB, from, to *Transport, payload string) {
	t.Helper()
	_, err := from.WriteTo([]byte(payload), to.Addr())
	require.NoError(t, err)
	p, ok := recvPacket(t, to, 2*time.Second)
	require.True(t, ok, "packet %q from %s to %s did not arrive", payload, from.Addr(), to.Addr())
	require.Equal(t, payload, string(p.Buf))
	require.Equal(t, from.Addr(), canonical(p.From.String()))
}

// requireNoPacket sends payload from one transport to another and requires
// that it does not arrive.
func requireNoPacket(t testing.TB, from, to *Transport, payload string) {
	t.Helper()
	_, err := from.WriteTo([]byte(payload), to.Addr())
	require.NoError(t, err, "a dropped packet looks sent")
	p, ok := recvPacket(t, to, noPacketWait)
	if ok {
		require.Failf(t, "packet arrived", "%q from %s to %s arrived through a fault", p.Buf, from.Addr(), to.Addr())
	}
}

func TestPacketsFlowAndAreCounted(t *testing.T) {
	checkGoroutines(t)
	n := NewNetwork()
	a, b := newTransport(t, n), newTransport(t, n)

	require.True(t, strings.HasPrefix(a.Addr(), "127.0.0.1:"))
	require.NotZero(t, a.Port())
	require.NotEqual(t, a.Addr(), b.Addr())
	ip, port, err := a.FinalAdvertiseAddr("", 0)
	require.NoError(t, err)
	require.Equal(t, a.Addr(), net.JoinHostPort(ip.String(), fmt.Sprint(port)))

	requirePacket(t, a, b, "hello")
	requirePacket(t, b, a, "hi")

	sa, sb := a.Stats(), b.Stats()
	require.Equal(t, Stats{PacketsSent: 1, BytesSent: 5, PacketsReceived: 1, BytesReceived: 2}, sa)
	require.Equal(t, Stats{PacketsSent: 1, BytesSent: 2, PacketsReceived: 1, BytesReceived: 5}, sb)
}

func TestPartitionCutsPacketsAndDials(t *testing.T) {
	checkGoroutines(t)
	n := NewNetwork()
	a, b, c := newTransport(t, n), newTransport(t, n), newTransport(t, n)

	n.Partition([]string{a.Addr(), b.Addr()}, []string{c.Addr()})
	requirePacket(t, a, b, "same side")
	requireNoPacket(t, a, c, "a to c")
	requireNoPacket(t, c, b, "c to b")

	for _, pair := range [][2]*Transport{{a, c}, {c, a}} {
		conn, err := pair[0].DialTimeout(pair[1].Addr(), 5*time.Second)
		require.ErrorIs(t, err, ErrCut, "refused by the cut, not timed out")
		require.Nil(t, conn)
	}
	require.EqualValues(t, 1, a.Stats().DialsRefused)
	require.EqualValues(t, 1, c.Stats().DialsRefused)
	require.EqualValues(t, 1, a.Stats().PacketsDropped)
	require.EqualValues(t, 1, c.Stats().PacketsDropped)

	n.Heal()
	requirePacket(t, a, c, "healed")
	requirePacket(t, c, b, "healed too")
}

func TestPartitionBridgeAndEmpty(t *testing.T) {
	checkGoroutines(t)
	n := NewNetwork()
	a, b, c := newTransport(t, n), newTransport(t, n), newTransport(t, n)

	// b is in both groups: it reaches a and c, which cannot reach each other.
	n.Partition([]string{a.Addr(), b.Addr()}, []string{b.Addr(), c.Addr()})
	requirePacket(t, a, b, "a-b")
	requirePacket(t, c, b, "c-b")
	requireNoPacket(t, a, c, "a-c")

	// No groups: every address is in no group, so everything is cut.
	n.Partition()
	requireNoPacket(t, a, b, "all cut")
}

func TestIsolateCutsOneNodeBothWays(t *testing.T) {
	checkGoroutines(t)
	n := NewNetwork()
	a, b, c := newTransport(t, n), newTransport(t, n), newTransport(t, n)

	n.Isolate(b.Addr())
	requireNoPacket(t, a, b, "to isolated")
	requireNoPacket(t, b, c, "from isolated")
	requirePacket(t, a, c, "others unaffected")
	_, err := a.DialTimeout(b.Addr(), time.Second)
	require.ErrorIs(t, err, ErrCut)

	n.Heal()
	requirePacket(t, a, b, "back")
}

func TestReceiveSideFiltersBySource(t *testing.T) {
	checkGoroutines(t)
	n := NewNetwork()
	b := newTransport(t, n)

	// A sender outside the Network: only b's receive side can filter it.
	outsider, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{"127.0.0.1"},
		Logger:    log.New(io.Discard, "", 0),
	})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, outsider.Shutdown()) })
	outsiderAddr := fmt.Sprintf("127.0.0.1:%d", outsider.GetAutoBindPort())

	_, err = outsider.WriteTo([]byte("before"), b.Addr())
	require.NoError(t, err)
	p, ok := recvPacket(t, b, 2*time.Second)
	require.True(t, ok)
	require.Equal(t, "before", string(p.Buf))

	n.Isolate(outsiderAddr)
	_, err = outsider.WriteTo([]byte("after"), b.Addr())
	require.NoError(t, err)
	_, ok = recvPacket(t, b, noPacketWait)
	require.False(t, ok, "packet from an isolated source was delivered")
	require.EqualValues(t, 1, b.Stats().PacketsDropped)
}

func TestDropRate(t *testing.T) {
	checkGoroutines(t)
	n := NewNetwork()
	a, b := newTransport(t, n), newTransport(t, n)

	n.SetDropRate(1)
	for i := range 20 {
		_, err := a.WriteTo([]byte{byte(i)}, b.Addr())
		require.NoError(t, err)
	}
	_, ok := recvPacket(t, b, noPacketWait)
	require.False(t, ok, "a packet got through drop rate 1")
	require.EqualValues(t, 20, a.Stats().PacketsDropped)
	require.Zero(t, a.Stats().PacketsSent)

	n.SetDropRate(0)
	requirePacket(t, a, b, "through")
}

func TestDropRateIsDeterministicPerSeed(t *testing.T) {
	checkGoroutines(t)
	// dropped sends 200 packets from one goroutine at rate 0.5 and returns
	// the order in which they were dropped, as a string of 0s and 1s.
	dropped := func(seed uint64) string {
		n := NewNetwork()
		a, b := newTransport(t, n), newTransport(t, n)
		n.SetSeed(seed)
		n.SetDropRate(0.5)
		var pattern strings.Builder
		for i := range 200 {
			before := a.Stats().PacketsDropped
			_, err := a.WriteTo([]byte{byte(i)}, b.Addr())
			require.NoError(t, err)
			if a.Stats().PacketsDropped > before {
				pattern.WriteByte('1')
			} else {
				pattern.WriteByte('0')
			}
		}
		return pattern.String()
	}
	first, second := dropped(42), dropped(42)
	require.Equal(t, first, second)
	drops := strings.Count(first, "1")
	require.Greater(t, drops, 50)
	require.Less(t, drops, 150)
}

func TestDelayHoldsPacketsWithoutBlockingAndKeepsOrder(t *testing.T) {
	checkGoroutines(t)
	n := NewNetwork()
	a, b := newTransport(t, n), newTransport(t, n)
	const delay = 150 * time.Millisecond
	n.SetDelay(delay)

	start := time.Now()
	for _, payload := range []string{"1", "2", "3"} {
		_, err := a.WriteTo([]byte(payload), b.Addr())
		require.NoError(t, err)
	}
	select {
	case p := <-b.PacketCh():
		t.Fatalf("packet %q was delivered before WriteTo returned: WriteTo waited out the delay", p.Buf)
	default: // held for later: WriteTo did not wait for it
	}

	for _, want := range []string{"1", "2", "3"} {
		p, ok := recvPacket(t, b, 5*time.Second)
		require.True(t, ok, "delayed packet %q never arrived", want)
		require.GreaterOrEqual(t, time.Since(start), delay, "packet %q arrived early", want)
		require.Equal(t, want, string(p.Buf))
	}
	require.EqualValues(t, 3, a.Stats().PacketsSent)

	// A packet cut while it waits is lost.
	_, err := a.WriteTo([]byte("cut in flight"), b.Addr())
	require.NoError(t, err)
	n.Isolate(b.Addr())
	_, ok := recvPacket(t, b, delay+noPacketWait)
	require.False(t, ok)
	require.EqualValues(t, 1, a.Stats().PacketsDropped)
	n.Heal()

	// Packets still waiting at Shutdown are discarded; checkGoroutines
	// verifies that nothing is left running.
	n.SetDelay(time.Hour)
	_, err = a.WriteTo([]byte("never"), b.Addr())
	require.NoError(t, err)
}

func TestOpenStreamFailsOnceCut(t *testing.T) {
	checkGoroutines(t)
	n := NewNetwork()
	a, b := newTransport(t, n), newTransport(t, n)

	conn, err := a.DialTimeout(b.Addr(), time.Second)
	require.NoError(t, err)
	defer conn.Close()
	var accepted net.Conn
	select {
	case accepted = <-b.StreamCh():
	case <-time.After(2 * time.Second):
		require.FailNow(t, "stream not accepted")
	}
	defer accepted.Close()

	_, err = conn.Write([]byte("ping"))
	require.NoError(t, err)
	buf := make([]byte, 4)
	_, err = io.ReadFull(accepted, buf)
	require.NoError(t, err)
	require.Equal(t, "ping", string(buf))

	// A Read already blocked when the partition starts must end with ErrCut.
	readErr := make(chan error, 1)
	go func() {
		_, err := conn.Read(make([]byte, 1))
		readErr <- err
	}()
	n.Partition([]string{a.Addr()}, []string{b.Addr()})
	select {
	case err := <-readErr:
		require.ErrorIs(t, err, ErrCut)
	case <-time.After(2 * time.Second):
		require.FailNow(t, "blocked Read did not end when the link was cut")
	}

	_, err = conn.Write([]byte("more"))
	require.ErrorIs(t, err, ErrCut)

	// The accepting end sees the stream closed.
	require.NoError(t, accepted.SetReadDeadline(time.Now().Add(2*time.Second)))
	_, err = accepted.Read(buf)
	require.ErrorIs(t, err, io.EOF)
	require.EqualValues(t, 1, a.Stats().StreamsCut)

	// Healing does not revive the stream, but new dials work.
	n.Heal()
	_, err = conn.Write([]byte("still cut"))
	require.ErrorIs(t, err, ErrCut)
	conn2, err := a.DialTimeout(b.Addr(), time.Second)
	require.NoError(t, err)
	require.NoError(t, conn2.Close())
	select {
	case c := <-b.StreamCh():
		require.NoError(t, c.Close())
	case <-time.After(2 * time.Second):
		require.FailNow(t, "stream not accepted after Heal")
	}
}

func TestShutdownIsIdempotentAndRefusesUse(t *testing.T) {
	checkGoroutines(t)
	n := NewNetwork()
	a, b := newTransport(t, n), newTransport(t, n)

	// A stream that was dialled but never accepted must not hang Shutdown,
	// and a dialled stream is closed by its transport's Shutdown.
	conn, err := a.DialTimeout(b.Addr(), time.Second)
	require.NoError(t, err)
	require.NoError(t, b.Shutdown())
	require.NoError(t, b.Shutdown())
	require.NoError(t, a.Shutdown())
	_, err = conn.Write([]byte("x"))
	require.ErrorIs(t, err, net.ErrClosed)

	_, err = a.WriteTo([]byte("x"), b.Addr())
	require.ErrorIs(t, err, ErrClosed)
	_, err = a.DialTimeout(b.Addr(), time.Second)
	require.ErrorIs(t, err, ErrClosed)
}

func TestBadInputIsRefusedWithoutPanic(t *testing.T) {
	checkGoroutines(t)
	n := NewNetwork()

	for _, tc := range []struct {
		addr string
		port int
	}{
		{"0.0.0.0", 0},
		{"not an ip", 0},
		{"127.0.0.1", -1},
		{"127.0.0.1", 70000},
	} {
		_, err := n.NewTransport(tc.addr, tc.port, nil)
		require.Error(t, err, "NewTransport(%q, %d)", tc.addr, tc.port)
	}

	_, err := n.Wrap(nil, "127.0.0.1:1")
	require.Error(t, err)
	inner, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{"127.0.0.1"},
		Logger:    log.New(io.Discard, "", 0),
	})
	require.NoError(t, err)
	_, err = n.Wrap(inner, "localhost")
	require.Error(t, err)
	require.NoError(t, inner.Shutdown())

	a, b := newTransport(t, n), newTransport(t, n)
	for _, p := range []float64{math.NaN(), -1, math.Inf(-1)} {
		n.SetDropRate(p)
		requirePacket(t, a, b, "rate counts as 0")
	}
	n.SetDropRate(math.Inf(1))
	requireNoPacket(t, a, b, "rate counts as 1")
	n.SetDropRate(0)
	n.SetDelay(-time.Second)
	requirePacket(t, a, b, "negative delay counts as 0")
	n.Isolate("garbage")
	n.Partition([]string{"", "x:y", a.Addr(), b.Addr()})
	requirePacket(t, a, b, "garbage addresses are harmless")
	n.Heal()

	_, err = a.WriteTo([]byte("x"), "not an address")
	require.Error(t, err)
	_, err = a.DialTimeout("not an address", time.Second)
	require.Error(t, err)
	require.False(t, errors.Is(err, ErrCut))
}
