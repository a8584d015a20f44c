package rooms

import "time"

// waiter is how the node clock waits for its next tick: precisely on Linux
// (sleep_linux.go), on a Go timer elsewhere and in tests, where the fake
// clock of testing/synctest serves it.
type waiter interface {
	// wait returns once d has passed, or early after interrupt, even one
	// that came before the wait started. The clock's goroutine calls it.
	wait(d time.Duration) error
	// interrupt ends the current or next wait early; any goroutine.
	interrupt()
	// close releases the waiter once nothing waits.
	close()
}

// timerWaiter waits on a Go timer.
type timerWaiter struct {
	timer *time.Timer
	woken chan struct{}
}

func newTimerWaiter() *timerWaiter {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &timerWaiter{timer: t, woken: make(chan struct{}, 1)}
}

func (w *timerWaiter) wait(d time.Duration) error {
	w.timer.Reset(d)
	select {
	case <-w.timer.C:
	case <-w.woken:
		w.timer.Stop()
	}
	return nil
}

func (w *timerWaiter) interrupt() {
	select {
	case w.woken <- struct{}{}:
	default:
	}
}

func (w *timerWaiter) close() { w.timer.Stop() }
