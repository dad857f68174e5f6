//go:build !linux

package pii

import "time"

// threadCPU is not available here; the CPU-time metric is left out.
func threadCPU() (time.Duration, bool) { return 0, false }
