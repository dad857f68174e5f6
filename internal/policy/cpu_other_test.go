//go:build !linux

package policy

import "testing"

type threadCPU struct{}

func startThreadCPU() *threadCPU { return &threadCPU{} }

func (c *threadCPU) report(*testing.B, int) {}
