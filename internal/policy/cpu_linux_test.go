package policy

import (
	"runtime"
	"syscall"
	"testing"
	"time"
)

// threadCPU measures the calling thread's CPU time (Linux RUSAGE_THREAD).
type threadCPU struct{ start time.Duration }

const rusageThread = 1

func threadTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startThreadCPU locks the goroutine to its thread until report.
func startThreadCPU() *threadCPU {
	runtime.LockOSThread()
	return &threadCPU{start: threadTime()}
}

func (c *threadCPU) report(b *testing.B, n int) {
	d := threadTime() - c.start
	runtime.UnlockOSThread()
	if n > 0 && c.start > 0 {
		b.ReportMetric(float64(d.Nanoseconds())/float64(n), "cpu-ns/op")
	}
}
