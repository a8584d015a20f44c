package wsframe

import (
	"bytes"
	"io"
	"testing"

	"github.com/gobwas/ws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// parseAll feeds data to a Parser chunk bytes at a time, the way a
// readiness-driven reader does (keeping the unparsed tail, appending what
// the next read brings), and returns the messages with the first error, or
// io.EOF if data ended between frames and io.ErrUnexpectedEOF if it ended
// inside one. It also checks that the tail kept never exceeds MaxFrame.
func parseAll(t testing.TB, p *Parser, data []byte, chunk int) ([]message, error) {
	t.Helper()
	var got []message
	var pend []byte
	for len(data) > 0 {
		k := min(chunk, len(data))
		pend = append(pend, data[:k]...)
		data = data[k:]
		for {
			op, payload, n, err := p.Parse(pend)
			if err != nil {
				return got, err
			}
			if n == 0 {
				break
			}
			if op != 0 {
				got = append(got, message{op, string(payload)})
			}
			pend = pend[n:]
		}
		require.LessOrEqual(t, len(pend), p.MaxFrame(), "the unparsed tail stays within one frame")
	}
	if len(pend) > 0 {
		return got, io.ErrUnexpectedEOF
	}
	return got, io.EOF
}

// eachReader runs f with a function that reads every message of data in
// three ways: with a Reader, and with a Parser fed all at once and a byte at
// a time. Both types must accept and refuse exactly the same streams.
func eachReader(t *testing.T, f func(t *testing.T, readAll func(data []byte, limit int, fromClient bool) ([]message, error))) {
	t.Run("Reader", func(t *testing.T) {
		f(t, func(data []byte, limit int, fromClient bool) ([]message, error) {
			return readAll(t, NewReader(bytes.NewReader(data), limit, fromClient))
		})
	})
	for _, chunk := range []int{1 << 20, 1} {
		name := "Parser/whole"
		if chunk == 1 {
			name = "Parser/bytewise"
		}
		t.Run(name, func(t *testing.T) {
			f(t, func(data []byte, limit int, fromClient bool) ([]message, error) {
				return parseAll(t, NewParser(limit, fromClient), data, chunk)
			})
		})
	}
}

func TestParserRefusesTooBigFromTheHeaderAlone(t *testing.T) {
	const limit = 256
	for _, tc := range tooBigCases(limit) {
		t.Run(tc.name, func(t *testing.T) {
			p := NewParser(limit, true)
			_, err := parseAll(t, p, tc.header, 1)
			require.ErrorIs(t, err, ErrTooBig)
			assert.LessOrEqual(t, cap(p.buf), limit, "nothing is allocated for a refused payload")
		})
	}
}

func TestParserUnmasksInPlaceWithoutCopying(t *testing.T) {
	b := clientFrame(ws.OpBinary, true, []byte("hello"))
	p := NewParser(64, true)
	op, payload, n, err := p.Parse(b)
	require.NoError(t, err)
	assert.Equal(t, ws.OpBinary, op)
	assert.Equal(t, len(b), n)
	assert.Equal(t, "hello", string(payload))
	assert.Same(t, &b[len(b)-5], &payload[0], "an unfragmented message aliases the input")
	assert.Nil(t, p.buf, "and needs no buffer")
}

func TestParserReleaseAndSteadyState(t *testing.T) {
	p := NewParser(256, true)
	big := bytes.Repeat([]byte{'b'}, 200)
	got, err := parseAll(t, p, concat(clientFrame(ws.OpBinary, false, big[:100]), clientFrame(ws.OpContinuation, true, big[100:])), 7)
	require.ErrorIs(t, err, io.EOF)
	require.Equal(t, []message{{ws.OpBinary, string(big)}}, got)
	p.Release(256)
	assert.GreaterOrEqual(t, cap(p.buf), 200, "a buffer within keep stays")

	// Not while a message is being assembled: the next fragment needs it.
	_, _, n, err := p.Parse(clientFrame(ws.OpBinary, false, big[:100]))
	require.NoError(t, err)
	require.Positive(t, n)
	p.Release(16)
	require.NotNil(t, p.buf, "the message in progress keeps its buffer")
	op, payload, _, err := p.Parse(clientFrame(ws.OpContinuation, true, big[100:]))
	require.NoError(t, err)
	require.Equal(t, ws.OpBinary, op)
	require.Equal(t, big, payload)

	p.Release(16)
	assert.Nil(t, p.buf, "a buffer beyond keep is dropped")

	data := concat(
		clientFrame(ws.OpBinary, false, []byte("abc")),
		clientFrame(ws.OpPing, true, []byte("p")),
		clientFrame(ws.OpContinuation, true, []byte("def")),
		clientFrame(ws.OpBinary, true, []byte("input")),
	)
	buf := make([]byte, len(data))
	parse := func() {
		copy(buf, data) // Parse unmasks in place
		b := buf
		for len(b) > 0 {
			_, _, n, err := p.Parse(b)
			if err != nil || n == 0 {
				t.Fatalf("parse: n=%d err=%v", n, err)
			}
			b = b[n:]
		}
	}
	parse()
	assert.Zero(t, testing.AllocsPerRun(100, parse), "steady-state parsing must not allocate")
}
