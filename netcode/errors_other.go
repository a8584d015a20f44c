//go:build !unix

package netcode

import "errors"

var errTooManyFiles = errors.New("too many open files")
