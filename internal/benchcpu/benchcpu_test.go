package benchcpu

import (
	"runtime"
	"testing"
)

// Busy work on a locked thread must show up as thread CPU time, and
// sleeping-free work must not exceed the wall time by much.
func TestThreadAdvancesWithWork(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("thread CPU time is read on Linux only")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t0, ok := Thread()
	if !ok {
		t.Fatal("Thread() not available on Linux")
	}
	x := uint64(1)
	for i := 0; i < 20_000_000; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	t1, _ := Thread()
	if t1-t0 <= 0 {
		t.Fatalf("thread CPU did not advance over busy work (%v -> %v, x=%d)", t0, t1, x)
	}
}
