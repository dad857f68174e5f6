package signals

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test leaves no goroutine behind: LLM calls, HTTP transports and
// calibration workers included.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
