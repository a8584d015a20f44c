package wire

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/vmihailenco/msgpack/v5"
)

// Type identifies a message. It is the first element of every message array.
type Type uint8

// Client-to-server message types.
const (
	TypeHello   Type = 1 // [1, version, client]
	TypeJoin    Type = 2 // [2, reqID, roomID, mode, token, maxPlayers?, hops?]
	TypeLeave   Type = 3 // [3, reqID]
	TypeInput   Type = 4 // [4, seq, payload]
	TypeMessage Type = 5 // [5, reqID, payload]
	TypePing    Type = 6 // [6, clientTime]
)

// Server-to-client message types.
const (
	TypeWelcome      Type = 16 // [16, version, tickRate, serverTime, maxMessage, heartbeatMs]
	TypeJoined       Type = 17 // [17, reqID, roomID, mode, player, token, resumed, maxPlayers, players]
	TypeOK           Type = 18 // [18, reqID]
	TypeError        Type = 19 // [19, reqID, code, message]
	TypeSnapshot     Type = 20 // [20, ack, tick, serverTime, baseOffset, flags, removed, added, changed]
	TypePlayerJoined Type = 21 // [21, player]
	TypePlayerLeft   Type = 22 // [22, player, reason]
	TypeRoomEvent    Type = 23 // [23, from, payload]
	TypeRoomClosed   Type = 24 // [24, roomID, reason]
	TypePong         Type = 25 // [25, clientTime, serverTime]
	TypeRedirect     Type = 26 // [26, reqID, url, node]
	TypeRoomMoved    Type = 27 // [27, roomID, url, node, token, epoch]
)

// MaxIDLength bounds room ids, mode names and reconnect tokens, in bytes.
const MaxIDLength = 128

// Hello is the first message a client sends.
type Hello struct {
	Version uint32 // protocol version the client speaks
	Client  string // free-form client name and version, for logs
}

// Join asks to join a room. Exactly one way is used: a non-empty Token resumes
// a held seat; else a non-empty RoomID joins that room; else Mode joins or
// creates a public room of that game mode.
type Join struct {
	ReqID  uint32
	RoomID string
	Mode   string
	Token  string
	// MaxPlayers, with Mode, joins or creates a room of exactly this many
	// seats; 0 takes any room of the mode (and creates one of the server's
	// default size). Optional on the wire: clients may omit the element.
	MaxPlayers uint32
	// Hops counts the redirects this join has followed (0 from a client's
	// first try). A node handles a join-or-create that was redirected
	// once itself, and stops redirecting any join at MaxHops, so that
	// nodes whose views of the cluster disagree cannot bounce a client
	// for ever. Optional on the wire, like MaxPlayers.
	Hops uint32
}

// MaxHops is how many redirects a join follows at most: a node answers a
// join with Hops at MaxHops itself, whatever its view of the cluster.
const MaxHops = 3

// Leave gives up the seat in the current room. The connection stays open.
type Leave struct {
	ReqID uint32
}

// Input is one player input. Seq increases by at least one per input; the
// server acknowledges the highest applied Seq in every snapshot. Payload is
// one raw MessagePack value interpreted by the game.
type Input struct {
	Seq     uint32
	Payload []byte
}

// RoomMessage is a reliable message to the room's game, delivered in order at
// the next tick. Payload is one raw MessagePack value.
type RoomMessage struct {
	ReqID   uint32
	Payload []byte
}

// Ping asks the server for a Pong that echoes ClientTime, for RTT.
type Ping struct {
	ClientTime int64
}

// Welcome answers Hello.
type Welcome struct {
	Version     uint32
	TickRate    uint32 // ticks (and snapshots) per second
	ServerTime  int64  // milliseconds since the Unix epoch
	MaxMessage  uint32 // the largest client message the server accepts, in bytes (a frame, or a fragmented message's frames together)
	HeartbeatMs uint32 // the server drops a connection silent for this long
}

// Joined answers Join.
type Joined struct {
	ReqID      uint32
	RoomID     string
	Mode       string
	Player     uint32
	Token      string // reconnect token: Join with it to resume this seat
	Resumed    bool
	MaxPlayers uint32
	Players    []uint32 // every seated player, this one included
}

