package netcode

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/tickroom/tickroom/netcode/internal/wsframe"
	"github.com/tickroom/tickroom/netcode/wire"
)

// ServerConfig configures a Server. Zero values are invalid: start from
// DefaultServerConfig.
type ServerConfig struct {
	// Path is the HTTP path of the WebSocket endpoint.
	Path string
	// TickRate is announced to clients in the Welcome.
	TickRate int
	// MaxMessageSize bounds a client message (a whole frame, or the sum of a
	// fragmented message's frames), in bytes. Larger ones close the
	// connection with 1009.
	MaxMessageSize int
	// MaxRoomMessage bounds a room message's payload, in bytes.
	MaxRoomMessage int
	// HandshakeTimeout bounds the WebSocket upgrade plus the Hello.
	HandshakeTimeout time.Duration
	// PingInterval is how often the server pings each client.
	PingInterval time.Duration
	// HeartbeatTimeout drops a client from which nothing (not even a pong)
	// arrived for this long.
	HeartbeatTimeout time.Duration
	// WriteTimeout bounds one socket write; a client that does not drain its
	// socket for this long is dropped as a slow consumer.
	WriteTimeout time.Duration
	// CloseGrace is how long a closing connection waits for the client's
	// close frame before the socket is closed.
	CloseGrace time.Duration
	// WriteBuffer sets each connection's kernel send buffer (SO_SNDBUF), in
	// bytes; 0 keeps the OS default, which grows on demand. A small buffer
	// bounds kernel memory per connection and makes a stalled client hit
	// WriteTimeout sooner.
	WriteBuffer int
	// ControlQueue is how many replies and events may wait per connection.
	ControlQueue int
	// InputRate and InputBurst limit inputs per connection (token bucket);
	// the excess is dropped and reported with CodeRateLimited.
	InputRate  float64
	InputBurst int
	// AbuseFactor disconnects a client (close code 4006) that has more than
	// AbuseFactor*InputRate + InputBurst inputs dropped within a second: a
	// flood, not a fast client.
	AbuseFactor float64
	// RequestRate and RequestBurst limit joins, leaves and room messages.
	RequestRate  float64
	RequestBurst int
	// RedirectGrace is how long a connection whose join was redirected
	// stays open for the client to close it; then the server closes it
	// with 1001, on which older clients reconnect.
	RedirectGrace time.Duration
	// DisconnectLog is how many recent disconnects RecentDisconnects keeps.
	DisconnectLog int
	// Pollers is how many goroutines read the joined connections, on
	// readiness events (epoll; Linux only). A parked reader goroutine per
	// connection costs kilobytes of stack, and a wake-up per input; a
	// poller costs neither. 0 gives each connection its own reader
	// goroutine, as on other systems.
	Pollers int
	// ReadMode says when the pollers read: ReadOnTick (when the Handler
	// is a TickReader, as rooms' Registry is) or ReadOnArrival.
	ReadMode ReadMode
	// Logger receives connection lifecycle logs; nil discards them.
	Logger *slog.Logger
}

// DefaultServerConfig returns the configuration tickroom serve starts from.
func DefaultServerConfig() ServerConfig {
	return ServerConfig{
		Path:             "/ws",
		TickRate:         60,
		MaxMessageSize:   4 << 10,          // inputs are tens of bytes; 4 KiB leaves room for chat
		MaxRoomMessage:   1 << 10,          // a chat line, not a file transfer
		HandshakeTimeout: 5 * time.Second,  // a slow mobile network still connects
		PingInterval:     5 * time.Second,  // three pings per heartbeat timeout
		HeartbeatTimeout: 15 * time.Second, // a dead peer is noticed well inside the 10 s seat grace + this
		WriteTimeout:     5 * time.Second,  // a client not reading for 5 s is gone for a real-time game
		CloseGrace:       time.Second,      // time for the client's close frame to come back
		ControlQueue:     32,               // above RequestBurst: a client may pipeline that many requests
		InputRate:        120,              // twice the default tick rate
		InputBurst:       60,               // a second's worth at 60 Hz after a network hiccup
		AbuseFactor:      4,                // 480 dropped inputs a second is nobody's honest client
		RequestRate:      20,               // joins, leaves, chat
		RequestBurst:     20,
		RedirectGrace:    10 * time.Second, // above a client's dial plus join timeouts; only catches clients that ignore Redirect
		DisconnectLog:    100,
		Pollers:          defaultPollers(runtime.GOMAXPROCS(0)),
		ReadMode:         ReadOnTick, // a quarter less server CPU at equal input latency (BENCHMARKS.md)
	}
}

