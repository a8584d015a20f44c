package netcode

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tickroom/tickroom/netcode/internal/epoll"
	"github.com/tickroom/tickroom/netcode/internal/rawio"
	"github.com/tickroom/tickroom/netcode/wire"
)

// A poller reads the connections registered with it, once per tick of the
// Handler (tickPass) or when epoll says they are readable, so that a joined
// connection needs no goroutine of its own:
// a parked reader goroutine costs its stack (kilobytes, at ten thousand
// connections tens of megabytes) and a park and a wake-up per input. After
// the handshake the socket leaves the Go runtime's poller (Conn.detach): a
// poller adds it to an epoll set of its own and reads it with one
// non-blocking read per readiness event, level-triggered, into a buffer it
// shares among its connections; its writers write it without waiting.
//
// One goroutine per poller runs loop. Reading on ticks, it waits on a
// channel for the Handler's tick (Server.readPending) and then reads every
// ready connection with non-blocking epoll_waits; reading on arrival, it
// parks in the Go runtime's poller until its epoll set has events. Either
// way no thread blocks in epoll_wait. It calls Session.Input itself (a queue
// push), but never anything that may wait on a room (a join waits for the
// room's tick): those it hands to a goroutine of the connection's own
// (Conn.serveRequest), taking the connection out of the epoll set
// meanwhile, so that a connection's messages are still handled one at a
// time and in order.
type poller struct {
	srv      *Server
	set      *epoll.Set
	readBuf  []byte      // loop only
	ticking  bool        // loop only: the last pass was a tick's
	ds       decodeState // loop only
	loopDone chan struct{}
	// Reading on tick (Server.readOnTick): the handler's tick asks for a
	// read pass on tickReq and waits on tickDone; stop closes stopped.
	tickReq  chan struct{}
	tickDone chan struct{}
	stopped  chan struct{}

	mu       sync.Mutex
	conns    map[uint64]*Conn // registered, by id: the epoll id
	finished []*Conn          // asked to finish by other goroutines
	wakeups  atomic.Uint64    // Wait returns, for tests
	stopping bool             // stop was called: the loop ends
}

// pollReadBuffer is how much one read may take: many inputs, or a whole
// message of the largest size with what came before it.
const pollReadBuffer = 64 << 10

// pollBatch is how many ready connections one epoll_wait reports at most.
const pollBatch = 256

func newPoller(s *Server) (*poller, error) {
	set, err := epoll.New(pollBatch)
	if err != nil {
		return nil, fmt.Errorf("netcode: %w", err)
	}
	p := &poller{
		srv:      s,
		set:      set,
		readBuf:  make([]byte, max(pollReadBuffer, 2*(s.cfg.MaxMessageSize+16))),
		ds:       decodeState{dec: wire.NewDecoder()},
		loopDone: make(chan struct{}),
		tickReq:  make(chan struct{}, 1),
		tickDone: make(chan struct{}, 1),
		stopped:  make(chan struct{}),
		conns:    make(map[uint64]*Conn),
	}
	go p.loop()
	return p, nil
}

// pollState is where a connection stands with its poller. Guarded by the
// poller's mu.
type pollState uint8

const (
	// pollBusy: a goroutine of the connection's own reads for it (the
	// handshake, or a request being answered); the poller does not.
	pollBusy pollState = iota
	// pollArmed: in the epoll set; the poller reads it.
	pollArmed
	// pollFinished: out of the epoll set for good; finish runs or ran.
	pollFinished
)

// alive reports whether the poller still takes connections: one whose
// epoll_wait failed does not.
func (p *poller) alive() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.stopping
}

// arm has the poller read c from now on: the first time (after the
// handshake), or again after a request. The calling goroutine gives up
// reading c. If c was asked to finish meanwhile, arm finishes it instead,
// on the calling goroutine.
func (p *poller) arm(c *Conn) {
	p.mu.Lock()
	if c.pollFinish || p.stopping {
		c.pollState = pollFinished
		delete(p.conns, c.id)
		p.mu.Unlock()
		c.finish()
		return
	}
	p.conns[c.id] = c
	err := p.set.Add(c.pollFD, c.id)
	if err == nil {
		c.pollState = pollArmed
		p.mu.Unlock()
		return
	}
	c.pollState = pollFinished
	delete(p.conns, c.id)
	p.mu.Unlock()
	c.end(fmt.Errorf("netcode: %w", err), &CloseError{Code: wire.CloseInternalError, Reason: "internal error"})
	c.finish()
}

