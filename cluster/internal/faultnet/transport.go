package faultnet

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// MaxDelayedPackets is how many packets one Transport holds while SetDelay
// is in effect. A packet sent while the queue is full is dropped and counted
// in Stats.PacketsDropped.
const MaxDelayedPackets = 4096

// Transport is a memberlist.NodeAwareTransport that applies its Network's
// faults to an inner transport, which it owns. Set it as
// memberlist.Config.Transport; memberlist's Shutdown then shuts it down.
type Transport struct {
	net   *Network
	inner memberlist.NodeAwareTransport
	addr  string // canonical "ip:port" this node advertises
	port  int

	packetCh chan *memberlist.Packet
	streamCh chan net.Conn
	delayCh  chan delayedPacket

	closed    atomic.Bool
	stop      chan struct{} // closed when Shutdown starts
	innerDone chan struct{} // closed once the inner transport is shut down
	wg        sync.WaitGroup
	once      sync.Once
	err       error // result of Shutdown, written inside once

	packetsSent     atomic.Uint64
	bytesSent       atomic.Uint64
	packetsReceived atomic.Uint64
	bytesReceived   atomic.Uint64
	packetsDropped  atomic.Uint64
	dialsRefused    atomic.Uint64
	streamsCut      atomic.Uint64
}

var _ memberlist.NodeAwareTransport = (*Transport)(nil)

// Stats is a snapshot of one Transport's counters.
type Stats struct {
	PacketsSent     uint64 // packets handed to the inner transport
	BytesSent       uint64 // payload bytes of PacketsSent
	PacketsReceived uint64 // packets delivered on PacketCh, counted just before the hand-over
	BytesReceived   uint64 // payload bytes of PacketsReceived
	PacketsDropped  uint64 // packets lost to a cut, a random drop, a full delay queue or a failed delayed write
	DialsRefused    uint64 // dials refused because the peer was cut
	StreamsCut      uint64 // open streams closed because their link was cut
}

// NewTransport starts a memberlist.NetTransport on bindAddr:bindPort and
// wraps it. An empty bindAddr means 127.0.0.1; an unspecified address such
// as 0.0.0.0 is refused, because the node would advertise some other
// address. A bindPort of 0 picks a free port: see Addr and Port. A nil
// logger discards the inner transport's messages.
func (n *Network) NewTransport(bindAddr string, bindPort int, logger *log.Logger) (*Transport, error) {
	if bindAddr == "" {
		bindAddr = "127.0.0.1"
	}
	ip, err := netip.ParseAddr(bindAddr)
	if err != nil {
		return nil, fmt.Errorf("faultnet: bind address: %w", err)
	}
	if ip.IsUnspecified() || ip.Zone() != "" {
		return nil, fmt.Errorf("faultnet: bind address %q: need a specific IP without zone", bindAddr)
	}
	if bindPort < 0 || bindPort > 65535 {
		return nil, fmt.Errorf("faultnet: bind port %d out of range", bindPort)
	}
	if logger == nil {
		logger = log.New(io.Discard, "", 0)
	}
	ip = ip.Unmap()
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{ip.String()},
		BindPort:  bindPort,
		Logger:    logger,
	})
	if err != nil {
		return nil, fmt.Errorf("faultnet: start net transport on %s port %d: %w", ip, bindPort, err)
	}
	addr := netip.AddrPortFrom(ip, uint16(nt.GetAutoBindPort())).String()
	t, err := n.Wrap(nt, addr)
	if err != nil {
		return nil, errors.Join(err, nt.Shutdown())
	}
	return t, nil
}

// Wrap returns a Transport that applies n's faults to inner and takes
// ownership of it: Transport.Shutdown shuts inner down. addr is the node's
// gossip address as advertised, "ip:port"; faults name nodes by it, and
// inner must send its packets from it, since receivers filter by
// Packet.From.
func (n *Network) Wrap(inner memberlist.NodeAwareTransport, addr string) (*Transport, error) {
	if inner == nil {
		return nil, errors.New("faultnet: wrap: nil inner transport")
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("faultnet: wrap: advertised address: %w", err)
	}
	t := &Transport{
		net:       n,
		inner:     inner,
		addr:      canonical(addr),
		port:      int(ap.Port()),
		packetCh:  make(chan *memberlist.Packet),
		streamCh:  make(chan net.Conn),
		delayCh:   make(chan delayedPacket, MaxDelayedPackets),
		stop:      make(chan struct{}),
		innerDone: make(chan struct{}),
	}
	t.wg.Add(3)
	go t.forwardPackets()
	go t.forwardStreams()
	go t.delayLoop()
	return t, nil
}

// Addr returns the node's gossip address, "ip:port", as faults name it.
func (t *Transport) Addr() string { return t.addr }

// Port returns the node's gossip port, the one actually bound when
// NewTransport was given port 0.
func (t *Transport) Port() int { return t.port }

// Stats returns a snapshot of the counters. Each counter is read atomically,
// but not all of them at one instant.
func (t *Transport) Stats() Stats {
	return Stats{
		PacketsSent:     t.packetsSent.Load(),
		BytesSent:       t.bytesSent.Load(),
		PacketsReceived: t.packetsReceived.Load(),
		BytesReceived:   t.bytesReceived.Load(),
		PacketsDropped:  t.packetsDropped.Load(),
		DialsRefused:    t.dialsRefused.Load(),
		StreamsCut:      t.streamsCut.Load(),
	}
}

// FinalAdvertiseAddr asks the inner transport. See memberlist.Transport.
func (t *Transport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	advIP, advPort, err := t.inner.FinalAdvertiseAddr(ip, port)
	if err != nil {
		return nil, 0, fmt.Errorf("faultnet: advertise address: %w", err)
	}
	return advIP, advPort, nil
}