// ReadMode says when pollers read joined connections.
type ReadMode uint8

const (
	// ReadOnArrival reads a connection as soon as epoll reports data: a
	// poller wakes for every few inputs.
	ReadOnArrival ReadMode = iota
	// ReadOnTick reads every connection that has data once per tick of
	// the Handler, just before it (TickReader), and at least every 1/60 s
	// between ticks (a low tick rate, or no room ticking). Inputs are applied only at a
	// tick, so they are applied as soon as with ReadOnArrival, for one
	// readiness poll and one wake-up per poller and tick. A request (join,
	// ping) waits for the next read: at most a tick, and at most 1/60 s
	// whatever the tick rate (maxReadWait).
	ReadOnTick
)

// String returns "tick" or "arrival".
func (m ReadMode) String() string {
	switch m {
	case ReadOnArrival:
		return "arrival"
	case ReadOnTick:
		return "tick"
	}
	return fmt.Sprintf("ReadMode(%d)", uint8(m))
}

// MarshalText implements encoding.TextMarshaler, for flags.
func (m ReadMode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler: "tick" or "arrival".
func (m *ReadMode) UnmarshalText(b []byte) error {
	switch string(b) {
	case "tick":
		*m = ReadOnTick
	case "arrival":
		*m = ReadOnArrival
	default:
		return fmt.Errorf("netcode: read mode %q: want tick or arrival", b)
	}
	return nil
}

// maxReadWait bounds how long a request waits to be read with ReadOnTick,
// whatever the tick rate: at 60 Hz the ticks' reads meet it; a slower tick
// rate (a turn-based game at 1 Hz) gets reads in between. (While ticks come
// but late, a quarter more: see tickPass.)
const maxReadWait = time.Second / 60

// TickReader is implemented by a Handler that runs on ticks and wants its
// connections read once per tick (ServerConfig.ReadMode ReadOnTick).
type TickReader interface {
	// ReadBeforeTicks gives the handler read, which reads every polled
	// connection that has data and returns when that is done (its
	// Session.Input calls made). The handler calls it once per tick, just
	// before the tick, from one goroutine at a time. NewServer calls
	// ReadBeforeTicks once; a handler serves one Server this way (a
	// second Server's read would replace the first's).
	ReadBeforeTicks(read func())
}

func (c *ServerConfig) validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(len(c.Path) > 0 && c.Path[0] == '/', "Path %q must start with /", c.Path)
	check(c.TickRate > 0 && c.TickRate <= 10_000, "TickRate %d must be in 1..10000", c.TickRate)
	check(c.MaxMessageSize >= 64, "MaxMessageSize %d must be at least 64", c.MaxMessageSize)
	check(c.MaxRoomMessage > 0 && c.MaxRoomMessage < c.MaxMessageSize, "MaxRoomMessage %d must be positive and below MaxMessageSize", c.MaxRoomMessage)
	check(c.HandshakeTimeout > 0, "HandshakeTimeout must be positive")
	check(c.PingInterval > 0, "PingInterval must be positive")
	check(c.HeartbeatTimeout > c.PingInterval, "HeartbeatTimeout %v must exceed PingInterval %v", c.HeartbeatTimeout, c.PingInterval)
	check(c.WriteTimeout > 0, "WriteTimeout must be positive")
	check(c.CloseGrace > 0, "CloseGrace must be positive")
	check(c.RedirectGrace > 0, "RedirectGrace must be positive")
	check(c.WriteBuffer >= 0, "WriteBuffer must not be negative")
	check(c.ControlQueue > c.RequestBurst, "ControlQueue %d must exceed RequestBurst %d: each request's reply is queued", c.ControlQueue, c.RequestBurst)
	check(c.InputRate > 0 && c.InputBurst > 0, "InputRate and InputBurst must be positive")
	check(c.AbuseFactor >= 1, "AbuseFactor %v must be at least 1", c.AbuseFactor)
	check(c.RequestRate > 0 && c.RequestBurst > 0, "RequestRate and RequestBurst must be positive")
	check(c.DisconnectLog >= 0, "DisconnectLog must not be negative")
	check(c.Pollers >= 0 && c.Pollers <= maxPollers, "Pollers %d must be between 0 and %d", c.Pollers, maxPollers)
	check(c.ReadMode <= ReadOnTick, "ReadMode %d is unknown", c.ReadMode)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("netcode: invalid server config: %w", err)
	}
	return nil
}

