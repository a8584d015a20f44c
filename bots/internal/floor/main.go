// Command floor is the capacity benchmark's floor: the least work any
// server could do to serve N players at a fixed tick rate over TCP on this
// machine. bots/capacity.sh runs it in the same run and on the same cores as
// a real tickroom server, and divides the server's CPU per player-tick by
// the floor's.
//
// Per player and tick, the floor's server writes one snapshot-sized binary
// WebSocket frame (unmasked, precomputed once and shared) with one write
// call, and reads one masked input frame, which it counts and discards.
// There is no handshake, no game, no encoding, no per-player state, no
// per-write deadline and no allocation in steady state. Any server must at
// least make these syscalls and wake these readers, so none can use less CPU
// per player-tick than this.
//
//	floor -role server -players 1000     # prints "listening ADDR" on stdout
//	floor -role clients -players 1000 -addr ADDR
//
// The server accepts -players raw TCP connections (frames start straight
// after accept), then ticks for -duration and closes them. The clients dial
// -players connections, read the server's frames, and write one input frame
// per connection per tick, until -duration passes or the server closes.
// In both roles a few writer goroutines (-writers, one per P by default)
// each own a share of the connections, with its own ticker, and one reader
// goroutine per connection reads. Each role prints one JSON line about what
// it did when it ends. Neither measures CPU or memory: the script reads both
// from /proc.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type config struct {
	role          string
	listen        string
	addr          string
	players       int
	tickRate      int
	snapshotBytes int
	inputBytes    int
	writers       int
	duration      time.Duration
	acceptTimeout time.Duration
}

// report is the JSON line a role prints when it ends.
type report struct {
	Role          string  `json:"role"`
	Players       int     `json:"players"`
	TickRate      int     `json:"tick_rate"`
	Writers       int     `json:"writers"`
	ElapsedS      float64 `json:"elapsed_s"`   // from the start of ticking to its end
	Ticks         int64   `json:"ticks"`       // the fewest any writer ran
	FrameBytes    int     `json:"frame_bytes"` // on the wire, header included, of each frame written
	FramesWritten int64   `json:"frames_written"`
	BytesWritten  int64   `json:"bytes_written"`
	FramesRead    int64   `json:"frames_read"`
	BytesRead     int64   `json:"bytes_read"`
	ClosedByPeer  int64   `json:"closed_by_peer"` // connections the other side closed before we stopped
	Errors        int64   `json:"errors"`         // any other read or write error
}

func main() {
	var c config
	flag.StringVar(&c.role, "role", "", "server or clients")
	flag.StringVar(&c.listen, "listen", "127.0.0.1:0", "server: address to listen on")
	flag.StringVar(&c.addr, "addr", "", "clients: the server's address")
	flag.IntVar(&c.players, "players", 1000, "connections")
	flag.IntVar(&c.tickRate, "tick-rate", 60, "ticks per second")
	flag.IntVar(&c.snapshotBytes, "snapshot-bytes", 90, "server: payload bytes of each snapshot frame")
	flag.IntVar(&c.inputBytes, "input-bytes", 8, "clients: payload bytes of each input frame")
	flag.IntVar(&c.writers, "writers", runtime.GOMAXPROCS(0), "goroutines that write, each to its share of the connections")
	flag.DurationVar(&c.duration, "duration", time.Minute, "how long to tick, from the moment all connections are up")
	flag.DurationVar(&c.acceptTimeout, "accept-timeout", time.Minute, "server: give up if the clients have not all connected by then")
	flag.Parse()

	var (
		rep report
		err error
	)
	switch c.role {
	case "server":
		rep, err = serve(c)
	case "clients":
		rep, err = clients(c)
	default:
		err = fmt.Errorf("-role must be server or clients, not %q", c.role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
	_ = json.NewEncoder(os.Stdout).Encode(rep)
	if rep.Errors > 0 {
		os.Exit(1)
	}
}

func serve(c config) (report, error) {
	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		return report{}, err
	}
	fmt.Printf("listening %s\n", ln.Addr())
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(c.acceptTimeout))
	conns := make([]net.Conn, 0, c.players)
	for len(conns) < c.players {
		conn, err := ln.Accept()
		if err != nil {
			return report{}, fmt.Errorf("accepted %d of %d: %w", len(conns), c.players, err)
		}
		conns = append(conns, conn)
	}
	ln.Close()
	frame := appendFrame(nil, c.snapshotBytes, false)
	return run(c, conns, frame)
}

func clients(c config) (report, error) {
	conns := make([]net.Conn, 0, c.players)
	for len(conns) < c.players {
		conn, err := net.Dial("tcp", c.addr)
		if err != nil {
			return report{}, fmt.Errorf("dialled %d of %d: %w", len(conns), c.players, err)
		}
		conns = append(conns, conn)
	}
	frame := appendFrame(nil, c.inputBytes, true)
	return run(c, conns, frame)
}

// peer is one connection. Its counters belong to its reader goroutine until
// run has waited for it.
type peer struct {
	conn       net.Conn
	gone       atomic.Bool // the other side closed it
	framesRead int64
	bytesRead  int64
	err        error // the reader's error, if not a peer close
}

