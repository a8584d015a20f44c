//go:build unix

package netcode

import "syscall"

// errTooManyFiles is accept's error when the process is out of descriptors.
const errTooManyFiles = syscall.EMFILE

// errConnReset is a read's error when the peer reset the connection.
const errConnReset = syscall.ECONNRESET