// defaultPollers is one poller per four cores, at least one. A poller's read
// and dispatch take a few microseconds an input, so one keeps up with
// thousands of players; more pollers mean more threads parked in
// epoll_wait, each waking for fewer events. On 2 cores, 1 poller used 8%
// less server CPU than 2 at 500 players (BENCHMARKS.md).
func defaultPollers(cores int) int {
	return min(max(1, cores/4), maxPollers)
}

// maxPollers bounds ServerConfig.Pollers: each holds an OS thread in
// epoll_wait and a 64 KiB buffer.
const maxPollers = 256

// readBuffer is each connection's read buffer: a few input frames.
const readBuffer = 256

// ServerStats are server-wide counters.
type ServerStats struct {
	Accepted          atomic.Uint64
	HandshakeFailures atomic.Uint64
	SlowConsumers     atomic.Uint64
	Redirects         atomic.Uint64 // joins answered with a Redirect to another node
	Relayed           atomic.Uint64 // connections relayed to another node
	disconnects       [numReasons]atomic.Uint64
}

// Disconnects returns how many connections ended for reason.
func (s *ServerStats) Disconnects(reason DisconnectReason) uint64 {
	if reason >= numReasons {
		return 0
	}
	return s.disconnects[reason].Load()
}

// Totals are the server's traffic counters summed over every connection it
// has had, open and closed.
type Totals struct {
	BytesIn, BytesOut       uint64
	MessagesIn, MessagesOut uint64
	SnapshotsReplaced       uint64
	InputsDropped           uint64
}

func (t *Totals) add(s *Stats) {
	t.BytesIn += s.BytesIn.Load()
	t.BytesOut += s.BytesOut.Load()
	t.MessagesIn += s.MessagesIn.Load()
	t.MessagesOut += s.MessagesOut.Load()
	t.SnapshotsReplaced += s.SnapshotsReplaced.Load()
	t.InputsDropped += s.InputsDropped.Load()
}

// Server accepts WebSocket connections and runs the protocol on them.
type Server struct {
	cfg      ServerConfig
	handler  Handler
	log      *slog.Logger
	upgrader ws.Upgrader
	stats    ServerStats
	epoch    time.Time // pings carry the time since epoch, to measure RTT
	recent   disconnectLog

	// encoders serves replies, which are rare, and decoders the goroutines
	// that read for a connection for a while (a handshake, a request, a
	// reader goroutine): pooled rather than one per connection, whose memory
	// matters at ten thousand connections.
	encoders sync.Pool
	decoders sync.Pool

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*Conn]struct{}
	retired   Totals // the traffic of closed connections
	closed    bool
	wg        sync.WaitGroup // connection goroutines
	nextID    atomic.Uint64

	// The pinger asks every connection for its heartbeat ping in turn, so
	// that idle connections need no goroutine or timer of their own. The
	// first Serve starts it and the pollers (pingerOnce).
	pollers    []*poller
	polling    atomic.Pointer[[]*poller] // pollers, for readPending, once made
	readOnTick bool                      // the pollers read on the handler's ticks
	readEvery  time.Duration             // ReadOnTick: the longest a poller goes without reading
	pingerOnce sync.Once
	stopPinger chan struct{}
	pingerDone chan struct{}
}

