//go:build unix

// Package rawio reads and writes a Go socket without waiting: Go's sockets
// are non-blocking underneath, so a call either goes through (in part or
// whole) or fails with EAGAIN at once. The socket stays Go's (its deadlines
// and Close still work); callers that wait for readiness themselves (an
// epoll set) use this to read, and writers use it to try a write before
// handing off to a goroutine that may wait.
//
// Detach goes further: it takes a socket out of the Go runtime's poller
// altogether, for a process that watches thousands of sockets with its own
// epoll (see Conn).
//
// Neither FD nor Conn has goroutines. Their reads come from one goroutine
// at a time, and so do their writes; a read and a write may run
// concurrently.
package rawio

import (
	"net"
	"syscall"
)

// FD does non-blocking reads and writes on one socket. Its callbacks are
// bound once, and their arguments and results travel in fields, so a call
// does not allocate.
type FD struct {
	rc syscall.RawConn

	wfn  func(fd uintptr) bool
	wbuf []byte
	wn   int
	werr error

	rfn  func(fd uintptr) bool
	rbuf []byte
	rn   int
	rerr error
}

// New returns an FD for nc, or nil if nc has no descriptor (a net.Pipe).
func New(nc net.Conn) *FD {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	f := &FD{rc: rc}
	f.wfn = f.write
	f.rfn = f.read
	return f
}

func (f *FD) write(fd uintptr) bool {
	f.wn, f.werr = syscall.Write(int(fd), f.wbuf)
	return true // never wait for writability: the caller hands off instead
}

// WriteNonBlocking writes what the socket takes now; EAGAIN says it takes
// nothing.
func (f *FD) WriteNonBlocking(b []byte) (int, error) {
	f.wbuf = b
	err := f.rc.Write(f.wfn)
	f.wbuf = nil
	if err != nil {
		return 0, err // the connection is closed
	}
	return max(f.wn, 0), f.werr
}

func (f *FD) read(fd uintptr) bool {
	f.rn, f.rerr = syscall.Read(int(fd), f.rbuf)
	return true // never wait for readability: the caller's epoll says when
}

// ReadNonBlocking reads what is there: n == 0 with a nil error is the
// peer's EOF, EAGAIN that nothing is.
func (f *FD) ReadNonBlocking(b []byte) (int, error) {
	f.rbuf = b
	err := f.rc.Read(f.rfn)
	f.rbuf = nil
	if err != nil {
		return 0, err // the connection is closed, or its read deadline passed
	}
	if f.rerr != nil {
		return 0, f.rerr
	}
	return f.rn, nil
}

// FD returns the socket's descriptor, or -1 once it is closed. The number
// stays the socket's until the connection is closed, which the caller
// controls.
func (f *FD) FD() int {
	fd := -1
	if err := f.rc.Control(func(s uintptr) { fd = int(s) }); err != nil {
		return -1
	}
	return fd
}
