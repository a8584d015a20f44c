package main

import (
	"syscall"
	"time"
)

// sleepPrecisely blocks the thread in nanosleep for d.
func sleepPrecisely(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	for syscall.Nanosleep(&ts, &ts) == syscall.EINTR {
	}
}