// WriteTo is WriteToAddress without a node name. See memberlist.Transport.
func (t *Transport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress sends one packet unless a fault drops it. A dropped packet
// reports success, as a lossy network would. Under SetDelay the packet is
// copied and written later by the delay goroutine, and the returned time is
// the time of this call, so memberlist's RTT measurements include the delay.
func (t *Transport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if t.closed.Load() {
		return time.Time{}, fmt.Errorf("faultnet: write to %s: %w", a.Addr, ErrClosed)
	}
	now := time.Now()
	if t.net.isCut(t.addr, canonical(a.Addr)) || t.net.shouldDrop() {
		t.packetsDropped.Add(1)
		return now, nil
	}
	if d := time.Duration(t.net.delay.Load()); d > 0 {
		select {
		case t.delayCh <- delayedPacket{due: now.Add(d), buf: bytes.Clone(b), to: a}:
		default:
			t.packetsDropped.Add(1)
		}
		return now, nil
	}
	return t.write(b, a)
}

// write hands one packet to the inner transport and counts it.
func (t *Transport) write(b []byte, a memberlist.Address) (time.Time, error) {
	// Count before writing, so a receiver that got the packet sees it
	// counted here too; a failed write is taken back out.
	size := uint64(len(b))
	t.packetsSent.Add(1)
	t.bytesSent.Add(size)
	ts, err := t.inner.WriteToAddress(b, a)
	if err != nil {
		t.packetsSent.Add(^uint64(0))
		t.bytesSent.Add(^(size - 1))
		return ts, fmt.Errorf("faultnet: write to %s: %w", a.Addr, err)
	}
	return ts, nil
}

// PacketCh returns the packets received from peers that are not cut off.
// See memberlist.Transport.
func (t *Transport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

// DialTimeout is DialAddressTimeout without a node name. See
// memberlist.Transport.
func (t *Transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout opens a stream to a peer. It fails at once with an
// error wrapping ErrCut if the peer is cut off. The stream is closed, and
// its Read and Write fail with ErrCut, as soon as the link is cut later.
func (t *Transport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if t.closed.Load() {
		return nil, fmt.Errorf("faultnet: dial %s: %w", a.Addr, ErrClosed)
	}
	remote := canonical(a.Addr)
	if t.net.isCut(t.addr, remote) {
		t.dialsRefused.Add(1)
		return nil, fmt.Errorf("faultnet: dial %s from %s: %w", a.Addr, t.addr, ErrCut)
	}
	c, err := t.inner.DialAddressTimeout(a, timeout)
	if err != nil {
		return nil, fmt.Errorf("faultnet: dial %s: %w", a.Addr, err)
	}
	s := &streamConn{Conn: c, owner: t, local: t.addr, remote: remote}
	if !t.net.register(s) {
		// Cut while the dial was in flight.
		_ = c.Close()
		t.dialsRefused.Add(1)
		return nil, fmt.Errorf("faultnet: dial %s from %s: %w", a.Addr, t.addr, ErrCut)
	}
	return s, nil
}

// StreamCh returns incoming streams. They are not filtered: see the package
// doc. See memberlist.Transport.
func (t *Transport) StreamCh() <-chan net.Conn { return t.streamCh }

// Shutdown stops the Transport's goroutines and waits for them, shuts down
// the inner transport, and closes the streams this Transport dialled.
// Packets waiting out a delay are discarded. It is safe to call more than
// once; later calls return the first call's result.
func (t *Transport) Shutdown() error {
	t.once.Do(func() {
		t.closed.Store(true)
		close(t.stop)
		// The forwarders keep draining the inner channels, discarding,
		// until the inner transport is down, so its listeners never
		// block on a send while it waits for them.
		err := t.inner.Shutdown()
		close(t.innerDone)
		t.wg.Wait()
		for _, s := range t.net.streamsOf(t) {
			_ = s.Close()
		}
		if err != nil {
			t.err = fmt.Errorf("faultnet: shut down inner transport of %s: %w", t.addr, err)
		}
	})
	return t.err
}

// forwardPackets moves packets from the inner transport to PacketCh,
// dropping those from cut peers. It runs until the inner transport is down.
func (t *Transport) forwardPackets() {
	defer t.wg.Done()
	in := t.inner.PacketCh()
	for {
		select {
		case p, ok := <-in:
			if !ok {
				return
			}
			t.deliverPacket(p)
		case <-t.innerDone:
			return
		}
	}
}

func (t *Transport) deliverPacket(p *memberlist.Packet) {
	if p == nil {
		return
	}
	if p.From != nil && t.net.isCut(canonical(p.From.String()), t.addr) {
		t.packetsDropped.Add(1)
		return
	}
	// Count before handing over, so a receiver that got the packet sees
	// it counted; a packet discarded by Shutdown is taken back out.
	size := uint64(len(p.Buf))
	t.packetsReceived.Add(1)
	t.bytesReceived.Add(size)
	select {
	case t.packetCh <- p:
	case <-t.stop:
		t.packetsReceived.Add(^uint64(0))
		t.bytesReceived.Add(^(size - 1))
	}
}

// forwardStreams moves incoming streams from the inner transport to
// StreamCh, and closes those that arrive during Shutdown. It runs until the
// inner transport is down.
func (t *Transport) forwardStreams() {
	defer t.wg.Done()
	in := t.inner.StreamCh()
	for {
		select {
		case c, ok := <-in:
			if !ok {
				return
			}
			if c == nil {
				continue
			}
			select {
			case t.streamCh <- c:
			case <-t.stop:
				_ = c.Close()
			}
		case <-t.innerDone:
			return
		}
	}
}
