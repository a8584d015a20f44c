package client

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/gobwas/ws"

	"github.com/tickroom/tickroom/netcode/internal/wsframe"
	"github.com/tickroom/tickroom/netcode/wire"
)

// This file holds dialling: the WebSocket upgrade, the Hello and Welcome,
// and installing a new connection.

// Dial connects to a tickroom server at url (ws://host:port/ws), performs the
// handshake and starts the client's goroutine. url becomes the client's
// current host; Config.Seeds are where it turns when that host is gone.
func Dial(ctx context.Context, url string, cfg Config) (*Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		url:     url,
		cfg:     cfg,
		log:     log,
		done:    make(chan struct{}),
		closeCh: make(chan struct{}),
		events:  make(chan Event, cfg.EventBuffer),
		pending: make(map[uint32]waiter),
		pings:   make(map[int64]waiter),
	}
	c.closeCtx, c.cancelClose = context.WithCancel(context.Background())
	conn, w, err := c.dial(ctx, url)
	if err != nil {
		c.cancelClose()
		return nil, err
	}
	c.conn, c.welcome, c.host = conn, w, url
	go c.run(conn)
	return c, nil
}

// dial connects to url and performs the Hello/Welcome handshake. The
// connection belongs to the caller until it is installed.
func (c *Client) dial(ctx context.Context, url string) (*connection, wire.Welcome, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	nc, br, _, err := ws.Dialer{}.Dial(ctx, url)
	if err != nil {
		return nil, wire.Welcome{}, fmt.Errorf("client: dial %s: %w", url, err)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	// Buffered, so a snapshot's header and payload cost one read syscall.
	if br == nil {
		br = bufio.NewReaderSize(nc, 1024)
	} // else buffered already, and holds what the server sent right after the handshake
	conn := &connection{
		nc:      nc,
		br:      br,
		rd:      wsframe.NewReader(br, c.cfg.MaxMessageSize, false),
		enc:     wire.NewEncoder(),
		leaving: make(chan struct{}),
	}
	deadline, _ := ctx.Deadline()
	_ = nc.SetDeadline(deadline)
	fail := func(err error) (*connection, wire.Welcome, error) {
		nc.Close()
		return nil, wire.Welcome{}, err
	}
	if err := c.writeTo(conn, conn.enc.Hello(wire.Hello{Version: wire.Version, Client: c.cfg.Name})); err != nil {
		return fail(fmt.Errorf("client: send hello: %w", err))
	}
	dec := wire.NewDecoder()
	var m wire.ServerMessage
	for {
		op, p, err := conn.rd.Next()
		if err != nil {
			return fail(fmt.Errorf("client: handshake with %s: %w", url, err))
		}
		switch op {
		case ws.OpClose:
			code, reason, _ := wsframe.ParseClose(p)
			return fail(fmt.Errorf("client: handshake with %s: server closed: %d %s", url, code, reason))
		case ws.OpBinary:
		default:
			continue
		}
		if err := dec.DecodeServer(p, &m); err != nil {
			return fail(fmt.Errorf("client: handshake with %s: %w", url, err))
		}
		switch m.Type {
		case wire.TypeWelcome:
			_ = nc.SetDeadline(time.Time{})
			conn.writeDeadline = time.Time{} // the next write sets its own
			if c.cfg.Poller != nil {
				if err := c.cfg.Poller.prepare(c, conn); err != nil {
					return fail(err)
				}
			}
			return conn, m.Welcome, nil
		case wire.TypeError:
			return fail(fmt.Errorf("client: handshake with %s: %w", url, &wire.ErrorReply{Code: m.Error.Code, Message: m.Error.Message}))
		}
	}
}

// install makes conn, connected to url, the client's connection. It runs
// on the client's goroutine, which reads conn next.
func (c *Client) install(conn *connection, w wire.Welcome, url string) {
	c.mu.Lock()
	c.conn, c.welcome, c.host = conn, w, url
	c.mu.Unlock()
	c.resetState()
}

// resetState forgets the tick the state is at, before a new connection is
// read: a server starts a new or resumed seat with a full snapshot. Only
// the client's goroutine calls it, as only it applies snapshots.
func (c *Client) resetState() {
	c.stateMu.Lock()
	c.state.Tick = 0
	c.stateMu.Unlock()
}
