package wsframe

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/gobwas/ws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testMask is a fixed mask, so test frames are reproducible.
var testMask = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// header returns a frame header with any fin, opcode and reserved bits
// (AppendHeader only builds final frames without reserved bits), masked with
// testMask if masked.
func header(op ws.OpCode, fin bool, rsv byte, masked bool, n int) []byte {
	var b0 byte
	if fin {
		b0 = 0x80
	}
	b0 |= rsv<<4 | byte(op)
	var m byte
	if masked {
		m = 0x80
	}
	var b []byte
	switch {
	case n < 126:
		b = []byte{b0, m | byte(n)}
	case n <= 0xffff:
		b = []byte{b0, m | 126, byte(n >> 8), byte(n)}
	default:
		b = []byte{b0, m | 127, 0, 0, 0, 0, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
	}
	if masked {
		b = append(b, testMask[:]...)
	}
	return b
}

// frame returns one whole frame as header describes it, its payload masked
// if masked.
func frame(op ws.OpCode, fin bool, rsv byte, masked bool, payload []byte) []byte {
	b := header(op, fin, rsv, masked, len(payload))
	start := len(b)
	b = append(b, payload...)
	if masked {
		MaskPayload(b[start:], testMask)
	}
	return b
}

// clientFrame is a masked frame, as a client sends.
func clientFrame(op ws.OpCode, fin bool, payload []byte) []byte {
	return frame(op, fin, 0, true, payload)
}

// finalFrame is a masked final frame built with AppendHeader and MaskPayload,
// the way netcodetest and the client build theirs.
func finalFrame(op ws.OpCode, payload []byte) []byte {
	b := AppendHeader(nil, op, len(payload), &testMask)
	n := len(b)
	b = append(b, payload...)
	MaskPayload(b[n:], testMask)
	return b
}

func concat(frames ...[]byte) []byte { return bytes.Join(frames, nil) }

type message struct {
	op      ws.OpCode
	payload string
}

// readAll reads messages until an error and returns them with that error.
func readAll(t testing.TB, r *Reader) ([]message, error) {
	t.Helper()
	var got []message
	for {
		op, p, err := r.Next()
		if err != nil {
			return got, err
		}
		got = append(got, message{op, string(p)})
	}
}

func TestReaderRejectsProtocolViolations(t *testing.T) {
	big := bytes.Repeat([]byte{'x'}, 126)
	cases := []struct {
		name       string
		fromClient bool
		data       []byte
	}{
		{"unmasked frame from a client", true, frame(ws.OpBinary, true, 0, false, []byte("hi"))},
		{"masked frame from a server", false, frame(ws.OpBinary, true, 0, true, []byte("hi"))},
		{"rsv1 set", true, frame(ws.OpBinary, true, 4, true, []byte("hi"))},
		{"rsv2 set", true, frame(ws.OpBinary, true, 2, true, []byte("hi"))},
		{"rsv3 set", true, frame(ws.OpBinary, true, 1, true, []byte("hi"))},
		{"rsv set on a control frame", true, frame(ws.OpPing, true, 4, true, nil)},
		{"reserved data opcode", true, clientFrame(0x3, true, []byte("hi"))},
		{"reserved control opcode", true, clientFrame(0xb, true, nil)},
		{"control frame of 126 bytes", true, clientFrame(ws.OpPing, true, big)},
		{"close frame of 126 bytes", true, clientFrame(ws.OpClose, true, big)},
		{"fragmented ping", true, clientFrame(ws.OpPing, false, []byte("p"))},
		{"fragmented close", true, clientFrame(ws.OpClose, false, []byte{3, 232})},
		{"continuation without a message", true, clientFrame(ws.OpContinuation, true, []byte("x"))},
		{"non-final continuation without a message", true, clientFrame(ws.OpContinuation, false, []byte("x"))},
		{"binary inside a fragmented binary", true, concat(
			clientFrame(ws.OpBinary, false, []byte("a")),
			clientFrame(ws.OpBinary, true, []byte("b")),
		)},
		{"text inside a fragmented binary", true, concat(
			clientFrame(ws.OpBinary, false, []byte("a")),
			clientFrame(ws.OpText, false, []byte("b")),
		)},
		{"64-bit length with the top bit set", true, []byte{0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4}},
	}
	eachReader(t, func(t *testing.T, readAll func([]byte, int, bool) ([]message, error)) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				_, err := readAll(tc.data, 1<<20, tc.fromClient)
				require.ErrorIs(t, err, ErrProtocol)
				assert.NotErrorIs(t, err, ErrTooBig)
			})
		}
	})
}