// Redirect answers a Join that another node must serve: the client sends
// the same Join, with Hops one higher, to URL (a ws:// or wss:// URL of
// that node's game endpoint) on a new connection, at once and without
// backoff, and then closes this one. The server closes it with 1001
// after a grace period if the client does not. Node names the node, for
// logs.
type Redirect struct {
	ReqID uint32
	URL   string
	Node  string
}

// RoomMoved tells a seated player that its room now runs on another node
// (an operator moved it, or its node is draining) and that its seat there
// is held for it: the client resumes it at once, without backoff, by
// sending a Join with Token to URL on a new connection, and then closes
// this one. An empty URL means "reconnect to the address you dialed (or a
// seed) and resume there": a node that relays for its clients, or one that
// stopped a room it may no longer run, says so. Epoch is the room's
// incarnation on its new host. A node that relays the connection (proxy
// routing) passes RoomMoved on to its client like any other frame.
type RoomMoved struct {
	RoomID string
	URL    string
	Node   string
	Token  string
	Epoch  uint64
}

// MaxURLLength bounds a Redirect's URL, in bytes.
const MaxURLLength = 512

// OK answers a request that succeeded and returns nothing else.
type OK struct {
	ReqID uint32
}

// Error answers a request that failed (ReqID echoes it) or reports a problem
// with a message that has no request id (ReqID is 0).
type Error struct {
	ReqID   uint32
	Code    ErrorCode
	Message string
}

// PlayerJoined tells room members that a player took a seat.
type PlayerJoined struct {
	Player uint32
}

// PlayerLeft tells room members that a player gave up or lost a seat.
type PlayerLeft struct {
	Player uint32
	Reason string
}

// RoomEvent carries a message from the room's game. From is the player the
// game relays it for, 0 for the game itself, or FromOperator.
type RoomEvent struct {
	From    uint32
	Payload []byte
}

// FromOperator is RoomEvent.From for a message an operator broadcast to the
// room (through the admin API), not one from the game or a player.
const FromOperator uint32 = 1<<32 - 1

// RoomClosed tells members that their room closed; they hold no seat anymore.
type RoomClosed struct {
	RoomID string
	Reason string
}

// Pong answers Ping.
type Pong struct {
	ClientTime int64
	ServerTime int64
}

// Decode errors. Callers branch with errors.Is; DecodeError carries details.
var (
	// ErrMalformed: the frame is not a MessagePack array that starts with a
	// message type. The server closes with CloseInvalidPayload.
	ErrMalformed = errors.New("wire: malformed message")
	// ErrUnknownType: a well-formed message of a type the decoder does not
	// know. The server answers with CodeUnknownType and carries on.
	ErrUnknownType = errors.New("wire: unknown message type")
	// ErrBadField: a known message with missing fields or fields of the wrong
	// type or range. The server answers with CodeBadRequest.
	ErrBadField = errors.New("wire: bad field")
)

// DecodeError describes a message that could not be decoded.
type DecodeError struct {
	Kind  error  // ErrMalformed, ErrUnknownType or ErrBadField
	Type  Type   // the message type, if it was read
	ReqID uint32 // the request id, if it was read (0 otherwise)
	Err   error  // the underlying cause, if any
}

func (e *DecodeError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%v (type %d): %v", e.Kind, e.Type, e.Err)
	}
	return fmt.Sprintf("%v (type %d)", e.Kind, e.Type)
}

func (e *DecodeError) Unwrap() []error { return []error{e.Kind, e.Err} }

// ClientMessage holds one decoded client message: Type says which field is set.
// A Decoder reuses it; payload slices alias the decoded frame.
type ClientMessage struct {
	Type    Type
	Hello   Hello
	Join    Join
	Leave   Leave
	Input   Input
	Message RoomMessage
	Ping    Ping
}

// ServerMessage holds one decoded server message: Type says which field is set.
// A Decoder reuses it and its slices; payload slices alias the decoded frame.
type ServerMessage struct {
	Type         Type
	Welcome      Welcome
	Joined       Joined
	OK           OK
	Error        Error
	Snapshot     Snapshot
	PlayerJoined PlayerJoined
	PlayerLeft   PlayerLeft
	RoomEvent    RoomEvent
	RoomClosed   RoomClosed
	Pong         Pong
	Redirect     Redirect
	RoomMoved    RoomMoved
}