// NewServer returns a Server that hands connections to h.
func NewServer(cfg ServerConfig, h Handler) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errors.New("netcode: nil Handler")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:        cfg,
		handler:    h,
		log:        log,
		listeners:  make(map[net.Listener]struct{}),
		conns:      make(map[*Conn]struct{}),
		epoch:      time.Now(),
		stopPinger: make(chan struct{}),
		pingerDone: make(chan struct{}),
		recent:     disconnectLog{ring: make([]Disconnect, cfg.DisconnectLog)},
		readEvery:  min(time.Second/time.Duration(cfg.TickRate), maxReadWait),
	}
	if tr, ok := h.(TickReader); ok && cfg.ReadMode == ReadOnTick && cfg.Pollers > 0 {
		s.readOnTick = true
		tr.ReadBeforeTicks(s.readPending)
	}
	s.encoders.New = func() any { return wire.NewEncoder() }
	s.decoders.New = func() any { return &decodeState{dec: wire.NewDecoder()} }
	path := []byte(cfg.Path)
	s.upgrader = ws.Upgrader{
		OnRequest: func(uri []byte) error {
			if i := bytes.IndexByte(uri, '?'); i >= 0 {
				uri = uri[:i]
			}
			if !bytes.Equal(uri, path) {
				return ws.RejectConnectionError(ws.RejectionStatus(404), ws.RejectionReason("no WebSocket endpoint at this path"))
			}
			return nil
		},
	}
	return s, nil
}

// Stats returns the server's counters.
func (s *Server) Stats() *ServerStats { return &s.stats }

// Serve accepts connections on ln until Shutdown, then returns
// ErrServerClosed. It closes ln when it returns.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	s.pingerOnce.Do(func() {
		for range s.cfg.Pollers {
			p, err := newPoller(s)
			if err != nil {
				s.log.Warn("reading with a goroutine per connection", "err", err)
				break
			}
			s.pollers = append(s.pollers, p)
		}
		pollers := s.pollers
		s.polling.Store(&pollers)
		go s.pinger()
	})
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errTooManyFiles) {
				// Out of file descriptors or a transient failure: back
				// off rather than spin.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; backing off", "err", err, "backoff", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("netcode: accept: %w", err)
		}
		backoff = 0
		s.stats.Accepted.Add(1)
		if !s.add(nc) {
			nc.Close()
		}
	}
}

