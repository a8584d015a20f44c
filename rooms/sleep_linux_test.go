package rooms

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The waiter's contract: an interrupt ends the current or the next wait.
// An interrupt that comes before the wait must not be lost to the wait's
// arming of the timer (found in review: the wait ran its whole length).
func TestTimerfdWaiterKeepsAnEarlyInterrupt(t *testing.T) {
	w, err := newPreciseWaiter()
	require.NoError(t, err)
	defer w.close()
	w.interrupt()
	done := make(chan error, 1)
	go func() { done <- w.wait(time.Hour) }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the wait after an interrupt did not end: the interrupt was lost")
	}
	// And a plain wait still waits for its timer.
	require.NoError(t, w.wait(time.Millisecond))
}
