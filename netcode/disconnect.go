package netcode

import (
	"errors"
	"io"
	"os"
	"sync"
	"time"

	"github.com/tickroom/tickroom/netcode/wire"
)

// DisconnectReason classifies why a connection ended, for metrics and for
// operators looking for abnormal drops.
type DisconnectReason uint8

// Disconnect reasons. A client that said goodbye is ReasonClientClosed;
// everything else is worth a look when it grows.
const (
	ReasonClientClosed     DisconnectReason = iota // the client closed with 1000, 1001 or no code
	ReasonClientError                              // the client closed with any other code
	ReasonLost                                     // the TCP connection ended (FIN or reset) without a close frame
	ReasonHeartbeatTimeout                         // nothing arrived within the heartbeat timeout
	ReasonSlowConsumer                             // the client did not drain its socket or queue
	ReasonKicked                                   // an operator removed the player
	ReasonReplaced                                 // the seat was resumed on another connection
	ReasonHandshakeFailed                          // the upgrade or the Hello failed
	ReasonRateLimited                              // the client flooded inputs
	ReasonProtocolError                            // a malformed, oversized or out-of-protocol frame
	ReasonShutdown                                 // the server shut down
	ReasonIOError                                  // a socket error
	ReasonOther                                    // the server closed it for another reason
	numReasons
)

var reasonNames = [numReasons]string{
	"client_closed", "client_error", "lost", "heartbeat_timeout", "slow_consumer",
	"kicked", "replaced", "handshake_failed", "rate_limited", "protocol_error",
	"shutdown", "io_error", "other",
}

// String returns the reason's snake_case name, as metrics label it.
func (r DisconnectReason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// DisconnectReasons returns every reason, in order.
func DisconnectReasons() []DisconnectReason {
	rs := make([]DisconnectReason, numReasons)
	for i := range rs {
		rs[i] = DisconnectReason(i)
	}
	return rs
}

// classify maps how a connection ended to its reason. welcomed says whether
// the protocol handshake completed.
func classify(cause error, welcomed bool) DisconnectReason {
	var ce *CloseError
	if !errors.As(cause, &ce) {
		switch {
		case !welcomed:
			return ReasonHandshakeFailed
		case errors.Is(cause, io.EOF), errors.Is(cause, io.ErrUnexpectedEOF), errors.Is(cause, errConnReset):
			// A reset is how a dead link or a killed client often ends
			// the connection: lost, like an EOF, not a socket fault.
			return ReasonLost
		case errors.Is(cause, os.ErrDeadlineExceeded):
			return ReasonSlowConsumer
		}
		return ReasonIOError
	}
	if ce.ByPeer {
		switch ce.Code {
		case 1006:
			if !welcomed {
				return ReasonHandshakeFailed
			}
			return ReasonLost
		case wire.CloseNormal, wire.CloseGoingAway, closeNoStatus:
			return ReasonClientClosed
		}
		return ReasonClientError
	}
	switch ce.Code {
	case wire.CloseHeartbeatTimeout:
		return ReasonHeartbeatTimeout
	case wire.CloseSlowConsumer:
		return ReasonSlowConsumer
	case wire.CloseKicked:
		return ReasonKicked
	case wire.CloseSessionReplaced:
		return ReasonReplaced
	case wire.CloseHandshakeTimeout, wire.CloseUnsupportedVersion:
		return ReasonHandshakeFailed
	case wire.CloseRateLimited:
		return ReasonRateLimited
	case wire.CloseProtocolError, wire.CloseUnsupportedData, wire.CloseInvalidPayload, wire.CloseMessageTooBig:
		if !welcomed {
			return ReasonHandshakeFailed
		}
		return ReasonProtocolError
	case wire.CloseGoingAway:
		return ReasonShutdown
	}
	return ReasonOther
}

// Disconnect describes one ended connection.
type Disconnect struct {
	Time     time.Time
	Conn     uint64
	Remote   string
	Client   string // from the Hello
	Label    string // set by the Handler with Conn.SetLabel, e.g. the room and player
	Reason   DisconnectReason
	Code     wire.CloseCode // the close code sent or received; 0 if none
	Detail   string         // the close reason or the error
	Duration time.Duration  // how long the connection lasted
}

// disconnectLog keeps the most recent disconnects in a ring.
type disconnectLog struct {
	mu   sync.Mutex
	ring []Disconnect
	next int
	full bool
}

func (l *disconnectLog) add(d Disconnect) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ring) == 0 {
		return
	}
	l.ring[l.next] = d
	l.next = (l.next + 1) % len(l.ring)
	l.full = l.full || l.next == 0
}

// recent returns the kept disconnects, newest first.
func (l *disconnectLog) recent() []Disconnect {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.next
	if l.full {
		n = len(l.ring)
	}
	out := make([]Disconnect, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, l.ring[(l.next-i+len(l.ring))%len(l.ring)])
	}
	return out
}