// Decoder decodes frames into messages without allocating in steady state
// (strings such as room ids are the exception).
type Decoder struct {
	r     bytes.Reader
	d     *msgpack.Decoder
	frame []byte
	typ   Type
	left  int // array elements not yet read
	reqID uint32
}

// NewDecoder returns a Decoder.
func NewDecoder() *Decoder {
	d := &Decoder{}
	d.d = msgpack.NewDecoder(&d.r)
	return d
}

// Release drops the Decoder's reference to the last frame it decoded, so
// that a Decoder kept for later (in a pool) does not keep that frame's
// memory alive.
func (d *Decoder) Release() {
	d.frame = nil
	d.r.Reset(nil)
}

// DecodeClient decodes a client-to-server frame into m.
func (d *Decoder) DecodeClient(frame []byte, m *ClientMessage) error {
	if err := d.begin(frame); err != nil {
		return err
	}
	m.Type = d.typ
	var err error
	switch d.typ {
	case TypeHello:
		m.Hello.Version, err = d.uint32()
		if err == nil {
			m.Hello.Client, err = d.optString(MaxIDLength)
		}
	case TypeJoin:
		m.Join.ReqID, err = d.reqIDField()
		if err == nil {
			m.Join.RoomID, err = d.optString(MaxIDLength)
		}
		if err == nil {
			m.Join.Mode, err = d.optString(MaxIDLength)
		}
		if err == nil {
			m.Join.Token, err = d.optString(MaxIDLength)
		}
		m.Join.MaxPlayers, m.Join.Hops = 0, 0
		if err == nil && d.left > 0 {
			m.Join.MaxPlayers, err = d.uint32()
		}
		if err == nil && d.left > 0 {
			m.Join.Hops, err = d.uint32()
		}
	case TypeLeave:
		m.Leave.ReqID, err = d.reqIDField()
	case TypeInput:
		m.Input.Seq, err = d.uint32()
		if err == nil {
			m.Input.Payload, err = d.raw()
		}
	case TypeMessage:
		m.Message.ReqID, err = d.reqIDField()
		if err == nil {
			m.Message.Payload, err = d.raw()
		}
	case TypePing:
		m.Ping.ClientTime, err = d.int64()
	default:
		return &DecodeError{Kind: ErrUnknownType, Type: d.typ}
	}
	return d.end(err)
}

// DecodeServer decodes a server-to-client frame into m.
func (d *Decoder) DecodeServer(frame []byte, m *ServerMessage) error {
	if err := d.begin(frame); err != nil {
		return err
	}
	m.Type = d.typ
	var err error
	switch d.typ {
	case TypeWelcome:
		err = d.decodeWelcome(&m.Welcome)
	case TypeJoined:
		err = d.decodeJoined(&m.Joined)
	case TypeOK:
		m.OK.ReqID, err = d.reqIDField()
	case TypeError:
		m.Error.ReqID, err = d.reqIDField()
		if err == nil {
			var c uint32
			c, err = d.uint32()
			if err == nil && c > 1<<16-1 {
				err = fmt.Errorf("error code %d does not fit 16 bits", c)
			}
			m.Error.Code = ErrorCode(c)
		}
		if err == nil {
			m.Error.Message, err = d.optString(1 << 16)
		}
	case TypeSnapshot:
		err = d.decodeSnapshot(&m.Snapshot)
	case TypePlayerJoined:
		m.PlayerJoined.Player, err = d.uint32()
	case TypePlayerLeft:
		m.PlayerLeft.Player, err = d.uint32()
		if err == nil {
			m.PlayerLeft.Reason, err = d.optString(1 << 16)
		}
	case TypeRoomEvent:
		m.RoomEvent.From, err = d.uint32()
		if err == nil {
			m.RoomEvent.Payload, err = d.raw()
		}
	case TypeRoomClosed:
		m.RoomClosed.RoomID, err = d.optString(MaxIDLength)
		if err == nil {
			m.RoomClosed.Reason, err = d.optString(1 << 16)
		}
	case TypePong:
		m.Pong.ClientTime, err = d.int64()
		if err == nil {
			m.Pong.ServerTime, err = d.int64()
		}
	case TypeRedirect:
		m.Redirect.ReqID, err = d.reqIDField()
		if err == nil {
			m.Redirect.URL, err = d.optString(MaxURLLength)
		}
		if err == nil {
			m.Redirect.Node, err = d.optString(MaxIDLength)
		}
	case TypeRoomMoved:
		err = d.decodeRoomMoved(&m.RoomMoved)
	default:
		return &DecodeError{Kind: ErrUnknownType, Type: d.typ}
	}
	return d.end(err)
}

