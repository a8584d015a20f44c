package client

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// detach takes a polled connection's socket out of the Go runtime's
// poller: it keeps a duplicate of the descriptor and closes Go's. Go's
// poller gets an edge-triggered event for every packet on a socket it
// knows, read or acknowledged, whether or not anyone waits on it; with
// thousands of clients read by a Poller, handling those events cost a
// tenth of the process's CPU. The duplicate is blocking for writes, with
// WriteTimeout as the kernel's send timeout, and the poller reads it with
// MSG_DONTWAIT. It runs on the client's goroutine, before the poller
// reads the connection; c.mu keeps writers off the socket meanwhile.
func (c *Client) detach(pc *polled) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	conn := pc.conn
	sc, ok := conn.nc.(syscall.Conn)
	if !ok {
		return errors.New("client: poller: the connection is not a socket")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return fmt.Errorf("client: poller: %w", err)
	}
	fd, dupErr := -1, error(nil)
	if err := rc.Control(func(s uintptr) {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, s, syscall.F_DUPFD_CLOEXEC, 0)
		if e != 0 {
			dupErr = e
			return
		}
		fd = int(r)
	}); err != nil {
		return fmt.Errorf("client: poller: %w", err)
	}
	if dupErr != nil {
		return fmt.Errorf("client: poller: dup: %w", dupErr)
	}
	tv := syscall.NsecToTimeval(c.cfg.WriteTimeout.Nanoseconds())
	if err := errors.Join(
		syscall.SetNonblock(fd, false),
		syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, &tv),
	); err != nil {
		syscall.Close(fd)
		return fmt.Errorf("client: poller: %w", err)
	}
	d := &detachedConn{fd: fd, local: conn.nc.LocalAddr(), remote: conn.nc.RemoteAddr()}
	// Go's descriptor goes, and with it the runtime's registration; the
	// socket lives on in the duplicate.
	_ = conn.nc.Close()
	conn.nc = d
	pc.fd = fd
	return nil
}

// recvDontWait reads what the socket has without waiting; EAGAIN says
// nothing is there.
func recvDontWait(fd int, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	for {
		n, _, e := syscall.Syscall6(syscall.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
			syscall.MSG_DONTWAIT, 0, 0)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(n), nil
	}
}

// detachedConn is a polled connection's socket after detach: writes block
// (up to the send timeout), reads are the poller's, and deadlines are the
// send timeout's business.
type detachedConn struct {
	mu     sync.Mutex // guards fd against Close during a write
	fd     int
	local  net.Addr
	remote net.Addr
}

var errDetachedRead = errors.New("client: a polled connection is read by its poller")

func (d *detachedConn) Read([]byte) (int, error) { return 0, errDetachedRead }

// Write writes all of b. The caller serializes writes (c.mu).
func (d *detachedConn) Write(b []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fd < 0 {
		return 0, net.ErrClosed
	}
	written := 0
	for written < len(b) {
		n, err := syscall.Write(d.fd, b[written:])
		if n > 0 {
			written += n
		}
		switch {
		case err == nil:
		case errors.Is(err, syscall.EINTR):
		case errors.Is(err, syscall.EAGAIN):
			return written, fmt.Errorf("client: write: %w", os.ErrDeadlineExceeded) // the send timeout passed
		default:
			return written, fmt.Errorf("client: write: %w", err)
		}
	}
	return written, nil
}

// Close closes the socket. The client calls it after the poller has taken
// the socket out of its epoll set.
func (d *detachedConn) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fd < 0 {
		return nil
	}
	err := syscall.Close(d.fd)
	d.fd = -1
	return err
}

func (d *detachedConn) LocalAddr() net.Addr              { return d.local }
func (d *detachedConn) RemoteAddr() net.Addr             { return d.remote }
func (d *detachedConn) SetDeadline(time.Time) error      { return nil }
func (d *detachedConn) SetReadDeadline(time.Time) error  { return nil }
func (d *detachedConn) SetWriteDeadline(time.Time) error { return nil }
