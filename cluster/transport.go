package cluster

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// countingTransport counts the gossip bytes a node sends and receives,
// packets and streams alike, for the metrics and the bandwidth benchmark.
// It owns two goroutines that forward the inner transport's packet and
// stream channels; Shutdown stops and waits for them.
type countingTransport struct {
	memberlist.NodeAwareTransport
	stats   *GossipStats
	packets chan *memberlist.Packet
	streams chan net.Conn
	stop    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
}

// GossipStats count a node's gossip traffic, memberlist's own included.
type GossipStats struct {
	BytesIn, BytesOut     atomic.Uint64
	PacketsIn, PacketsOut atomic.Uint64
	// Dropped counts peers' messages dropped: directory messages and
	// metadata that did not decode, and packets and streams memberlist
	// refused (no key or the wrong one, another label, corrupt).
	Dropped atomic.Uint64
}

func newCountingTransport(inner memberlist.NodeAwareTransport, stats *GossipStats) *countingTransport {
	t := &countingTransport{
		NodeAwareTransport: inner,
		stats:              stats,
		packets:            make(chan *memberlist.Packet),
		streams:            make(chan net.Conn),
		stop:               make(chan struct{}),
	}
	t.wg.Add(2)
	go t.forwardPackets()
	go t.forwardStreams()
	return t
}

func (t *countingTransport) forwardPackets() {
	defer t.wg.Done()
	in := t.NodeAwareTransport.PacketCh()
	for {
		select {
		case p := <-in:
			t.stats.BytesIn.Add(uint64(len(p.Buf)))
			t.stats.PacketsIn.Add(1)
			select {
			case t.packets <- p:
			case <-t.stop:
				return
			}
		case <-t.stop:
			return
		}
	}
}

func (t *countingTransport) forwardStreams() {
	defer t.wg.Done()
	in := t.NodeAwareTransport.StreamCh()
	for {
		select {
		case c := <-in:
			select {
			case t.streams <- &countingConn{Conn: c, stats: t.stats}:
			case <-t.stop:
				_ = c.Close()
				return
			}
		case <-t.stop:
			return
		}
	}
}

func (t *countingTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }
func (t *countingTransport) StreamCh() <-chan net.Conn           { return t.streams }

func (t *countingTransport) count(n int) {
	t.stats.BytesOut.Add(uint64(n))
	t.stats.PacketsOut.Add(1)
}

func (t *countingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	t.count(len(b))
	return t.NodeAwareTransport.WriteTo(b, addr)
}

func (t *countingTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	t.count(len(b))
	return t.NodeAwareTransport.WriteToAddress(b, a)
}

func (t *countingTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	c, err := t.NodeAwareTransport.DialTimeout(addr, timeout)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, stats: t.stats}, nil
}

func (t *countingTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	c, err := t.NodeAwareTransport.DialAddressTimeout(a, timeout)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, stats: t.stats}, nil
}

// Shutdown stops the inner transport, then the forwarders. In that order:
// the inner transport's listeners send to their channels without looking
// for a shutdown, so the forwarders must keep taking until they are gone
// (memberlist reads the outer channels until after this returns).
func (t *countingTransport) Shutdown() error {
	err := t.NodeAwareTransport.Shutdown()
	t.once.Do(func() { close(t.stop) })
	t.wg.Wait()
	return err
}

type countingConn struct {
	net.Conn
	stats *GossipStats
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.stats.BytesIn.Add(uint64(n))
	return n, err
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.stats.BytesOut.Add(uint64(n))
	return n, err
}