func (d *Decoder) decodeRoomMoved(r *RoomMoved) (err error) {
	if r.RoomID, err = d.optString(MaxIDLength); err != nil {
		return err
	}
	if r.URL, err = d.optString(MaxURLLength); err != nil {
		return err
	}
	if r.Node, err = d.optString(MaxIDLength); err != nil {
		return err
	}
	if r.Token, err = d.optString(MaxIDLength); err != nil {
		return err
	}
	r.Epoch, err = d.uint64()
	return err
}

func (d *Decoder) decodeWelcome(w *Welcome) (err error) {
	if w.Version, err = d.uint32(); err != nil {
		return err
	}
	if w.TickRate, err = d.uint32(); err != nil {
		return err
	}
	if w.ServerTime, err = d.int64(); err != nil {
		return err
	}
	if w.MaxMessage, err = d.uint32(); err != nil {
		return err
	}
	w.HeartbeatMs, err = d.uint32()
	return err
}

func (d *Decoder) decodeJoined(j *Joined) (err error) {
	if j.ReqID, err = d.reqIDField(); err != nil {
		return err
	}
	if j.RoomID, err = d.optString(MaxIDLength); err != nil {
		return err
	}
	if j.Mode, err = d.optString(MaxIDLength); err != nil {
		return err
	}
	if j.Player, err = d.uint32(); err != nil {
		return err
	}
	if j.Token, err = d.optString(MaxIDLength); err != nil {
		return err
	}
	if err = d.field(); err != nil {
		return err
	}
	if j.Resumed, err = d.d.DecodeBool(); err != nil {
		return err
	}
	if j.MaxPlayers, err = d.uint32(); err != nil {
		return err
	}
	j.Players, err = d.uint32Array(j.Players[:0])
	return err
}

// begin reads the array header and the type.
func (d *Decoder) begin(frame []byte) error {
	d.frame = frame
	d.r.Reset(frame)
	d.typ, d.reqID = 0, 0
	n, err := d.d.DecodeArrayLen()
	if err != nil || n < 1 {
		return &DecodeError{Kind: ErrMalformed, Err: err}
	}
	t, err := d.d.DecodeUint64()
	if err != nil || t > 255 {
		return &DecodeError{Kind: ErrMalformed, Err: err}
	}
	d.typ, d.left = Type(t), n-1
	return nil
}

// end skips fields a newer peer may have appended, checks nothing trails the
// array and turns a field error into a DecodeError.
func (d *Decoder) end(err error) error {
	if err != nil {
		var de *DecodeError
		if errors.As(err, &de) {
			return err
		}
		return &DecodeError{Kind: ErrBadField, Type: d.typ, ReqID: d.reqID, Err: err}
	}
	for ; d.left > 0; d.left-- {
		if err := d.skip(); err != nil {
			return &DecodeError{Kind: ErrMalformed, Type: d.typ, ReqID: d.reqID, Err: err}
		}
	}
	if d.r.Len() != 0 {
		return &DecodeError{Kind: ErrMalformed, Type: d.typ, ReqID: d.reqID, Err: errors.New("trailing bytes after the message array")}
	}
	return nil
}

var errMissingField = errors.New("missing field")

// field claims the next array element.
func (d *Decoder) field() error {
	if d.left == 0 {
		return errMissingField
	}
	d.left--
	return nil
}

func (d *Decoder) reqIDField() (uint32, error) {
	id, err := d.uint32()
	d.reqID = id
	return id, err
}

