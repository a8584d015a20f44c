//go:build linux

package rooms

import (
	"syscall"
	"time"
)

// sleepPrecisely blocks the calling thread until d has passed. Go's timers
// sleep in the network poller with millisecond resolution, which makes a
// 60 Hz tick start up to a millisecond late; nanosleep is precise to tens of
// microseconds. The room loop uses it only for the last stretch before a tick
// (spinMargin), after a coarse timer did the rest.
func sleepPrecisely(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	for {
		err := syscall.Nanosleep(&ts, &ts)
		if err != syscall.EINTR {
			return
		}
	}
}
