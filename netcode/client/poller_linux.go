//go:build linux

package client

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/tickroom/tickroom/netcode/internal/epoll"
	"github.com/tickroom/tickroom/netcode/internal/rawio"
	"github.com/tickroom/tickroom/netcode/internal/wsframe"
	"github.com/tickroom/tickroom/netcode/wire"
)

// Poller reads many clients' connections on one goroutine, when epoll says
// they are readable, level-triggered: one non-blocking read per readiness
// event into a buffer the connections share. A client read by its own
// goroutine pays, per message, a goroutine wake-up and a second read that
// finds nothing (Go's poller learns a socket is drained only that way);
// across thousands of clients in one process, as the bots run them, those
// are most of the client's CPU beside the kernel's own work.
//
// Goroutines: NewPoller starts the poller's goroutine; Close stops it and
// waits for it. It calls the clients' OnSnapshot, OnEvent and OnPong, and
// answers the server's pings (a socket write), so a callback that blocks
// holds up every client of the poller. Each client's own goroutine stays:
// it waits while the poller reads, and reconnects after a drop.
type Poller struct {
	set     *epoll.Set
	readBuf []byte        // loop only
	dec     *wire.Decoder // loop only
	done    chan struct{}

	mu      sync.Mutex
	conns   map[uint64]*polled // registered, by epoll id
	nextID  uint64
	ending  []*polled // asked to end by other goroutines
	kicked  []*polled // registered with bytes read before: handle them without waiting for more
	closing bool
}

// polled is a poller's state for one connection.
type polled struct {
	c      *Client
	conn   *connection
	sock   *rawio.Conn // the socket, once detached (register)
	fd     int         // sock's descriptor, -1 before
	parser *wsframe.Parser
	ended  chan error // receives why the connection ended, once, from the loop

	// Loop only, once registered.
	pend     []byte // the start of a frame the last read ended inside
	lastRead time.Time
	hb       time.Duration

	// Guarded by the poller's mu.
	id     uint64 // 0 until registered
	endErr error  // why end was called, if it was
}

// pollReadBuffer is how much one read takes at most, before a large
// message grows the buffer.
const pollReadBuffer = 64 << 10

// pollBatch is how many ready connections one epoll_wait reports at most.
const pollBatch = 256

// releaseAbove is the size past which a connection's pending bytes are let
// go instead of reused.
const releaseAbove = 4 << 10

// sweepEvery is how often the poller checks its connections' heartbeats.
const sweepEvery = time.Second

// NewPoller starts a poller. Close it after the clients that use it.
func NewPoller() (*Poller, error) {
	set, err := epoll.New(pollBatch)
	if err != nil {
		return nil, fmt.Errorf("client: poller: %w", err)
	}
	p := &Poller{
		set:     set,
		readBuf: make([]byte, pollReadBuffer),
		dec:     wire.NewDecoder(),
		done:    make(chan struct{}),
		conns:   make(map[uint64]*polled),
	}
	go p.loop()
	return p, nil
}

// Close stops the poller and waits for its goroutine. Connections it still
// reads end with ErrPollerClosed, and their clients close.
func (p *Poller) Close() error {
	p.mu.Lock()
	if !p.closing {
		p.closing = true
		p.set.Wake()
	}
	p.mu.Unlock()
	<-p.done
	return nil
}

// prepare sets conn up to be read by the poller. The dialer calls it
// before the connection is shared. A connection that is not a plain socket
// (TLS) is left to the client's goroutine.
func (p *Poller) prepare(c *Client, conn *connection) error {
	if p.set == nil {
		return errors.New("client: a Poller must come from NewPoller")
	}
	p.mu.Lock()
	closing := p.closing
	p.mu.Unlock()
	if closing {
		return ErrPollerClosed
	}
	if _, ok := conn.nc.(syscall.Conn); !ok {
		return nil
	}
	conn.polled = &polled{
		c:      c,
		conn:   conn,
		fd:     -1,
		parser: wsframe.NewParser(c.cfg.MaxMessageSize, false),
		ended:  make(chan error, 1),
	}
	return nil
}

