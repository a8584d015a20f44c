package netcode

import (
	"errors"
	"fmt"

	"github.com/tickroom/tickroom/netcode/wire"
)

// Handler accepts connections that completed the protocol handshake.
type Handler interface {
	// Open returns the Session that handles c's messages. It is called once
	// per connection, from c's reader goroutine, after the Hello; it must not
	// block.
	Open(c *Conn) Session
}

// Session handles one connection's requests. The connection's reader
// goroutine calls its methods one at a time, never concurrently.
//
// A method returns an error to answer the request with an Error message: a
// *wire.ErrorReply (use Reply) sets the code the client sees; any other error
// is answered as wire.CodeInternal. netcode sends exactly one reply per
// request: the Joined from Join, else OK on success.
type Session interface {
	// Join handles a join request. It may block until the room answers.
	Join(req wire.Join) (wire.Joined, error)
	// Leave gives up the connection's seat.
	Leave() error
	// Input queues an input. Its payload aliases the read buffer: copy it.
	// Input must not block; errors are reported to the client throttled,
	// since inputs stream without request ids.
	Input(in wire.Input) error
	// Message queues a reliable room message. Its payload aliases the read
	// buffer: copy it.
	Message(payload []byte) error
	// Closed is called once when the connection is gone, after the reader
	// has stopped; cause is a *CloseError, or the I/O error that ended it.
	Closed(cause error)
}

// Reply returns an error that answers a request with code and message.
func Reply(code wire.ErrorCode, format string, args ...any) error {
	return &wire.ErrorReply{Code: code, Message: fmt.Sprintf(format, args...)}
}

// RedirectError answers a Join with a wire.Redirect: another node serves
// it. Session.Join returns one, made by Redirect.
type RedirectError struct {
	URL  string // the node's game endpoint, ws:// or wss://
	Node string // the node's name, for logs
}

func (e *RedirectError) Error() string {
	return fmt.Sprintf("netcode: join redirected to node %s at %s", e.Node, e.URL)
}

// Redirect returns the error with which Session.Join sends the client to
// the node at url. netcode answers with a wire.Redirect and closes the
// connection with 1001 after ServerConfig.RedirectGrace, if the client has
// neither closed it nor sent another request by then: a client that does
// not know Redirect reconnects.
func Redirect(url, node string) error { return &RedirectError{URL: url, Node: node} }

// CloseError says how a connection closed.
type CloseError struct {
	Code   wire.CloseCode
	Reason string
	ByPeer bool // the client sent the close frame
}

func (e *CloseError) Error() string {
	who := "server"
	if e.ByPeer {
		who = "client"
	}
	return fmt.Sprintf("netcode: closed by %s: %d %s", who, e.Code, e.Reason)
}

// Graceful reports whether cause, as passed to Session.Closed, is a client
// that said goodbye (a close frame with 1000, 1001 or no code from the
// client): such a player left on purpose, while any other end may be a drop
// worth holding a seat for.
func Graceful(cause error) bool {
	var ce *CloseError
	if !errors.As(cause, &ce) || !ce.ByPeer {
		return false
	}
	return ce.Code == wire.CloseNormal || ce.Code == wire.CloseGoingAway || ce.Code == closeNoStatus
}

// closeNoStatus is how RFC 6455 reports a close frame without a code.
const closeNoStatus wire.CloseCode = 1005

// closeAbnormal is how RFC 6455 reports a connection lost without a close
// frame; it is never sent on the wire.
const closeAbnormal wire.CloseCode = 1006

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("netcode: server closed")
