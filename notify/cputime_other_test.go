//go:build !unix

package notify_test

import "time"

// cpuTime is not measured on this platform: benchmarks report 0 CPU.
func cpuTime() time.Duration { return 0 }