func TestReaderAcceptsBothSides(t *testing.T) {
	payload := []byte("hello")
	srv := NewReader(bytes.NewReader(clientFrame(ws.OpBinary, true, payload)), 64, true)
	op, p, err := srv.Next()
	require.NoError(t, err)
	assert.Equal(t, ws.OpBinary, op)
	assert.Equal(t, payload, p, "the server side unmasks client frames")

	cli := NewReader(bytes.NewReader(AppendHeader(nil, ws.OpText, len(payload), nil)), 64, false)
	_, _, err = cli.Next()
	require.ErrorIs(t, err, io.ErrUnexpectedEOF, "header only: the payload is missing")
	cli = NewReader(bytes.NewReader(append(AppendHeader(nil, ws.OpText, len(payload), nil), payload...)), 64, false)
	op, p, err = cli.Next()
	require.NoError(t, err)
	assert.Equal(t, ws.OpText, op)
	assert.Equal(t, payload, p)
}

func TestReaderReassemblesFragments(t *testing.T) {
	data := concat(
		clientFrame(ws.OpBinary, false, []byte("hel")),
		clientFrame(ws.OpPing, true, []byte("p1")), // control frames may interleave
		clientFrame(ws.OpContinuation, false, nil), // empty fragments are legal
		clientFrame(ws.OpContinuation, false, []byte("lo ")),
		clientFrame(ws.OpPong, true, nil),
		clientFrame(ws.OpContinuation, true, []byte("world")),
		clientFrame(ws.OpText, false, []byte("a")),
		clientFrame(ws.OpContinuation, true, []byte("b")),
		clientFrame(ws.OpBinary, true, nil),
		finalFrame(ws.OpClose, CloseBody(1000, "bye")),
	)
	eachReader(t, func(t *testing.T, readAll func([]byte, int, bool) ([]message, error)) {
		got, err := readAll(data, 64, true)
		require.ErrorIs(t, err, io.EOF)
		assert.Equal(t, []message{
			{ws.OpPing, "p1"},
			{ws.OpPong, ""},
			{ws.OpBinary, "hello world"},
			{ws.OpText, "ab"},
			{ws.OpBinary, ""},
			{ws.OpClose, "\x03\xe8bye"},
		}, got)
	})
}

func TestReaderEnforcesTheLimit(t *testing.T) {
	const limit = 16
	exact := bytes.Repeat([]byte{'a'}, limit)
	cases := []struct {
		name    string
		data    []byte
		want    []message
		wantErr error
	}{
		{"exactly the limit", clientFrame(ws.OpBinary, true, exact), []message{{ws.OpBinary, string(exact)}}, io.EOF},
		{"fragments adding up to the limit", concat(
			clientFrame(ws.OpBinary, false, exact[:10]),
			clientFrame(ws.OpContinuation, true, exact[10:]),
		), []message{{ws.OpBinary, string(exact)}}, io.EOF},
		{"one byte over", clientFrame(ws.OpBinary, true, append(exact, 'b')), nil, ErrTooBig},
		{"fragments one byte over", concat(
			clientFrame(ws.OpBinary, false, exact[:10]),
			clientFrame(ws.OpContinuation, false, exact[10:]),
			clientFrame(ws.OpContinuation, true, []byte{'b'}),
		), nil, ErrTooBig},
		{"a second message is measured on its own", concat(
			clientFrame(ws.OpBinary, true, exact),
			clientFrame(ws.OpBinary, false, exact[:8]),
			clientFrame(ws.OpContinuation, true, exact[8:]),
		), []message{{ws.OpBinary, string(exact)}, {ws.OpBinary, string(exact)}}, io.EOF},
	}
	eachReader(t, func(t *testing.T, readAll func([]byte, int, bool) ([]message, error)) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got, err := readAll(tc.data, limit, true)
				require.ErrorIs(t, err, tc.wantErr)
				assert.Equal(t, tc.want, got)
			})
		}
	})
}

// payloadTrap fails the test's read with errTrapped: a Reader that reaches
// it tried to read a payload it should have refused.
type payloadTrap struct{ reads int }

var errTrapped = errors.New("payload read")

func (p *payloadTrap) Read([]byte) (int, error) {
	p.reads++
	return 0, errTrapped
}

// tooBigCases are streams that end with the header of a frame over limit
// (256 or more), and nothing of its payload.
func tooBigCases(limit int) []struct {
	name   string
	header []byte
} {
	return []struct {
		name   string
		header []byte
	}{
		{"one byte over, 16-bit length", AppendHeader(nil, ws.OpBinary, limit+1, &testMask)},
		{"a terabyte, 64-bit length", AppendHeader(nil, ws.OpBinary, 1<<40, &testMask)},
		{"the largest 63-bit length", []byte{0x82, 0x80 | 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4}},
		{"a fragment that overflows the message", concat(
			clientFrame(ws.OpBinary, false, bytes.Repeat([]byte{'a'}, 200)),
			header(ws.OpContinuation, false, 0, true, limit-200+1),
		)},
	}
}