func (s *Server) add(nc net.Conn) bool {
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true) // snapshots are latency-bound
		if s.cfg.WriteBuffer > 0 {
			_ = tc.SetWriteBuffer(s.cfg.WriteBuffer)
		}
	}
	id := s.nextID.Add(1)
	c := &Conn{
		srv:        s,
		nc:         nc,
		remote:     nc.RemoteAddr(),
		id:         id,
		opened:     time.Now(),
		closing:    make(chan struct{}),
		writerDone: make(chan struct{}),
		space:      make(chan struct{}, 1),
		// Buffered: a client frame's header, mask and payload then cost one
		// read syscall rather than three. Small, since inputs are small.
		br:       bufio.NewReaderSize(nc, readBuffer),
		inputs:   newTokenBucket(s.cfg.InputRate, s.cfg.InputBurst),
		requests: newTokenBucket(s.cfg.RequestRate, s.cfg.RequestBurst),
		raw:      newRawIO(nc),
	}
	c.rd = wsframe.NewReader(c.br, s.cfg.MaxMessageSize, true)
	if c.raw != nil {
		c.poll = s.pickPoller(id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	go c.serve()
	return true
}

// decodeState is what decoding a client message needs: the decoder and the
// message it decodes into. Whoever reads for a connection holds one: a
// poller its own, other goroutines one from the Server's pool.
type decodeState struct {
	dec *wire.Decoder
	msg wire.ClientMessage
}

func (s *Server) getDecoder() *decodeState { return s.decoders.Get().(*decodeState) }

func (s *Server) putDecoder(ds *decodeState) {
	ds.msg = wire.ClientMessage{} // let go of what the last message held
	ds.dec.Release()
	s.decoders.Put(ds)
}

// readPending has every poller read what its connections sent, and waits
// for them (ReadOnTick). The Handler calls it before each tick.
func (s *Server) readPending() {
	ps := s.polling.Load()
	if ps == nil {
		return
	}
	for _, p := range *ps {
		p.requestPass()
	}
	for _, p := range *ps {
		p.awaitPass()
	}
}

// pickPoller spreads connections over the pollers, passing over any whose
// epoll_wait failed; nil (a reader goroutine) if there is none left.
func (s *Server) pickPoller(id uint64) *poller {
	for i := range len(s.pollers) {
		if p := s.pollers[(id+uint64(i))%uint64(len(s.pollers))]; p.alive() {
			return p
		}
	}
	return nil
}

func (s *Server) remove(c *Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.retired.add(&c.stats)
	s.mu.Unlock()
	s.wg.Done()
}

// Totals returns the traffic counters summed over every connection, open and
// closed. It visits each open connection: call it for a scrape, not a tick.
func (s *Server) Totals() Totals {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.retired
	for c := range s.conns {
		t.add(&c.stats)
	}
	return t
}

// RecentDisconnects returns the last ServerConfig.DisconnectLog connections
// that ended, newest first.
func (s *Server) RecentDisconnects() []Disconnect { return s.recent.recent() }

// Conns returns the number of open connections.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// heartbeatSlack is how often the pinger looks at each connection: pings
// go out PingInterval to PingInterval+heartbeatSlack apart, and a silent
// client is closed HeartbeatTimeout to HeartbeatTimeout+heartbeatSlack
// after its last frame, in every read mode (PROTOCOL.md, section 14).
func (s *Server) heartbeatSlack() time.Duration { return max(s.cfg.PingInterval/4, time.Millisecond) }

// heartbeatDeadline is a reader goroutine's read deadline, renewed at now.
func (s *Server) heartbeatDeadline(now time.Time) time.Time {
	return now.Add(s.cfg.HeartbeatTimeout + s.heartbeatSlack())
}

// pinger is the server's heartbeat goroutine: a few times per PingInterval
// it has each connection whose last ping is a PingInterval old send one.
// Serve starts it; Shutdown stops it and waits for it.
func (s *Server) pinger() {
	defer close(s.pingerDone)
	t := time.NewTicker(s.heartbeatSlack())
	defer t.Stop()
	var conns []*Conn
	for {
		select {
		case <-s.stopPinger:
			return
		case now := <-t.C:
			s.mu.Lock()
			conns = conns[:0]
			for c := range s.conns {
				conns = append(conns, c)
			}
			s.mu.Unlock()
			for _, c := range conns {
				c.pingIfDue(now)
				c.heartbeatDue(now)
			}
			clear(conns) // let closed connections go
		}
	}
}

// Shutdown stops accepting, closes every connection with 1001 and reason,
// and waits for their goroutines (and so their Sessions' Closed) to finish or
// for ctx to end. It is safe to call more than once.
func (s *Server) Shutdown(ctx context.Context, reason string) error {
	s.mu.Lock()
	wasClosed := s.closed
	s.closed = true
	for ln := range s.listeners {
		ln.Close()
	}
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close(wire.CloseGoingAway, reason)
	}
	if !wasClosed {
		s.pingerOnce.Do(func() { close(s.pingerDone) }) // never started: nothing to wait for
		close(s.stopPinger)
	}
	<-s.pingerDone
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		for _, p := range s.pollers {
			p.stop() // every connection is finished: no poller has work left
		}
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("netcode: shutdown: %w", ctx.Err())
	}
}