func (d *Decoder) uint32() (uint32, error) {
	if err := d.field(); err != nil {
		return 0, err
	}
	v, err := d.d.DecodeUint64()
	if err != nil {
		return 0, err
	}
	if v > 1<<32-1 {
		return 0, fmt.Errorf("%d does not fit 32 bits", v)
	}
	return uint32(v), nil
}

func (d *Decoder) uint64() (uint64, error) {
	if err := d.field(); err != nil {
		return 0, err
	}
	return d.d.DecodeUint64()
}

func (d *Decoder) int64() (int64, error) {
	if err := d.field(); err != nil {
		return 0, err
	}
	return d.d.DecodeInt64()
}

// optString reads a string field; nil reads as "".
func (d *Decoder) optString(max int) (string, error) {
	if err := d.field(); err != nil {
		return "", err
	}
	n, err := d.d.DecodeBytesLen() // accepts str and bin; -1 for nil
	if err != nil {
		return "", err
	}
	if n < 0 {
		return "", nil
	}
	if n > max {
		return "", fmt.Errorf("string of %d bytes, at most %d allowed", n, max)
	}
	if n > d.r.Len() {
		return "", errors.New("string longer than the frame")
	}
	off := len(d.frame) - d.r.Len()
	s := string(d.frame[off : off+n])
	_, err = d.r.Seek(int64(n), 1)
	return s, err
}

// raw returns the next element's raw MessagePack bytes, aliasing the frame.
func (d *Decoder) raw() ([]byte, error) {
	if err := d.field(); err != nil {
		return nil, err
	}
	start := len(d.frame) - d.r.Len()
	if err := d.skip(); err != nil {
		return nil, err
	}
	end := len(d.frame) - d.r.Len()
	return d.frame[start:end:end], nil
}

// skip skips one MessagePack value of the frame, nested values included. It
// does not use msgpack's Skip, which allocates a buffer of a string's or an
// extension's declared length (up to megabytes) before it finds the frame too
// short: a frame of a few bytes would allocate megabytes on every decode.
// skip checks every declared length against what is left of the frame, never
// allocates and does not recurse.
func (d *Decoder) skip() error {
	for pending := 1; pending > 0; pending-- {
		c, err := d.r.ReadByte()
		if err != nil {
			return err
		}
		var size, elems int // bytes after the header; values to skip after this one
		switch {
		case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3: // fixint, nil, bool
		case c <= 0x8f: // fixmap
			elems = 2 * int(c&0x0f)
		case c <= 0x9f: // fixarray
			elems = int(c & 0x0f)
		case c <= 0xbf: // fixstr
			size = int(c & 0x1f)
		case c == 0xcc || c == 0xd0: // uint8, int8
			size = 1
		case c == 0xcd || c == 0xd1: // uint16, int16
			size = 2
		case c == 0xca || c == 0xce || c == 0xd2: // float32, uint32, int32
			size = 4
		case c == 0xcb || c == 0xcf || c == 0xd3: // float64, uint64, int64
			size = 8
		case c >= 0xd4 && c <= 0xd8: // fixext 1, 2, 4, 8, 16, after a type byte
			size = 1 + 1<<(c-0xd4)
		case c == 0xc4 || c == 0xd9: // bin8, str8
			size, err = d.beUint(1)
		case c == 0xc5 || c == 0xda: // bin16, str16
			size, err = d.beUint(2)
		case c == 0xc6 || c == 0xdb: // bin32, str32
			size, err = d.beUint(4)
		case c >= 0xc7 && c <= 0xc9: // ext 8, 16, 32, then a type byte
			size, err = d.beUint(1 << (c - 0xc7))
			size++
		case c == 0xdc: // array16
			elems, err = d.beUint(2)
		case c == 0xdd: // array32
			elems, err = d.beUint(4)
		case c == 0xde: // map16
			elems, err = d.beUint(2)
			elems *= 2
		case c == 0xdf: // map32
			elems, err = d.beUint(4)
			elems *= 2
		default: // 0xc1, never used
			return fmt.Errorf("msgpack: unknown code %x", c)
		}
		if err != nil {
			return err
		}
		// Every pending value takes at least one byte.
		if size > d.r.Len() || elems > d.r.Len()-pending+1 {
			return errors.New("value longer than the frame")
		}
		pending += elems
		if _, err := d.r.Seek(int64(size), io.SeekCurrent); err != nil {
			return err
		}
	}
	return nil
}