// disarm takes c out of the poller's hands while a goroutine of its own
// answers a request. Loop only. It takes the socket out of the epoll set
// (arm adds it again): a registration with no events would still report
// EPOLLHUP and EPOLLERR, level-triggered, so a client that hung up during a
// slow join would keep the loop spinning.
func (p *poller) disarm(c *Conn) {
	p.mu.Lock()
	c.pollState = pollBusy
	_ = p.set.Del(c.pollFD)
	p.mu.Unlock()
}

// requestFinish asks for c to be finished: its socket failed, or the close
// handshake's grace ran out. Any goroutine. A connection that a goroutine of
// its own reads for is finished when that goroutine arms it again.
func (p *poller) requestFinish(c *Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case c.pollState == pollFinished:
	case c.pollState == pollBusy || p.stopping:
		c.pollFinish = true
	default:
		c.pollFinish = true
		p.finished = append(p.finished, c)
		p.set.Wake()
	}
}

// finishLocked takes c out of the epoll set for good and finishes it on a
// goroutine of its own (finish waits for the connection's writer, which may
// take WriteTimeout). The caller is loop and holds mu.
func (p *poller) finishLocked(c *Conn) {
	if c.pollState != pollArmed {
		if c.pollState == pollBusy {
			c.pollFinish = true
		}
		return
	}
	c.pollState = pollFinished
	delete(p.conns, c.id)
	_ = p.set.Del(c.pollFD)
	go c.finish()
}

// stop ends the loop and waits for it. The Server calls it once every
// connection has finished.
func (p *poller) stop() {
	p.mu.Lock()
	if !p.stopping {
		p.stopping = true
		p.set.Wake()
		close(p.stopped)
	}
	p.mu.Unlock()
	<-p.loopDone
}

func (p *poller) loop() {
	defer close(p.loopDone)
	defer p.set.Close()
	var finished []*Conn
	ids := make([]uint64, 0, pollBatch)
	var fallback *time.Timer
	if p.srv.readOnTick {
		fallback = time.NewTimer(time.Hour)
		defer fallback.Stop()
	}
	for {
		var err error
		if p.srv.readOnTick {
			err = p.tickPass(ids, fallback)
		} else {
			ids, _, err = p.set.WaitParked(ids[:0])
			if err == nil {
				p.readReady(ids)
			}
		}
		if err != nil {
			p.srv.log.Error("epoll_wait failed; connections read by this poller are closed", "err", err)
			p.failAll(err)
			return
		}
		p.mu.Lock()
		finished, p.finished = p.finished, finished[:0]
		for _, c := range finished {
			p.finishLocked(c)
		}
		stopping := p.stopping
		p.mu.Unlock()
		clear(finished)
		if stopping {
			p.failAll(ErrServerClosed)
			return
		}
	}
}

// tickPass waits for the handler's tick (Server.readPending), or for a
// period without one, and then reads everything that is ready. Inputs wait
// in the kernel until the tick that applies them, so the whole node reads
// once a tick, with one readiness poll, instead of waking for every few
// inputs as they arrive. The fallback keeps requests answered within
// maxReadWait between ticks (a quarter more while ticks come).
func (p *poller) tickPass(ids []uint64, fallback *time.Timer) error {
	// While ticks come, a quarter more before the fallback: a tick a little
	// late must not find that a fallback pass has just run.
	wait := p.srv.readEvery
	if p.ticking {
		wait += wait / 4
	}
	fallback.Reset(wait)
	ticked := false
	select {
	case <-p.tickReq:
		ticked = true
	case <-fallback.C:
	case <-p.stopped:
		return nil
	}
	fallback.Stop()
	var err error
	for {
		ids, _, err = p.set.Wait(ids[:0], 0)
		if err != nil {
			break
		}
		p.readReady(ids)
		if len(ids) < pollBatch {
			break
		}
	}
	p.ticking = ticked
	if ticked {
		p.tickDone <- struct{}{} // capacity 1, and one request at a time
	}
	return err
}

