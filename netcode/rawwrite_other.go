//go:build !unix

package netcode

import "net"

type rawWriter interface {
	writeNonBlocking(b []byte) (int, error)
}

// newRawWriter returns nil: without non-blocking writes, every snapshot goes
// through the connection's writer goroutine.
func newRawWriter(net.Conn) rawWriter { return nil }
