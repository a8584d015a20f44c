//go:build unix

package netcode

import (
	"net"
	"syscall"
)

// rawIO reads and writes a socket without waiting: Go's sockets are
// non-blocking underneath, so a call either goes through (in part or whole)
// or fails with EAGAIN at once.
type rawIO interface {
	writeNonBlocking(b []byte) (int, error)
	// readNonBlocking reads what is there: n == 0 with a nil error is the
	// peer's EOF, EAGAIN that nothing is.
	readNonBlocking(b []byte) (int, error)
	// fd returns the socket's descriptor, or -1 once it is closed. It stays
	// valid until the connection is closed, which the caller controls.
	fd() int
}

// fdIO is a rawIO over a syscall.RawConn. Its callbacks are bound once, and
// their arguments and results travel in fields, so a call does not
// allocate. Writes come from the socket's writer and reads from the
// connection's reader, one goroutine at a time each, so each has its own
// fields.
type fdIO struct {
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

func newRawIO(nc net.Conn) rawIO {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	w := &fdIO{rc: rc}
	w.wfn = w.write
	w.rfn = w.read
	return w
}

func (w *fdIO) write(fd uintptr) bool {
	w.wn, w.werr = syscall.Write(int(fd), w.wbuf)
	return true // never wait for writability: the caller hands off instead
}

func (w *fdIO) writeNonBlocking(b []byte) (int, error) {
	w.wbuf = b
	err := w.rc.Write(w.wfn)
	w.wbuf = nil
	if err != nil {
		return 0, err // the connection is closed
	}
	return max(w.wn, 0), w.werr
}

func (w *fdIO) read(fd uintptr) bool {
	w.rn, w.rerr = syscall.Read(int(fd), w.rbuf)
	return true // never wait for readability: the poller says when to read
}

func (w *fdIO) readNonBlocking(b []byte) (int, error) {
	w.rbuf = b
	err := w.rc.Read(w.rfn)
	w.rbuf = nil
	if err != nil {
		return 0, err // the connection is closed
	}
	if w.rerr != nil {
		return 0, w.rerr
	}
	return w.rn, nil
}

func (w *fdIO) fd() int {
	fd := -1
	if err := w.rc.Control(func(s uintptr) { fd = int(s) }); err != nil {
		return -1
	}
	return fd
}
