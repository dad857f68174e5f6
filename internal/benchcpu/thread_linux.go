package benchcpu

import (
	"syscall"
	"time"
	"unsafe"
)

// Thread returns the CPU time of the calling OS thread
// (CLOCK_THREAD_CPUTIME_ID).
func Thread() (time.Duration, bool) {
	const clockThreadCPUTimeID = 3
	var ts syscall.Timespec
	_, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0)
	return time.Duration(ts.Nano()), errno == 0
}