// beUint reads an n-byte big-endian length, refusing one longer than what is
// left of the frame.
func (d *Decoder) beUint(n int) (int, error) {
	if n > d.r.Len() {
		return 0, io.ErrUnexpectedEOF
	}
	var v uint64
	for range n {
		b, _ := d.r.ReadByte()
		v = v<<8 | uint64(b)
	}
	if v > uint64(d.r.Len()) {
		return 0, errors.New("value longer than the frame")
	}
	return int(v), nil
}

// arrayLen reads an array header whose elements are at least one byte each,
// so a declared length larger than what is left of the frame is refused
// before anything is allocated for it.
func (d *Decoder) arrayLen() (int, error) {
	n, err := d.d.DecodeArrayLen()
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, nil
	}
	if n > d.r.Len() {
		return 0, fmt.Errorf("array of %d elements is longer than the frame", n)
	}
	return n, nil
}

func (d *Decoder) uint32Array(dst []uint32) ([]uint32, error) {
	if err := d.field(); err != nil {
		return dst, err
	}
	n, err := d.arrayLen()
	if err != nil {
		return dst, err
	}
	for range n {
		v, err := d.d.DecodeUint64()
		if err != nil {
			return dst, err
		}
		if v > 1<<32-1 {
			return dst, fmt.Errorf("%d does not fit 32 bits", v)
		}
		dst = append(dst, uint32(v))
	}
	return dst, nil
}

// Encoder encodes messages into an internal buffer. Each method returns the
// encoded message, valid until the Encoder's next call; Marshal copies.
//
// The msgpack encoder writes into a bytes.Buffer, whose writes cannot fail, so
// its errors are not checked.
type Encoder struct {
	buf bytes.Buffer
	e   *msgpack.Encoder

	// delta scratch, reused across snapshots
	removed []uint32
	added   []int
	changed []changedEntity
}

// NewEncoder returns an Encoder.
func NewEncoder() *Encoder {
	e := &Encoder{}
	e.e = msgpack.NewEncoder(&e.buf)
	return e
}

func (e *Encoder) begin(t Type, fields int) {
	e.buf.Reset()
	_ = e.e.EncodeArrayLen(fields + 1)
	_ = e.e.EncodeUint(uint64(t))
}

func (e *Encoder) uint(v uint64)     { _ = e.e.EncodeUint(v) }
func (e *Encoder) int(v int64)       { _ = e.e.EncodeInt(v) }
func (e *Encoder) str(s string)      { _ = e.e.EncodeString(s) }
func (e *Encoder) arrayLen(n int)    { _ = e.e.EncodeArrayLen(n) }
func (e *Encoder) bytes() []byte     { return e.buf.Bytes() }
func (e *Encoder) rawValue(p []byte) { rawOrNil(&e.buf, p) }

// rawOrNil writes p, one raw MessagePack value, or nil for an empty p.
func rawOrNil(b *bytes.Buffer, p []byte) {
	if len(p) == 0 {
		b.WriteByte(0xc0)
		return
	}
	b.Write(p)
}

// Hello encodes a Hello.
func (e *Encoder) Hello(m Hello) []byte {
	e.begin(TypeHello, 2)
	e.uint(uint64(m.Version))
	e.str(m.Client)
	return e.bytes()
}

// Join encodes a Join.
func (e *Encoder) Join(m Join) []byte {
	fields := 5
	if m.Hops > 0 {
		fields = 6 // a first try stays byte for byte what it always was
	}
	e.begin(TypeJoin, fields)
	e.uint(uint64(m.ReqID))
	e.str(m.RoomID)
	e.str(m.Mode)
	e.str(m.Token)
	e.uint(uint64(m.MaxPlayers))
	if m.Hops > 0 {
		e.uint(uint64(m.Hops))
	}
	return e.bytes()
}

