//go:build unix

package netcode

import (
	"net"

	"github.com/tickroom/tickroom/netcode/internal/rawio"
)

// rawIO reads and writes a socket without waiting (package rawio).
type rawIO interface {
	WriteNonBlocking(b []byte) (int, error)
	ReadNonBlocking(b []byte) (int, error)
	FD() int
}

func newRawIO(nc net.Conn) rawIO {
	if f := rawio.New(nc); f != nil {
		return f
	}
	return nil // not a socket: the writer goroutine does every write
}
