//go:build !linux

package rooms

// newPreciseWaiter falls back to a Go timer where timerfd is not wired up:
// it wakes up to a millisecond late.
func newPreciseWaiter() (waiter, error) { return newTimerWaiter(), nil }
