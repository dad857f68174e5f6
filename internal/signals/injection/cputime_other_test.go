//go:build !linux

package injection

func threadCPU() (int64, bool) { return 0, false }