func TestReaderRefusesTooBigBeforeReadingThePayload(t *testing.T) {
	const limit = 256
	for _, tc := range tooBigCases(limit) {
		t.Run(tc.name, func(t *testing.T) {
			trap := &payloadTrap{}
			r := NewReader(io.MultiReader(bytes.NewReader(tc.header), trap), limit, true)
			_, err := readAll(t, r)
			require.ErrorIs(t, err, ErrTooBig)
			assert.Zero(t, trap.reads, "the payload of a frame over the limit must not be read")
			assert.LessOrEqual(t, cap(r.buf), limit, "nothing is allocated for a refused payload")
		})
	}
}

func TestReaderReportsTruncation(t *testing.T) {
	full := clientFrame(ws.OpBinary, true, []byte("payload"))
	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"nothing", nil, io.EOF},
		{"one header byte", full[:1], io.ErrUnexpectedEOF},
		{"half the mask", full[:4], io.ErrUnexpectedEOF},
		{"half the payload", full[:len(full)-3], io.ErrUnexpectedEOF},
		{"header of a control frame only", clientFrame(ws.OpPing, true, []byte("abc"))[:6], io.ErrUnexpectedEOF},
	}
	eachReader(t, func(t *testing.T, readAll func([]byte, int, bool) ([]message, error)) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				_, err := readAll(tc.data, 64, true)
				require.ErrorIs(t, err, tc.want)
			})
		}
	})
}

func TestReaderRelease(t *testing.T) {
	big := bytes.Repeat([]byte{'b'}, 200)
	data := concat(
		clientFrame(ws.OpBinary, true, big),
		clientFrame(ws.OpBinary, true, []byte("small")),
	)
	r := NewReader(bytes.NewReader(data), 256, true)
	_, p, err := r.Next()
	require.NoError(t, err)
	require.Equal(t, big, p)
	r.Release(256)
	assert.GreaterOrEqual(t, cap(r.buf), 200, "a buffer within keep stays")
	r.Release(16)
	assert.Nil(t, r.buf, "a buffer beyond keep is dropped")
	_, p, err = r.Next()
	require.NoError(t, err)
	assert.Equal(t, "small", string(p))
}

func TestReaderSteadyStateDoesNotAllocate(t *testing.T) {
	data := concat(
		clientFrame(ws.OpBinary, false, []byte("abc")),
		clientFrame(ws.OpPing, true, []byte("p")),
		clientFrame(ws.OpContinuation, true, []byte("def")),
	)
	src := bytes.NewReader(data)
	r := NewReader(src, 64, true)
	read := func() {
		src.Reset(data)
		for range 2 {
			if _, _, err := r.Next(); err != nil {
				panic(err)
			}
		}
	}
	read() // grows the buffer once
	assert.Zero(t, testing.AllocsPerRun(100, read))
}

func TestCloseBodyRoundTrip(t *testing.T) {
	long := strings.Repeat("r", 200)
	cases := []struct {
		code       uint16
		reason     string
		wantReason string
	}{
		{1000, "", ""},
		{1001, "going away", "going away"},
		{4000, "no frame within the heartbeat timeout", "no frame within the heartbeat timeout"},
		{65535, "héllo", "héllo"},
		{1009, long, long[:123]},
	}
	for _, tc := range cases {
		body := CloseBody(tc.code, tc.reason)
		assert.LessOrEqual(t, len(body), 125, "a close body fits a control frame")
		code, reason, err := ParseClose(body)
		require.NoError(t, err)
		assert.Equal(t, tc.code, code)
		assert.Equal(t, tc.wantReason, reason)

		// What gobwas/ws makes of it agrees.
		gcode, greason := ws.ParseCloseFrameData(body)
		assert.Equal(t, ws.StatusCode(tc.code), gcode)
		assert.Equal(t, tc.wantReason, greason)

		// And the body survives a trip through a frame and a Reader.
		r := NewReader(bytes.NewReader(finalFrame(ws.OpClose, body)), 16, true)
		op, p, err := r.Next()
		require.NoError(t, err)
		assert.Equal(t, ws.OpClose, op)
		assert.Equal(t, body, p)
	}

	code, reason, err := ParseClose(nil)
	require.NoError(t, err)
	assert.Equal(t, uint16(1005), code, "an empty close payload means no status received")
	assert.Empty(t, reason)

	_, _, err = ParseClose([]byte{3})
	require.ErrorIs(t, err, ErrProtocol)
}

func TestAppendHeaderRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 1 << 20} {
		for _, op := range []ws.OpCode{ws.OpBinary, ws.OpText, ws.OpClose, ws.OpPing, ws.OpPong} {
			for _, mask := range []*[4]byte{nil, &testMask} {
				prefix := []byte("prefix")
				b := AppendHeader(prefix, op, n, mask)
				require.Equal(t, "prefix", string(b[:len(prefix)]), "AppendHeader appends")
				hdr := b[len(prefix):]
				wantLen := HeaderLen(n)
				if mask != nil {
					wantLen += 4
				}
				require.Len(t, hdr, wantLen, "n=%d", n)

				h, err := ws.ReadHeader(bytes.NewReader(hdr))
				require.NoError(t, err, "n=%d", n)
				assert.True(t, h.Fin)
				assert.Zero(t, h.Rsv)
				assert.Equal(t, op, h.OpCode)
				assert.Equal(t, int64(n), h.Length)
				assert.Equal(t, mask != nil, h.Masked)
				if mask != nil {
					assert.Equal(t, *mask, h.Mask)
				}
				// gobwas computes the same size for the same header.
				assert.Equal(t, ws.HeaderSize(h), len(hdr))
			}
		}
	}
}

func TestMaskPayloadIsAnInvolution(t *testing.T) {
	p := []byte("the quick brown fox")
	q := bytes.Clone(p)
	MaskPayload(q, testMask)
	assert.NotEqual(t, p, q)
	MaskPayload(q, testMask)
	assert.Equal(t, p, q)
}

func BenchmarkReaderNext(b *testing.B) {
	data := clientFrame(ws.OpBinary, true, bytes.Repeat([]byte{'i'}, 24))
	src := bytes.NewReader(data)
	r := NewReader(src, 4096, true)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		src.Reset(data)
		if _, _, err := r.Next(); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzReader feeds arbitrary bytes to a server-side Reader with a 256-byte
// limit. It must never panic, never return a data message over the limit or
// a control frame over 125 bytes, only return complete message opcodes, and
// fail only with the documented errors or a short read.
func FuzzReader(f *testing.F) {
	const limit = 256
	seeds := [][]byte{
		nil,
		{0x00},
		{0xff, 0xff, 0xff, 0xff},
		[]byte("GET /ws HTTP/1.1\r\n\r\n"),
		finalFrame(ws.OpBinary, []byte{0x92, 0x06, 0x01}),
		finalFrame(ws.OpBinary, bytes.Repeat([]byte{0xaa}, limit)),
		finalFrame(ws.OpBinary, bytes.Repeat([]byte{0xaa}, limit+1)),
		finalFrame(ws.OpText, []byte("text")),
		finalFrame(ws.OpPing, []byte("ping")),
		finalFrame(ws.OpPong, nil),
		finalFrame(ws.OpClose, CloseBody(1000, "bye")),
		finalFrame(ws.OpClose, []byte{3}),
		concat(
			clientFrame(ws.OpBinary, false, []byte("frag")),
			finalFrame(ws.OpPing, nil),
			clientFrame(ws.OpContinuation, false, bytes.Repeat([]byte{1}, 100)),
			clientFrame(ws.OpContinuation, true, []byte("end")),
		),
		concat(
			clientFrame(ws.OpBinary, false, bytes.Repeat([]byte{2}, 200)),
			clientFrame(ws.OpContinuation, true, bytes.Repeat([]byte{3}, 100)),
		),
		clientFrame(ws.OpContinuation, true, []byte("orphan")),
		frame(ws.OpBinary, true, 0, false, []byte("unmasked")),
		frame(ws.OpBinary, true, 7, true, []byte("rsv")),
		AppendHeader(nil, ws.OpBinary, 1<<40, &testMask),
		{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0},
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data), limit, true)
		for {
			op, p, err := r.Next()
			if err != nil {
				if !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrTooBig) &&
					!errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			switch op {
			case ws.OpBinary, ws.OpText:
				if len(p) > limit {
					t.Fatalf("data message of %d bytes, limit %d", len(p), limit)
				}
			case ws.OpClose, ws.OpPing, ws.OpPong:
				if len(p) > 125 {
					t.Fatalf("control frame of %d bytes", len(p))
				}
				if op == ws.OpClose {
					_, _, _ = ParseClose(p)
				}
			default:
				t.Fatalf("Next returned opcode %v", op)
			}
		}
	})
}
