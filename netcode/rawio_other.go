//go:build !unix

package netcode

import "net"

type rawIO interface {
	WriteNonBlocking(b []byte) (int, error)
	ReadNonBlocking(b []byte) (int, error)
	FD() int
}

// newRawIO returns nil: without non-blocking writes, every snapshot goes
// through the connection's writer goroutine, and every connection has a
// reader goroutine.
func newRawIO(net.Conn) rawIO { return nil }
