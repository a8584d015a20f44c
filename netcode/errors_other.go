//go:build !unix

package netcode

import "errors"

var errTooManyFiles = errors.New("too many open files")

// errConnReset never matches here: resets count as socket errors.
var errConnReset = errors.New("connection reset by peer")
