package wirenum

import (
	"math"
	"testing"
)

func TestWireConversions(t *testing.T) {
	t.Parallel()
	if Int64(math.MaxUint64) != math.MaxInt64 || Int64(42) != 42 {
		t.Error("Int64 does not clamp")
	}
	if Finite(math.NaN()) != 0 || Finite(math.Inf(1)) != 0 || Finite(math.Inf(-1)) != 0 || Finite(12.3456) != 12.35 {
		t.Error("Finite does not sanitize")
	}
}
