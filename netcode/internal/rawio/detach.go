//go:build unix

package rawio

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

// Conn is a socket taken out of the Go runtime's poller (Detach). Go's
// poller gets an edge-triggered event for every packet on a socket it
// knows, read or acknowledged, whether or not anyone waits on it: with
// thousands of sockets that somebody else watches with epoll anyway, those
// events are a measurable share of a process's CPU. A Conn does its own
// syscalls on a duplicate of the descriptor, which stays non-blocking:
//
//   - WriteNonBlocking and ReadNonBlocking never wait;
//   - Write writes all of b, retrying a full socket after short sleeps until
//     the write deadline (absolute, as with a net.Conn), so that no thread
//     blocks on a socket whose peer stopped reading;
//   - Read is not supported: the owner's epoll says when to ReadNonBlocking.
//
// The owner must take the descriptor out of its epoll set before Close: a
// closed number may name another socket next. Writes come from one
// goroutine at a time (the caller serializes them); Shutdown and Close may
// come from any goroutine.
type Conn struct {
	fd       int          // valid until Close
	deadline atomic.Int64 // write deadline, Unix ns; 0 for none
	local    net.Addr
	remote   net.Addr

	mu     sync.RWMutex // read-held for each syscall on fd, so Close cannot free the number under one
	closed bool
}

// Full-socket retries back off from 1 ms to 16 ms: a socket stays full only
// while its peer does not read.
const (
	retryFirst = time.Millisecond
	retryMax   = 16 * time.Millisecond
)

// ErrNoRead: a detached socket is read with ReadNonBlocking only.
var ErrNoRead = errors.New("rawio: a detached socket is read by its poller")

// Detach duplicates nc's descriptor into a Conn and closes nc, which takes
// the socket out of the Go runtime's poller; the socket itself stays open
// in the duplicate. The caller must make sure no one else uses nc meanwhile.
// The Conn's write deadline starts as deadline.
func Detach(nc net.Conn, deadline time.Time) (*Conn, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil, errors.New("rawio: detach: not a socket")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("rawio: detach: %w", err)
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
		return nil, fmt.Errorf("rawio: detach: %w", err) // closed meanwhile
	}
	if dupErr != nil {
		return nil, fmt.Errorf("rawio: detach: dup: %w", dupErr)
	}
	c := &Conn{fd: fd, local: nc.LocalAddr(), remote: nc.RemoteAddr()}
	_ = c.SetWriteDeadline(deadline)
	// O_NONBLOCK belongs to the socket, which the duplicate shares.
	_ = nc.Close()
	return c, nil
}

// FD returns the descriptor, or -1 once the Conn is closed.
func (c *Conn) FD() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return -1
	}
	return c.fd
}

// WriteNonBlocking writes what the socket takes now; EAGAIN says it takes
// nothing.
func (c *Conn) WriteNonBlocking(b []byte) (int, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	// A peer that reset makes this fail with EPIPE: the Go runtime ignores
	// SIGPIPE for writes that do not go through os.File's stdout and stderr.
	n, err := syscall.Write(c.fd, b)
	return max(n, 0), err
}

// ReadNonBlocking reads what is there: n == 0 with a nil error is the
// peer's EOF, EAGAIN that nothing is.
func (c *Conn) ReadNonBlocking(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	for {
		n, _, e := syscall.Syscall6(syscall.SYS_RECVFROM, uintptr(c.fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
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

// HasData reports whether the socket has bytes to read, or an EOF or
// error to report, without taking any.
func (c *Conn) HasData() bool {
	var b [1]byte
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return false
	}
	n, _, e := syscall.Syscall6(syscall.SYS_RECVFROM, uintptr(c.fd), uintptr(unsafe.Pointer(&b[0])), 1,
		syscall.MSG_DONTWAIT|syscall.MSG_PEEK, 0, 0)
	return e == 0 && n > 0
}

// Read is not supported: see ReadNonBlocking.
func (c *Conn) Read([]byte) (int, error) { return 0, ErrNoRead }

// Write writes all of b, or fails once the write deadline passes.
func (c *Conn) Write(b []byte) (int, error) {
	written := 0
	wait := retryFirst
	for written < len(b) {
		// The backoff is not reset by progress: a socket that drains slowly
		// would otherwise cost a wake-up and a syscall a millisecond.
		n, err := c.WriteNonBlocking(b[written:])
		written += n
		switch {
		case err == nil, errors.Is(err, syscall.EINTR):
			continue
		case !errors.Is(err, syscall.EAGAIN):
			return written, fmt.Errorf("rawio: write: %w", err)
		}
		left := time.Duration(math.MaxInt64)
		if dl := c.deadline.Load(); dl != 0 {
			left = time.Until(time.Unix(0, dl))
		}
		if left <= 0 {
			return written, fmt.Errorf("rawio: write: %w", os.ErrDeadlineExceeded)
		}
		time.Sleep(min(wait, left))
		wait = min(2*wait, retryMax)
	}
	return written, nil
}

// Shutdown shuts both directions: later writes fail at once and the owner's
// epoll reads an EOF, while the descriptor's number stays allocated.
func (c *Conn) Shutdown() {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.closed {
		_ = syscall.Shutdown(c.fd, syscall.SHUT_RDWR)
	}
}

// CloseWrite sends the peer an EOF after what was written.
func (c *Conn) CloseWrite() error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return net.ErrClosed
	}
	return syscall.Shutdown(c.fd, syscall.SHUT_WR)
}

// Close closes the descriptor.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	return syscall.Close(c.fd)
}

// SetWriteDeadline sets when a Write stops retrying; zero for never.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if t.IsZero() {
		c.deadline.Store(0)
	} else {
		c.deadline.Store(t.UnixNano())
	}
	return nil
}

// SetDeadline sets the write deadline: reads do not wait.
func (c *Conn) SetDeadline(t time.Time) error { return c.SetWriteDeadline(t) }

// SetReadDeadline does nothing: reads do not wait, and the owner times its
// own silences.
func (c *Conn) SetReadDeadline(time.Time) error { return nil }

// LocalAddr returns the socket's local address.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }
