//go:build !unix && !windows

package bots

import "time"

// processCPU returns 0: this system has no process CPU accounting the bots
// can read, so the report's bots_cpu_cores is 0.
func processCPU() time.Duration { return 0 }
