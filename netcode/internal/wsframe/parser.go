package wsframe

import (
	"encoding/binary"
	"fmt"

	"github.com/gobwas/ws"
)

// Parser decodes frames from bytes already read, for a reader driven by
// readiness events: it cannot block for the rest of a frame, so it says how
// much it needs instead. It enforces what Reader enforces, with the same
// errors, and checks a frame's declared length before its payload has
// arrived, so a caller that keeps the unparsed tail never holds more than
// one frame's header and MaxMessage bytes.
type Parser struct {
	maxMessage int
	fromClient bool
	buf        []byte    // fragmented data message being assembled
	frag       ws.OpCode // opcode of the fragmented message in progress, 0 if none
}

// NewParser returns a Parser that refuses data messages larger than
// maxMessage bytes; fromClient says the frames come from a client, which
// must mask them.
func NewParser(maxMessage int, fromClient bool) *Parser {
	return &Parser{maxMessage: maxMessage, fromClient: fromClient}
}

// MaxFrame returns the most bytes a caller may have to keep for one frame
// that Parse has not yet consumed: the largest header and payload.
func (p *Parser) MaxFrame() int { return ws.MaxHeaderSize + p.maxMessage }

// Parse decodes the first frame in b, unmasking its payload in place. It
// returns how many bytes of b the frame took; n == 0 with a nil error means
// b does not hold a whole frame yet. When the frame completes a message, op
// is its opcode and payload its data (valid until the next call, and
// aliasing b unless the message was fragmented); a fragment that does not
// complete one gives op 0 and n > 0.
func (p *Parser) Parse(b []byte) (op ws.OpCode, payload []byte, n int, err error) {
	if len(b) < 2 {
		return 0, nil, 0, nil
	}
	fin := b[0]&0x80 != 0
	rsv := b[0] & 0x70
	op = ws.OpCode(b[0] & 0x0f)
	masked := b[1]&0x80 != 0
	length := int64(b[1] & 0x7f)
	hlen := 2
	switch length {
	case 126:
		hlen += 2
	case 127:
		hlen += 8
	}
	if masked {
		hlen += 4
	}
	if len(b) < hlen {
		return 0, nil, 0, nil
	}
	switch length {
	case 126:
		length = int64(binary.BigEndian.Uint16(b[2:4]))
	case 127:
		if b[2]&0x80 != 0 {
			return 0, nil, 0, fmt.Errorf("%w: %v", ErrProtocol, ws.ErrHeaderLengthMSB)
		}
		length = int64(binary.BigEndian.Uint64(b[2:10]))
	}

	switch {
	case rsv != 0:
		return 0, nil, 0, fmt.Errorf("%w: reserved bits set without an extension", ErrProtocol)
	case masked != p.fromClient:
		return 0, nil, 0, fmt.Errorf("%w: masking does not match the sender", ErrProtocol)
	case op.IsReserved():
		return 0, nil, 0, fmt.Errorf("%w: reserved opcode %d", ErrProtocol, op)
	case op.IsControl() && (!fin || length > 125):
		return 0, nil, 0, fmt.Errorf("%w: fragmented or oversized control frame", ErrProtocol)
	case op == ws.OpContinuation && p.frag == 0:
		return 0, nil, 0, fmt.Errorf("%w: continuation frame without a message", ErrProtocol)
	case op != ws.OpContinuation && !op.IsControl() && p.frag != 0:
		return 0, nil, 0, fmt.Errorf("%w: new message inside a fragmented one", ErrProtocol)
	}
	if !op.IsControl() {
		held := len(p.buf)
		if op != ws.OpContinuation {
			held = 0
		}
		// Check the declared length against the limit before waiting for,
		// or keeping, any of its payload.
		if length > int64(p.maxMessage-held) {
			return 0, nil, 0, fmt.Errorf("%w: %d bytes, at most %d", ErrTooBig, int64(held)+length, p.maxMessage)
		}
	}
	if int64(len(b)-hlen) < length {
		return 0, nil, 0, nil
	}
	n = hlen + int(length)
	data := b[hlen:n]
	if masked {
		var mask [4]byte
		copy(mask[:], b[hlen-4:hlen])
		ws.Cipher(data, mask, 0)
	}

	switch {
	case op.IsControl():
		return op, data, n, nil
	case op != ws.OpContinuation && fin:
		return op, data, n, nil // a whole message in one frame: no copy
	case op != ws.OpContinuation:
		p.frag = op
		p.buf = append(p.buf[:0], data...)
		return 0, nil, n, nil
	}
	p.buf = append(p.buf, data...)
	if !fin {
		return 0, nil, n, nil
	}
	op, p.frag = p.frag, 0
	return op, p.buf, n, nil
}

// Release drops the reassembly buffer if it has grown beyond keep bytes, so
// an idle connection does not pin the memory of its largest message. It
// keeps it while a fragmented message is being assembled.
func (p *Parser) Release(keep int) {
	if p.frag == 0 && cap(p.buf) > keep {
		p.buf = nil
	}
}
