package test

import (
	"testing"

	"go.uber.org/goleak"
)

// The end-to-end test starts a fleet: its goroutines must all be gone.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
