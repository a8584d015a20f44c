//go:build linux

package rooms

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// timerfdWaiter is the node clock's precise wait on Linux: a timerfd, which
// the kernel fires on a high-resolution timer, waited for in the Go
// runtime's poller. No thread blocks on it: the clock's goroutine parks,
// and the runtime's own wait for events (or its next look at them) wakes it
// when the timer fires. Go timers sleep in that same poller with
// millisecond resolution, and a nanosleep blocks a thread, whose processor
// the runtime then hands off, with a wake-up of its monitor thread each
// time (thousands a second at 60 Hz).
type timerfdWaiter struct {
	file *os.File
	raw  syscall.RawConn
	// interrupted keeps an interrupt that lands before a wait: that
	// wait's arming would discard the expiry the interrupt set.
	interrupted atomic.Bool
}

func newPreciseWaiter() (waiter, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("rooms: timerfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "clock")
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("rooms: timerfd: %w", err)
	}
	return &timerfdWaiter{file: f, raw: raw}, nil
}

// arm sets the timer to fire once, after d (at least a nanosecond: zero
// would disarm it).
func (w *timerfdWaiter) arm(fd uintptr, d time.Duration) error {
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(max(int64(d), 1))}
	return unix.TimerfdSettime(int(fd), 0, &spec, nil)
}

func (w *timerfdWaiter) wait(d time.Duration) error {
	var armErr error
	if err := w.raw.Control(func(fd uintptr) { armErr = w.arm(fd, d) }); err != nil {
		return fmt.Errorf("rooms: timerfd: %w", err)
	}
	if armErr != nil {
		return fmt.Errorf("rooms: timerfd_settime: %w", armErr)
	}
	if w.interrupted.Swap(false) {
		return nil // the clock looks at why, and waits again if need be
	}
	var readErr error
	err := w.raw.Read(func(fd uintptr) bool {
		var expirations [8]byte
		for {
			_, readErr = syscall.Read(int(fd), expirations[:])
			if !errors.Is(readErr, syscall.EINTR) {
				break
			}
		}
		if errors.Is(readErr, syscall.EAGAIN) {
			readErr = nil
			return false // not yet: park until the timer fires
		}
		return true
	})
	if err == nil {
		err = readErr
	}
	if err != nil {
		return fmt.Errorf("rooms: timerfd: %w", err)
	}
	return nil
}

func (w *timerfdWaiter) interrupt() {
	w.interrupted.Store(true)
	_ = w.raw.Control(func(fd uintptr) { _ = w.arm(fd, 0) })
}

func (w *timerfdWaiter) close() { _ = w.file.Close() }