// run starts one reader goroutine per connection and c.writers writer
// goroutines, each of which writes frame once per tick to its share of the
// connections, and runs for c.duration or until every peer has gone. Both
// roles share it.
func run(c config, conns []net.Conn, frame []byte) (report, error) {
	peers := make([]*peer, len(conns))
	var (
		readers  sync.WaitGroup
		stopping atomic.Bool
		live     atomic.Int64
		allGone  = make(chan struct{})
	)
	live.Store(int64(len(conns)))
	markGone := func(p *peer) {
		if p.gone.CompareAndSwap(false, true) && live.Add(-1) == 0 {
			close(allGone)
		}
	}
	for i, conn := range conns {
		p := &peer{conn: conn}
		peers[i] = p
		readers.Go(func() {
			var buf [512]byte
			var fc frameCounter
			for {
				n, err := p.conn.Read(buf[:])
				p.bytesRead += int64(n)
				p.framesRead += fc.feed(buf[:n])
				switch {
				case err == nil:
				case stopping.Load():
					return
				case peerGone(err):
					markGone(p)
					return
				default:
					p.err = err
					return
				}
			}
		})
	}

	// Several writers, each on its own share, so that one slow pass on a
	// busy machine does not make the floor skip ticks.
	nw := max(1, min(c.writers, len(peers)))
	stats := make([]writerStats, nw)
	stop := make(chan struct{})
	var writers sync.WaitGroup
	period := time.Second / time.Duration(c.tickRate)
	start := time.Now()
	for i := range nw {
		share := peers[i*len(peers)/nw : (i+1)*len(peers)/nw]
		st := &stats[i]
		writers.Go(func() { writeLoop(share, frame, period, stop, markGone, st) })
	}
	end := time.NewTimer(c.duration)
	select {
	case <-end.C:
	case <-allGone:
	}
	close(stop)
	writers.Wait()

	rep := report{
		Role: c.role, Players: c.players, TickRate: c.tickRate, Writers: nw,
		ElapsedS: time.Since(start).Seconds(), Ticks: stats[0].ticks, FrameBytes: len(frame),
	}
	for _, st := range stats {
		rep.Ticks = min(rep.Ticks, st.ticks)
		rep.FramesWritten += st.frames
		rep.BytesWritten += st.bytes
		rep.Errors += st.errors
	}
	stopping.Store(true)
	for _, p := range peers {
		p.conn.Close()
	}
	readers.Wait()
	for _, p := range peers {
		rep.FramesRead += p.framesRead
		rep.BytesRead += p.bytesRead
		if p.gone.Load() {
			rep.ClosedByPeer++
		}
		if p.err != nil {
			rep.Errors++
			fmt.Fprintln(os.Stderr, "floor: read:", p.err)
		}
	}
	return rep, nil
}

// writerStats belong to one writer goroutine until run has waited for it.
type writerStats struct{ ticks, frames, bytes, errors int64 }

// writeLoop writes frame to every live peer once per tick, one write call
// each, until stop is closed.
func writeLoop(peers []*peer, frame []byte, period time.Duration, stop <-chan struct{}, markGone func(*peer), st *writerStats) {
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-stop:
			return
		}
		st.ticks++
		for _, p := range peers {
			if p.gone.Load() {
				continue
			}
			n, err := p.conn.Write(frame)
			st.bytes += int64(n)
			switch {
			case err == nil:
				st.frames++
			case peerGone(err):
				markGone(p)
			default:
				st.errors++
				fmt.Fprintln(os.Stderr, "floor: write:", err)
			}
		}
	}
}

func peerGone(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// appendFrame appends a final binary frame with n zero payload bytes, masked
// if the clients send it (RFC 6455 requires client frames to be masked; a
// zero payload under a fixed mask is as good as any for a benchmark).
func appendFrame(dst []byte, n int, masked bool) []byte {
	var m byte
	if masked {
		m = 0x80
	}
	switch {
	case n < 126:
		dst = append(dst, 0x82, m|byte(n))
	case n <= 0xffff:
		dst = append(dst, 0x82, m|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x82, m|127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	if masked {
		dst = append(dst, 0x12, 0x34, 0x56, 0x78)
	}
	return append(dst, make([]byte, n)...)
}

// frameCounter counts WebSocket frames in a byte stream fed in arbitrary
// pieces, skipping their payloads without unmasking or keeping them.
type frameCounter struct {
	hdr  [14]byte
	nh   int    // header bytes collected so far
	skip uint64 // payload bytes of the current frame still to come
}

func (fc *frameCounter) feed(p []byte) (frames int64) {
	for len(p) > 0 {
		if fc.skip > 0 {
			n := min(uint64(len(p)), fc.skip)
			fc.skip -= n
			p = p[n:]
			continue
		}
		fc.hdr[fc.nh] = p[0]
		fc.nh++
		p = p[1:]
		if fc.nh < 2 {
			continue
		}
		need, length := 2, uint64(fc.hdr[1]&0x7f)
		switch length {
		case 126:
			need += 2
		case 127:
			need += 8
		}
		if fc.hdr[1]&0x80 != 0 {
			need += 4
		}
		if fc.nh < need {
			continue
		}
		switch length {
		case 126:
			length = uint64(fc.hdr[2])<<8 | uint64(fc.hdr[3])
		case 127:
			length = 0
			for _, b := range fc.hdr[2:10] {
				length = length<<8 | uint64(b)
			}
		}
		fc.skip, fc.nh = length, 0
		frames++
	}
	return frames
}
