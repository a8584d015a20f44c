//go:build unix && !linux

package main

import "time"

// sleepPrecisely falls back to time.Sleep where nanosleep is not wired up.
func sleepPrecisely(d time.Duration) { time.Sleep(d) }
