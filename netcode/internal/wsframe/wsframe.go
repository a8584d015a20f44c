// Package wsframe reads and writes WebSocket frames for tickroom's server and
// client on top of gobwas/ws: a reader with a message size limit that
// reassembles fragmented messages into a reused buffer, and append-style
// frame builders, so that steady-state reads and writes do not allocate.
//
// Neither type starts goroutines; a Reader is used by one goroutine.
package wsframe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// Errors a Reader returns for frames that break the protocol. Callers map
// them to close codes: ErrTooBig to 1009, ErrProtocol to 1002.
var (
	ErrTooBig   = errors.New("wsframe: message larger than the limit")
	ErrProtocol = errors.New("wsframe: protocol violation")
)

// Reader reads frames from one side of a connection.
type Reader struct {
	src        io.Reader
	maxMessage int
	fromClient bool // frames must be masked (server side) or unmasked (client side)

	hdr  [ws.MaxHeaderSize]byte
	buf  []byte // data message being assembled, reused
	ctrl [125]byte
	frag ws.OpCode // opcode of the fragmented message in progress, 0 if none
}

// NewReader returns a Reader of src that refuses data messages larger than
// maxMessage bytes. fromClient says that src is a client's side of the
// connection, whose frames the RFC requires to be masked.
func NewReader(src io.Reader, maxMessage int, fromClient bool) *Reader {
	return &Reader{src: src, maxMessage: maxMessage, fromClient: fromClient}
}

// Next returns the next complete message: a data message (OpText or
// OpBinary, reassembled from fragments) or a control frame (which may arrive
// between fragments). The payload is valid until the next call.
func (r *Reader) Next() (ws.OpCode, []byte, error) {
	for {
		h, err := ws.ReadHeaderBuffer(r.src, r.hdr[:2])
		if err != nil {
			if errors.Is(err, ws.ErrHeaderLengthMSB) || errors.Is(err, ws.ErrHeaderLengthUnexpected) {
				return 0, nil, fmt.Errorf("%w: %v", ErrProtocol, err)
			}
			return 0, nil, err
		}
		if h.Rsv != 0 {
			return 0, nil, fmt.Errorf("%w: reserved bits set without an extension", ErrProtocol)
		}
		if h.Masked != r.fromClient {
			return 0, nil, fmt.Errorf("%w: masking does not match the sender", ErrProtocol)
		}
		if h.OpCode.IsReserved() {
			return 0, nil, fmt.Errorf("%w: reserved opcode %d", ErrProtocol, h.OpCode)
		}

		if h.OpCode.IsControl() {
			if !h.Fin || h.Length > int64(len(r.ctrl)) {
				return 0, nil, fmt.Errorf("%w: fragmented or oversized control frame", ErrProtocol)
			}
			p := r.ctrl[:h.Length]
			if err := r.readPayload(h, p); err != nil {
				return 0, nil, err
			}
			return h.OpCode, p, nil
		}

		switch {
		case h.OpCode == ws.OpContinuation && r.frag == 0:
			return 0, nil, fmt.Errorf("%w: continuation frame without a message", ErrProtocol)
		case h.OpCode != ws.OpContinuation && r.frag != 0:
			return 0, nil, fmt.Errorf("%w: new message inside a fragmented one", ErrProtocol)
		}
		if h.OpCode != ws.OpContinuation {
			r.buf = r.buf[:0]
			r.frag = h.OpCode
		}
		// Check the declared length against the limit before reading or
		// allocating anything for it.
		if h.Length > int64(r.maxMessage-len(r.buf)) {
			return 0, nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooBig, int64(len(r.buf))+h.Length, r.maxMessage)
		}
		n := len(r.buf)
		r.buf = growTo(r.buf, n+int(h.Length))
		if err := r.readPayload(h, r.buf[n:]); err != nil {
			return 0, nil, err
		}
		if !h.Fin {
			continue
		}
		op := r.frag
		r.frag = 0
		return op, r.buf, nil
	}
}

func (r *Reader) readPayload(h ws.Header, p []byte) error {
	if _, err := io.ReadFull(r.src, p); err != nil {
		if errors.Is(err, io.EOF) {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	if h.Masked {
		ws.Cipher(p, h.Mask, 0)
	}
	return nil
}

// Release drops the message buffer if it has grown beyond keep bytes, so an
// idle connection does not pin the memory of its largest message.
func (r *Reader) Release(keep int) {
	if cap(r.buf) > keep {
		r.buf = nil
	}
}

func growTo(b []byte, n int) []byte {
	if n <= cap(b) {
		return b[:n]
	}
	nb := make([]byte, n, max(n, 2*cap(b)))
	copy(nb, b)
	return nb
}

// AppendHeader appends the header of a final frame carrying n bytes. A
// non-nil mask marks the frame masked (clients must mask); the caller then
// masks the payload with MaskPayload.
func AppendHeader(dst []byte, op ws.OpCode, n int, mask *[4]byte) []byte {
	b0 := byte(0x80) | byte(op)
	var m byte
	if mask != nil {
		m = 0x80
	}
	switch {
	case n < 126:
		dst = append(dst, b0, m|byte(n))
	case n <= 0xffff:
		dst = append(dst, b0, m|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, b0, m|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	if mask != nil {
		dst = append(dst, mask[:]...)
	}
	return dst
}

// HeaderLen returns the length of an unmasked header for n payload bytes.
func HeaderLen(n int) int {
	switch {
	case n < 126:
		return 2
	case n <= 0xffff:
		return 4
	default:
		return 10
	}
}

// MaskPayload masks p in place with mask.
func MaskPayload(p []byte, mask [4]byte) { ws.Cipher(p, mask, 0) }

// CloseBody returns the payload of a close frame: the code and a reason cut
// to fit a control frame.
func CloseBody(code uint16, reason string) []byte {
	if len(reason) > 123 {
		// Cut at a rune boundary: a close reason must be valid UTF-8.
		n := 123
		for n > 0 && !utf8.RuneStart(reason[n]) {
			n--
		}
		reason = reason[:n]
	}
	b := make([]byte, 2, 2+len(reason))
	binary.BigEndian.PutUint16(b, code)
	return append(b, reason...)
}

// ParseClose reads a close frame's payload. An empty payload means 1005 (no
// status received), per RFC 6455.
func ParseClose(p []byte) (code uint16, reason string, err error) {
	switch {
	case len(p) == 0:
		return 1005, "", nil
	case len(p) == 1:
		return 0, "", fmt.Errorf("%w: one-byte close payload", ErrProtocol)
	}
	return binary.BigEndian.Uint16(p), string(p[2:]), nil
}
