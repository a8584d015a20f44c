//go:build unix

package netcode

import (
	"net"
	"syscall"
)

// rawWriter writes to a socket without waiting: Go's sockets are
// non-blocking underneath, so a write either goes through (in part or
// whole) or fails with EAGAIN at once.
type rawWriter interface {
	writeNonBlocking(b []byte) (int, error)
}

// fdWriter is a rawWriter over a syscall.RawConn. Its callback is bound once,
// and its arguments and results travel in fields, so a write does not
// allocate; its owner (the socket's writer) uses it from one goroutine at a
// time.
type fdWriter struct {
	rc  syscall.RawConn
	fn  func(fd uintptr) bool
	buf []byte
	n   int
	err error
}

func newRawWriter(nc net.Conn) rawWriter {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	w := &fdWriter{rc: rc}
	w.fn = w.write
	return w
}

func (w *fdWriter) write(fd uintptr) bool {
	w.n, w.err = syscall.Write(int(fd), w.buf)
	return true // never wait for writability: the caller hands off instead
}

func (w *fdWriter) writeNonBlocking(b []byte) (int, error) {
	w.buf = b
	err := w.rc.Write(w.fn)
	w.buf = nil
	if err != nil {
		return 0, err // the connection is closed
	}
	return max(w.n, 0), w.err
}