// readReady reads the connections whose ids epoll reported.
func (p *poller) readReady(ids []uint64) {
	p.wakeups.Add(1)
	now := time.Now()
	for _, id := range ids {
		p.mu.Lock()
		c := p.conns[id]
		if c != nil && c.pollState != pollArmed {
			c = nil // disarmed or finished after epoll_wait returned
		}
		p.mu.Unlock()
		if c != nil && !c.readable(p, now) {
			p.mu.Lock()
			p.finishLocked(c)
			p.mu.Unlock()
		}
	}
}

// requestPass asks the poller for one read pass; awaitPass waits for it, or
// for the poller to be gone. Server.readPending calls them, one caller at a
// time.
func (p *poller) requestPass() {
	select {
	case p.tickReq <- struct{}{}:
	default: // a request is pending already
	}
}

func (p *poller) awaitPass() {
	select {
	case <-p.tickDone:
	case <-p.loopDone:
	}
}

// failAll ends every connection still registered; only a broken epoll set,
// or a stop before the connections finished, leaves any.
func (p *poller) failAll(err error) {
	p.mu.Lock()
	p.stopping = true
	conns := make([]*Conn, 0, len(p.conns))
	for _, c := range p.conns {
		if c.pollState == pollArmed {
			c.pollState = pollFinished
			conns = append(conns, c)
		} else {
			c.pollFinish = true
		}
	}
	clear(p.conns)
	p.mu.Unlock()
	for _, c := range conns {
		c.end(fmt.Errorf("netcode: poller: %w", err), &CloseError{Code: wire.CloseInternalError, Reason: "internal error"})
		go c.finish()
	}
}

// readable reads what the socket has, on the poller's goroutine, and
// handles the whole frames among it. It returns false when the connection
// is over and must be finished.
func (c *Conn) readable(p *poller, now time.Time) bool {
	buf := p.readBuf
	k := copy(buf, c.pend) // a frame's start from the last read: the parser needs it whole
	n, err := c.raw.ReadNonBlocking(buf[k:])
	switch {
	case err != nil && (errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR)):
		return true // a spurious wake-up
	case err != nil:
		c.readFailed(err)
		return false
	case n == 0:
		c.readFailed(io.EOF)
		return false
	}
	c.lastRead.Store(int64(now.Sub(c.srv.epoch)))
	if c.draining {
		c.pend = nil
		return true
	}
	rest, handedOff := c.consume(buf[:k+n], &p.ds, p)
	if !handedOff {
		c.keepPending(rest)
	}
	return true
}

// detach takes the connection's socket out of the Go runtime's poller
// (rawio.Detach) once a poller is to read it: the runtime took an event for
// every packet on sockets nobody parks on, and the socket would be in two
// epoll sets, each woken per packet. The socket's writers (the room's fast
// path, the writer goroutine) then write on the detached socket, which
// never blocks a thread: a full one is retried after short sleeps until
// the write deadline. It takes the socket's ownership for the swap, so no
// writer sees it half done.
//
// It is best effort, and reports whether it detached: a socket it cannot
// own at once (the writer goroutine waiting on a client that does not
// read, which must not leave the client unread meanwhile), or cannot
// duplicate (no descriptor left), stays the Go runtime's, which works as
// before, at the runtime's cost per packet.
func (c *Conn) detach() bool {
	for i := 0; !c.owner.CompareAndSwap(0, 1); i++ {
		if i == 100 {
			return false
		}
		runtime.Gosched() // the room's non-blocking write takes microseconds
	}
	defer c.disown()
	d, err := rawio.Detach(c.nc, time.Time{})
	if err != nil {
		c.logger().Debug("socket left in the runtime's poller", "err", err)
		return false
	}
	c.nc, c.raw = d, d
	return true
}
