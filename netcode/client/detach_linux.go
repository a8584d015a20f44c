package client

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// detach takes a polled connection's socket out of the Go runtime's
// poller: it keeps a duplicate of the descriptor and closes Go's. Go's
// poller gets an edge-triggered event for every packet on a socket it
// knows, read or acknowledged, whether or not anyone waits on it; with
// thousands of clients read by a Poller, handling those events cost a
// tenth of the process's CPU. The duplicate stays non-blocking: the poller
// reads it with MSG_DONTWAIT, and a write that finds the socket full
// retries after short sleeps until its deadline (detachedConn.Write). It
// runs on the client's goroutine before the poller reads the connection,
// holding the write lock so that no write sees the swap half done.
func (c *Client) detach(pc *polled) error {
	conn := pc.conn
	conn.wmu.Lock()
	defer conn.wmu.Unlock()
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
		return fmt.Errorf("client: poller: %w", err) // closed by a failed write meanwhile
	}
	if dupErr != nil {
		return fmt.Errorf("client: poller: dup: %w", dupErr)
	}
	d := &detachedConn{fd: fd, local: conn.nc.LocalAddr(), remote: conn.nc.RemoteAddr()}
	_ = d.SetWriteDeadline(conn.writeDeadline)
	// Go's descriptor goes, and with it the runtime's registration; the
	// socket lives on in the duplicate (O_NONBLOCK is the socket's, shared).
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

// detachedConn is a polled connection's socket after detach. Its writes
// never block a thread: a full socket is retried after short sleeps until
// the write deadline, which is absolute, as with a net.Conn. Reads are the
// poller's.
type detachedConn struct {
	fd       int          // valid until Close
	deadline atomic.Int64 // write deadline, Unix ns; 0 for none
	local    net.Addr
	remote   net.Addr

	mu     sync.Mutex // held for each syscall on fd, so Close cannot free the number under one
	closed bool
}

// Full-socket retries back off from 1 ms to 16 ms: a socket stays full only
// while the server does not read, and the bots write thousands of them.
const (
	retryFirst = time.Millisecond
	retryMax   = 16 * time.Millisecond
)

var errDetachedRead = errors.New("client: a polled connection is read by its poller")

func (d *detachedConn) Read([]byte) (int, error) { return 0, errDetachedRead }

// Write writes all of b, or fails once the deadline passes. The caller
// serializes writes (connection.wmu).
func (d *detachedConn) Write(b []byte) (int, error) {
	written := 0
	wait := retryFirst
	for written < len(b) {
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			return written, net.ErrClosed
		}
		n, err := syscall.Write(d.fd, b[written:])
		d.mu.Unlock()
		if n > 0 {
			written += n
			wait = retryFirst
		}
		switch {
		case err == nil, errors.Is(err, syscall.EINTR):
			continue
		case !errors.Is(err, syscall.EAGAIN):
			return written, fmt.Errorf("client: write: %w", err)
		}
		left := time.Duration(math.MaxInt64)
		if dl := d.deadline.Load(); dl != 0 {
			left = time.Until(time.Unix(0, dl))
		}
		if left <= 0 {
			return written, fmt.Errorf("client: write: %w", os.ErrDeadlineExceeded)
		}
		time.Sleep(min(wait, left))
		wait = min(2*wait, retryMax)
	}
	return written, nil
}

// shutdown makes later writes fail and the poller read an EOF, without
// freeing the descriptor's number (which the epoll set still names).
func (d *detachedConn) shutdown() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.closed {
		_ = syscall.Shutdown(d.fd, syscall.SHUT_RDWR)
	}
}

// Close closes the socket. The client calls it after the poller has taken
// the socket out of its epoll set.
func (d *detachedConn) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	return syscall.Close(d.fd)
}

func (d *detachedConn) SetWriteDeadline(t time.Time) error {
	if t.IsZero() {
		d.deadline.Store(0)
	} else {
		d.deadline.Store(t.UnixNano())
	}
	return nil
}

func (d *detachedConn) SetDeadline(t time.Time) error   { return d.SetWriteDeadline(t) }
func (d *detachedConn) SetReadDeadline(time.Time) error { return nil } // the poller's sweep and Close's timer
func (d *detachedConn) LocalAddr() net.Addr             { return d.local }
func (d *detachedConn) RemoteAddr() net.Addr            { return d.remote }
