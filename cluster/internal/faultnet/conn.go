package faultnet

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
)

// streamConn is a stream dialled by a Transport. The Network closes it when
// its link is cut; Read and Write also check the link on every call, so a
// cut stream fails with ErrCut rather than with whatever error the closed
// socket gives. Errors of a stream that is not cut, io.EOF included, are
// passed through unchanged, as net.Conn users expect.
type streamConn struct {
	net.Conn
	owner  *Transport
	local  string // canonical address of the dialling node
	remote string // canonical address of the dialled node

	wasCut    atomic.Bool
	closeOnce sync.Once
	closeErr  error // written inside closeOnce
}

func (c *streamConn) Read(b []byte) (int, error) {
	if err := c.check("read"); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(b)
	if err != nil {
		if cerr := c.check("read"); cerr != nil {
			return n, cerr
		}
	}
	return n, err
}

func (c *streamConn) Write(b []byte) (int, error) {
	if err := c.check("write"); err != nil {
		return 0, err
	}
	n, err := c.Conn.Write(b)
	if err != nil {
		if cerr := c.check("write"); cerr != nil {
			return n, cerr
		}
	}
	return n, err
}

// Close closes the stream and stops tracking it. It is safe to call more
// than once.
func (c *streamConn) Close() error {
	c.closeOnce.Do(func() {
		c.owner.net.unregister(c)
		c.closeErr = c.Conn.Close()
	})
	return c.closeErr
}

// check returns an error wrapping ErrCut, and closes the stream, if the
// link is cut or was cut before.
func (c *streamConn) check(op string) error {
	if !c.wasCut.Load() && !c.owner.net.isCut(c.local, c.remote) {
		return nil
	}
	c.cut()
	return fmt.Errorf("faultnet: %s %s -> %s: %w", op, c.local, c.remote, ErrCut)
}

// cut marks the stream cut, counts it once, and closes it. Closing also
// ends the accepting side's stream, which faultnet cannot identify.
func (c *streamConn) cut() {
	if c.wasCut.CompareAndSwap(false, true) {
		c.owner.streamsCut.Add(1)
	}
	_ = c.Close()
}