// serve has the poller read conn until it ends, and returns why. It runs
// on the client's goroutine, which waits meanwhile. After Close, or once
// the client has sent its close on conn (a redirected Join left it), it
// waits closeWait for the server to echo the close, then cuts.
func (p *Poller) serve(c *Client, conn *connection) error {
	pc := conn.polled
	if err := p.register(pc); err != nil {
		return err
	}
	select {
	case err := <-pc.ended:
		return err
	case <-c.closeCh:
	case <-conn.leaving:
	}
	t := time.NewTimer(closeWait)
	defer t.Stop()
	select {
	case err := <-pc.ended:
		return err
	case <-t.C:
		p.end(pc, fmt.Errorf("client: the server did not echo the close: %w", os.ErrDeadlineExceeded))
		return <-pc.ended
	}
}

// register adds pc to the epoll set. What the handshake's reader buffered
// past the last message it read (a snapshot behind a resumed Joined)
// becomes pc's pending bytes, handled by the loop at once.
func (p *Poller) register(pc *polled) error {
	pc.hb = pc.c.heartbeat()
	pc.lastRead = time.Now()
	if n := pc.conn.br.Buffered(); n > 0 {
		b, _ := pc.conn.br.Peek(n)
		pc.pend = append([]byte(nil), b...)
		_, _ = pc.conn.br.Discard(n)
	}
	p.mu.Lock()
	err := pc.endErr // a write failed before the poller got the connection
	p.mu.Unlock()
	if err != nil {
		return err
	}
	if err := pc.c.detach(pc); err != nil {
		return fmt.Errorf("client: poller: %w", err)
	}
	pc.fd = pc.sock.FD()
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closing:
		return ErrPollerClosed
	case pc.endErr != nil:
		return pc.endErr // a write failed before the poller got the connection
	}
	p.nextID++
	pc.id = p.nextID
	if err := p.set.Add(pc.fd, pc.id); err != nil {
		return fmt.Errorf("client: poller: %w", err)
	}
	p.conns[pc.id] = pc
	if len(pc.pend) > 0 {
		p.kicked = append(p.kicked, pc)
		p.set.Wake()
	}
	return nil
}

// end asks the loop to end pc's connection with err (a write failed, or
// the close timed out). Any goroutine; the first reason wins.
func (p *Poller) end(pc *polled, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pc.endErr != nil {
		return
	}
	pc.endErr = err
	if pc.id != 0 && !p.closing { // closing: the loop ends every connection anyway
		p.ending = append(p.ending, pc)
		p.set.Wake()
	}
}

// finishLocked takes pc out of the epoll set, before its socket is closed,
// and tells its client why: the reason end was given, if it was (the EOF
// that a shut-down socket reads is its consequence). Loop only, with mu
// held.
func (p *Poller) finishLocked(pc *polled, err error) {
	if p.conns[pc.id] != pc {
		return // finished already
	}
	if pc.endErr != nil {
		err = pc.endErr
	}
	delete(p.conns, pc.id)
	_ = p.set.Del(pc.fd)
	pc.ended <- err
}

func (p *Poller) finish(pc *polled, err error) {
	p.mu.Lock()
	p.finishLocked(pc, err)
	p.mu.Unlock()
}