// Redirect encodes a Redirect.
func (e *Encoder) Redirect(m Redirect) []byte {
	e.begin(TypeRedirect, 3)
	e.uint(uint64(m.ReqID))
	e.str(m.URL)
	e.str(m.Node)
	return e.bytes()
}

// RoomMoved encodes a RoomMoved.
func (e *Encoder) RoomMoved(m RoomMoved) []byte {
	e.begin(TypeRoomMoved, 5)
	e.str(m.RoomID)
	e.str(m.URL)
	e.str(m.Node)
	e.str(m.Token)
	e.uint(m.Epoch)
	return e.bytes()
}

// Leave encodes a Leave.
func (e *Encoder) Leave(m Leave) []byte {
	e.begin(TypeLeave, 1)
	e.uint(uint64(m.ReqID))
	return e.bytes()
}

// Input encodes an Input. The payload must be one MessagePack value; an empty
// payload is sent as nil.
func (e *Encoder) Input(m Input) []byte {
	e.begin(TypeInput, 2)
	e.uint(uint64(m.Seq))
	e.rawValue(m.Payload)
	return e.bytes()
}

// Message encodes a RoomMessage.
func (e *Encoder) Message(m RoomMessage) []byte {
	e.begin(TypeMessage, 2)
	e.uint(uint64(m.ReqID))
	e.rawValue(m.Payload)
	return e.bytes()
}

// Ping encodes a Ping.
func (e *Encoder) Ping(m Ping) []byte {
	e.begin(TypePing, 1)
	e.int(m.ClientTime)
	return e.bytes()
}

// Welcome encodes a Welcome.
func (e *Encoder) Welcome(m Welcome) []byte {
	e.begin(TypeWelcome, 5)
	e.uint(uint64(m.Version))
	e.uint(uint64(m.TickRate))
	e.int(m.ServerTime)
	e.uint(uint64(m.MaxMessage))
	e.uint(uint64(m.HeartbeatMs))
	return e.bytes()
}

// Joined encodes a Joined.
func (e *Encoder) Joined(m Joined) []byte {
	e.begin(TypeJoined, 8)
	e.uint(uint64(m.ReqID))
	e.str(m.RoomID)
	e.str(m.Mode)
	e.uint(uint64(m.Player))
	e.str(m.Token)
	_ = e.e.EncodeBool(m.Resumed)
	e.uint(uint64(m.MaxPlayers))
	e.arrayLen(len(m.Players))
	for _, p := range m.Players {
		e.uint(uint64(p))
	}
	return e.bytes()
}

// OK encodes an OK.
func (e *Encoder) OK(m OK) []byte {
	e.begin(TypeOK, 1)
	e.uint(uint64(m.ReqID))
	return e.bytes()
}

// Error encodes an Error.
func (e *Encoder) Error(m Error) []byte {
	e.begin(TypeError, 3)
	e.uint(uint64(m.ReqID))
	e.uint(uint64(m.Code))
	e.str(m.Message)
	return e.bytes()
}

// PlayerJoined encodes a PlayerJoined.
func (e *Encoder) PlayerJoined(m PlayerJoined) []byte {
	e.begin(TypePlayerJoined, 1)
	e.uint(uint64(m.Player))
	return e.bytes()
}

// PlayerLeft encodes a PlayerLeft.
func (e *Encoder) PlayerLeft(m PlayerLeft) []byte {
	e.begin(TypePlayerLeft, 2)
	e.uint(uint64(m.Player))
	e.str(m.Reason)
	return e.bytes()
}

// RoomEvent encodes a RoomEvent.
func (e *Encoder) RoomEvent(m RoomEvent) []byte {
	e.begin(TypeRoomEvent, 2)
	e.uint(uint64(m.From))
	e.rawValue(m.Payload)
	return e.bytes()
}

// RoomClosed encodes a RoomClosed.
func (e *Encoder) RoomClosed(m RoomClosed) []byte {
	e.begin(TypeRoomClosed, 2)
	e.str(m.RoomID)
	e.str(m.Reason)
	return e.bytes()
}

// Pong encodes a Pong.
func (e *Encoder) Pong(m Pong) []byte {
	e.begin(TypePong, 2)
	e.int(m.ClientTime)
	e.int(m.ServerTime)
	return e.bytes()
}
