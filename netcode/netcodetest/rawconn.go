// Package netcodetest helps test code that speaks the tickroom protocol: a
// RawConn speaks it frame by frame, so tests can send what no well-behaved
// client would (text frames, malformed MessagePack, oversized frames) and
// read exactly what the server answers.
//
// A RawConn is used by one goroutine, the test's.
package netcodetest

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/tickroom/tickroom/netcode/internal/wsframe"
	"github.com/tickroom/tickroom/netcode/wire"
)

// RawConn is a client WebSocket connection driven frame by frame.
type RawConn struct {
	t   testing.TB
	NC  net.Conn
	rd  *wsframe.Reader
	Enc *wire.Encoder
	dec *wire.Decoder
	Msg wire.ServerMessage
}

// Dial opens a WebSocket connection to url without the Hello; the
// connection is closed when the test ends.
func Dial(t testing.TB, url string) *RawConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	nc, br, _, err := ws.Dialer{}.Dial(ctx, url)
	if err != nil {
		t.Fatalf("netcodetest: dial %s: %v", url, err)
	}
	var src io.Reader = nc
	if br != nil {
		src = bufio.NewReader(io.MultiReader(br, nc))
	}
	c := &RawConn{t: t, NC: nc, rd: wsframe.NewReader(src, 1<<20, false), Enc: wire.NewEncoder(), dec: wire.NewDecoder()}
	t.Cleanup(func() { nc.Close() })
	return c
}

// DialHello dials and completes the Hello/Welcome handshake.
func DialHello(t testing.TB, url string) *RawConn {
	t.Helper()
	c := Dial(t, url)
	c.Send(c.Enc.Hello(wire.Hello{Version: wire.Version, Client: "netcodetest"}))
	c.Expect(wire.TypeWelcome)
	return c
}

// SendFrame writes one masked frame.
func (c *RawConn) SendFrame(op ws.OpCode, payload []byte) {
	c.t.Helper()
	mask := ws.NewMask()
	b := wsframe.AppendHeader(nil, op, len(payload), &mask)
	n := len(b)
	b = append(b, payload...)
	wsframe.MaskPayload(b[n:], mask)
	_ = c.NC.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.NC.Write(b); err != nil {
		c.t.Fatalf("netcodetest: write: %v", err)
	}
}

// Send writes one binary message.
func (c *RawConn) Send(msg []byte) { c.SendFrame(ws.OpBinary, msg) }

// ReadFrame returns the next frame (pings are answered and skipped) or the
// read error.
func (c *RawConn) ReadFrame(timeout time.Duration) (ws.OpCode, []byte, error) {
	deadline := time.Now().Add(timeout)
	for {
		_ = c.NC.SetReadDeadline(deadline)
		op, p, err := c.rd.Next()
		if err != nil {
			return 0, nil, err
		}
		if op == ws.OpPing {
			c.SendFrame(ws.OpPong, p)
			continue
		}
		return op, p, nil
	}
}

// ReadRawFrame returns the next frame, pings included, answering none: a
// client that stays silent.
func (c *RawConn) ReadRawFrame(timeout time.Duration) (ws.OpCode, []byte, error) {
	_ = c.NC.SetReadDeadline(time.Now().Add(timeout))
	return c.rd.Next()
}

// Next decodes the next server message into c.Msg, skipping snapshots unless
// they are what the test waits for, and fails the test on anything else.
func (c *RawConn) Next(skipSnapshots bool) *wire.ServerMessage {
	c.t.Helper()
	for {
		op, p, err := c.ReadFrame(5 * time.Second)
		if err != nil {
			c.t.Fatalf("netcodetest: read: %v", err)
		}
		if op == ws.OpClose {
			code, reason, _ := wsframe.ParseClose(p)
			c.t.Fatalf("netcodetest: unexpected close %d %q", code, reason)
		}
		if op != ws.OpBinary {
			c.t.Fatalf("netcodetest: unexpected opcode %v", op)
		}
		if err := c.dec.DecodeServer(p, &c.Msg); err != nil {
			c.t.Fatalf("netcodetest: decode: %v", err)
		}
		if skipSnapshots && c.Msg.Type == wire.TypeSnapshot {
			continue
		}
		return &c.Msg
	}
}

// Expect reads messages (skipping snapshots) until one of type t arrives,
// failing the test if another non-snapshot message comes first.
func (c *RawConn) Expect(t wire.Type) *wire.ServerMessage {
	c.t.Helper()
	m := c.Next(t != wire.TypeSnapshot)
	if m.Type != t {
		c.t.Fatalf("netcodetest: got message type %d, want %d (%+v)", m.Type, t, *m)
	}
	return m
}

// ExpectError reads the next non-snapshot message, which must be an Error.
func (c *RawConn) ExpectError() wire.Error {
	c.t.Helper()
	return c.Expect(wire.TypeError).Error
}

// ErrNoClose is returned by ExpectClose when the connection ended without a
// close frame.
var ErrNoClose = errors.New("netcodetest: connection ended without a close frame")

// ReadClose reads until the server's close frame and returns its code and
// reason; other messages are skipped.
func (c *RawConn) ReadClose(timeout time.Duration) (wire.CloseCode, string, error) {
	deadline := time.Now().Add(timeout)
	for {
		op, p, err := c.ReadFrame(time.Until(deadline))
		if err != nil {
			return 0, "", errors.Join(ErrNoClose, err)
		}
		if op == ws.OpClose {
			code, reason, err := wsframe.ParseClose(p)
			return wire.CloseCode(code), reason, err
		}
	}
}

// ExpectClose reads until the close frame and fails the test unless its code
// is want.
func (c *RawConn) ExpectClose(want wire.CloseCode) string {
	c.t.Helper()
	code, reason, err := c.ReadClose(5 * time.Second)
	if err != nil {
		c.t.Fatalf("netcodetest: waiting for close %d: %v", want, err)
	}
	if code != want {
		c.t.Fatalf("netcodetest: close code %d (%q), want %d", code, reason, want)
	}
	return reason
}