func (p *Poller) loop() {
	defer close(p.done)
	defer p.set.Close()
	ids := make([]uint64, 0, pollBatch)
	var ending, kicked, expired []*polled
	lastSweep := time.Now()
	for {
		var err error
		ids, _, err = p.set.Wait(ids[:0], int(sweepEvery/time.Millisecond))
		if err != nil {
			p.finishAll(fmt.Errorf("client: poller: %w", err))
			return
		}
		now := time.Now()
		for _, id := range ids {
			p.mu.Lock()
			pc := p.conns[id]
			p.mu.Unlock()
			if pc == nil {
				continue // finished after epoll_wait returned
			}
			if err := p.read(pc, now); err != nil {
				p.finish(pc, err)
			}
		}

		p.mu.Lock()
		ending, p.ending = p.ending, ending[:0]
		for _, pc := range ending {
			p.finishLocked(pc, pc.endErr)
		}
		kicked, p.kicked = p.kicked, kicked[:0]
		closing := p.closing
		p.mu.Unlock()
		clear(ending)
		for _, pc := range kicked {
			p.mu.Lock()
			live := p.conns[pc.id] == pc
			p.mu.Unlock()
			if live {
				if err := p.handle(pc, pc.pend); err != nil {
					p.finish(pc, err)
				}
			}
		}
		clear(kicked)

		if closing {
			p.finishAll(ErrPollerClosed)
			return
		}
		if now.Sub(lastSweep) >= sweepEvery {
			lastSweep = now
			expired = p.sweep(now, expired[:0])
			for _, pc := range expired {
				p.finish(pc, fmt.Errorf("client: no message from the server in %v: %w", pc.hb, os.ErrDeadlineExceeded))
			}
			clear(expired)
		}
	}
}

// sweep appends the connections that heard nothing for their heartbeat
// interval: the server pings more often than that, so it is gone.
func (p *Poller) sweep(now time.Time, expired []*polled) []*polled {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pc := range p.conns {
		// Unread bytes mean the loop, not the server, was slow (a callback
		// that blocked): the next round reads them.
		if now.Sub(pc.lastRead) > pc.hb && !pc.sock.HasData() {
			expired = append(expired, pc)
		}
	}
	return expired
}

// finishAll ends every connection still registered.
func (p *Poller) finishAll(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closing = true
	for _, pc := range p.conns {
		p.finishLocked(pc, err)
	}
}

// read reads what pc's socket has and handles the whole messages in it,
// after the bytes pending from before. It returns why the connection ends,
// or nil.
func (p *Poller) read(pc *polled, now time.Time) error {
	if need := len(pc.pend) + pollReadBuffer; need > len(p.readBuf) {
		p.readBuf = make([]byte, need) // a large message in pieces
	}
	buf := p.readBuf
	k := copy(buf, pc.pend) // a frame's start from the last read: the parser needs it whole
	n, err := pc.sock.ReadNonBlocking(buf[k:])
	switch {
	case err != nil && (errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR)):
		return p.handle(pc, buf[:k]) // a spurious wake-up, or a kick still to handle
	case err == nil && n == 0:
		err = io.EOF
	}
	if err != nil {
		// What came before the end (a close frame, say) still counts.
		if herr := p.handle(pc, buf[:k]); herr != nil {
			return herr
		}
		return err
	}
	pc.lastRead = now
	err = p.handle(pc, buf[:k+n])
	if len(p.readBuf) > pollReadBuffer && len(pc.pend) == 0 {
		p.readBuf = make([]byte, pollReadBuffer) // let a large message's buffer go
	}
	return err
}

// handle handles the whole frames in b and keeps the start of the next
// one, if b ends inside it.
func (p *Poller) handle(pc *polled, b []byte) error {
	for len(b) > 0 {
		op, payload, n, err := pc.parser.Parse(b)
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
		b = b[n:]
		if op == 0 {
			continue // a fragment
		}
		if err := pc.c.onFrame(pc.conn, p.dec, op, payload); err != nil {
			return err
		}
	}
	switch {
	case len(b) == 0 && cap(pc.pend) > releaseAbove:
		pc.pend = nil // let a large message's memory go
	case len(b) == 0:
		pc.pend = pc.pend[:0]
	case cap(pc.pend) > max(releaseAbove, 2*len(b)):
		pc.pend = append([]byte(nil), b...) // do not pin a large buffer for a few bytes
	default:
		pc.pend = append(pc.pend[:0], b...) // b may alias pend: append copies forward
	}
	pc.parser.Release(releaseAbove)
	return nil
}
