package cluster

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// reader decodes the MessagePack of peers' messages field by field,
// bounding every string and number; the first error sticks and later
// reads return zero values, so a decoder checks err once at the end.
type reader struct {
	r   bytes.Reader
	d   *msgpack.Decoder
	err error
}

var errField = errors.New("bad field")

func newReader(p []byte) *reader {
	r := &reader{}
	r.r.Reset(p)
	r.d = msgpack.NewDecoder(&r.r)
	return r
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) arrayLen() int {
	if r.err != nil {
		return 0
	}
	n, err := r.d.DecodeArrayLen()
	if err != nil || n < 0 {
		r.fail(fmt.Errorf("%w: want an array", errField))
		return 0
	}
	return n
}

// uint reads an unsigned integer below limit.
func (r *reader) uint(limit uint64) uint64 {
	if r.err != nil {
		return 0
	}
	v, err := r.d.DecodeUint64()
	if err != nil || v >= limit {
		r.fail(fmt.Errorf("%w: want an unsigned integer below %d", errField, limit))
		return 0
	}
	return v
}

func (r *reader) int() int64 {
	if r.err != nil {
		return 0
	}
	v, err := r.d.DecodeInt64()
	if err != nil {
		r.fail(fmt.Errorf("%w: want an integer", errField))
		return 0
	}
	return v
}

// str reads a string of at most limit bytes; the length is checked before
// the bytes are read, so a hostile length allocates nothing.
func (r *reader) str(limit int) string {
	if r.err != nil {
		return ""
	}
	n, err := r.d.DecodeBytesLen() // a string or bin header; nil is -1
	if err != nil || n > limit || n > r.r.Len() {
		r.fail(fmt.Errorf("%w: want a string of at most %d bytes", errField, limit))
		return ""
	}
	if n <= 0 {
		return ""
	}
	b := make([]byte, n)
	if err := r.d.ReadFull(b); err != nil {
		r.fail(fmt.Errorf("%w: truncated string", errField))
		return ""
	}
	return string(b)
}

// done reports an error if bytes are left after the message.
func (r *reader) done() error {
	if r.err == nil && r.r.Len() != 0 {
		r.fail(fmt.Errorf("%w: %d bytes after the message", errField, r.r.Len()))
	}
	return r.err
}

// skip skips n values.
func (r *reader) skip(n int) {
	for ; n > 0 && r.err == nil; n-- {
		if err := r.d.Skip(); err != nil {
			r.fail(fmt.Errorf("%w: truncated value", errField))
		}
	}
}

// optBytes reads a bin or string of at most limit bytes, or nil (which
// it returns as a nil slice; an empty bin is an empty, non-nil slice).
func (r *reader) optBytes(limit int) []byte {
	if r.err != nil {
		return nil
	}
	n, err := r.d.DecodeBytesLen()
	if err != nil || n > limit || n > r.r.Len() {
		r.fail(fmt.Errorf("%w: want bytes, at most %d", errField, limit))
		return nil
	}
	if n < 0 {
		return nil
	}
	b := make([]byte, n)
	if err := r.d.ReadFull(b); err != nil {
		r.fail(fmt.Errorf("%w: truncated bytes", errField))
		return nil
	}
	return b
}

func (r *reader) bool() bool {
	if r.err != nil {
		return false
	}
	v, err := r.d.DecodeBool()
	if err != nil {
		r.fail(fmt.Errorf("%w: want a bool", errField))
		return false
	}
	return v
}
