//go:build unix

package netcode

import "syscall"

// errTooManyFiles is accept's error when the process is out of descriptors.
const errTooManyFiles = syscall.EMFILE
