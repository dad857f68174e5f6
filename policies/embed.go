// Package policies holds Switchyard's shipped Rego policies. They are embedded
// into the binary and loaded by internal/policy when the config's
// policy.dirs is empty; `switchyard policy test` with no directory runs the
// *_test.rego files here.
//
// The golden decision cases under testdata/ are not embedded; the policy
// package's tests read them from disk.
package policies

import "embed"

// FS holds the shipped policies (*.rego, including *_test.rego).
//
//go:embed *.rego
var FS embed.FS
