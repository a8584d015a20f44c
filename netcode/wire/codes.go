package wire

import "fmt"

// Version is the protocol version this package speaks. A client announces its
// version in Hello; a server that does not speak it answers with an Error of
// code CodeUnsupportedVersion and closes with CloseUnsupportedVersion.
const Version = 1

// ErrorCode classifies an Error message. Codes are stable across versions;
// clients branch on them, never on the message text.
type ErrorCode uint16

// Error codes carried by the Error message.
const (
	CodeBadRequest         ErrorCode = 1  // a message whose fields have the wrong types or values
	CodeUnknownType        ErrorCode = 2  // a message type the server does not know
	CodeNotInRoom          ErrorCode = 3  // input, room message or leave while not in a room
	CodeAlreadyInRoom      ErrorCode = 4  // join while already in a room
	CodeRoomNotFound       ErrorCode = 5  // join of a room id that does not exist
	CodeRoomFull           ErrorCode = 6  // join of a room with no free seat
	CodeUnknownMode        ErrorCode = 7  // join-or-create with a game mode the server does not run
	CodeBadToken           ErrorCode = 8  // resume with an unknown or expired reconnect token
	CodeRateLimited        ErrorCode = 9  // more inputs or requests per second than allowed; the excess was dropped
	CodeRoomBusy           ErrorCode = 10 // the room's message queue is full; the message was dropped
	CodeTooLarge           ErrorCode = 11 // a payload larger than the server accepts
	CodeUnsupportedVersion ErrorCode = 12 // the Hello announced a protocol version the server does not speak
	CodeRejected           ErrorCode = 13 // the game refused the player
	CodeShuttingDown       ErrorCode = 14 // the server is shutting down and takes no new players
	CodeInternal           ErrorCode = 15 // a server fault; the request may be retried
	CodeRoomMoving         ErrorCode = 16 // the room is between hosts (moving, or its host just failed): retry the join in a moment
)

var errorCodeNames = map[ErrorCode]string{
	CodeBadRequest:         "bad_request",
	CodeUnknownType:        "unknown_type",
	CodeNotInRoom:          "not_in_room",
	CodeAlreadyInRoom:      "already_in_room",
	CodeRoomNotFound:       "room_not_found",
	CodeRoomFull:           "room_full",
	CodeUnknownMode:        "unknown_mode",
	CodeBadToken:           "bad_token",
	CodeRateLimited:        "rate_limited",
	CodeRoomBusy:           "room_busy",
	CodeTooLarge:           "too_large",
	CodeUnsupportedVersion: "unsupported_version",
	CodeRejected:           "rejected",
	CodeShuttingDown:       "shutting_down",
	CodeInternal:           "internal",
	CodeRoomMoving:         "room_moving",
}

// String returns the code's stable snake_case name.
func (c ErrorCode) String() string {
	if s, ok := errorCodeNames[c]; ok {
		return s
	}
	return fmt.Sprintf("error_code_%d", uint16(c))
}

// CloseCode is a WebSocket close status code. The 1000-range codes are the
// RFC 6455 ones; the 4000-range codes are tickroom's own.
type CloseCode uint16

// Close codes. A client reconnects after the codes for which
// CloseCode.Reconnectable reports true. 1008 and 1011 are reserved: the
// server does not send them yet.
const (
	CloseNormal             CloseCode = 1000 // the peer asked to close
	CloseGoingAway          CloseCode = 1001 // the server is shutting down
	CloseProtocolError      CloseCode = 1002 // a frame or message out of protocol order, e.g. no Hello first
	CloseUnsupportedData    CloseCode = 1003 // a text frame: tickroom speaks binary frames only
	CloseInvalidPayload     CloseCode = 1007 // a frame that is not a MessagePack message array
	ClosePolicyViolation    CloseCode = 1008 // generic policy violation
	CloseMessageTooBig      CloseCode = 1009 // a frame larger than the server's limit
	CloseInternalError      CloseCode = 1011 // a server fault
	CloseHeartbeatTimeout   CloseCode = 4000 // nothing (not even a pong) arrived from the client within the heartbeat timeout
	CloseSlowConsumer       CloseCode = 4001 // the client read too slowly and its control queue overflowed
	CloseKicked             CloseCode = 4002 // an operator removed the player
	CloseSessionReplaced    CloseCode = 4003 // the seat was resumed on another connection
	CloseUnsupportedVersion CloseCode = 4004 // the Hello announced a protocol version the server does not speak
	CloseHandshakeTimeout   CloseCode = 4005 // no Hello within the handshake timeout
	CloseRateLimited        CloseCode = 4006 // the client flooded inputs far above its rate limit
)

// Reconnectable reports whether a client should reconnect and resume its seat
// after the server closed with c. Codes that say the client itself is at fault
// (protocol errors, kicks, a replaced session) must not be retried blindly.
func (c CloseCode) Reconnectable() bool {
	switch c {
	case CloseGoingAway, CloseInternalError, CloseHeartbeatTimeout, CloseSlowConsumer:
		return true
	}
	return false
}

// MaxCloseReason is the longest close reason, in bytes, that fits a control
// frame (125 bytes of payload less the 2-byte code).
const MaxCloseReason = 123

// ErrorReply is an Error message received as the answer to a request,
// usable as a Go error. Callers branch on Code with errors.As.
type ErrorReply struct {
	Code    ErrorCode
	Message string
}

func (e *ErrorReply) Error() string {
	return fmt.Sprintf("tickroom: %s: %s", e.Code, e.Message)
}
