// Package wirenum turns the numbers system libraries report into numbers
// XML-RPC can carry: signed 64-bit integers and finite doubles. The
// modules that report sizes, counts and percentages share it.
package wirenum

import "math"

// Int64 converts u for the wire (XML-RPC integers are signed), clamping
// values above math.MaxInt64.
func Int64(u uint64) int64 {
	if u > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(u)
}

// Finite returns f, or 0 when f is NaN or infinite (XML-RPC has no NaN),
// rounded to two decimals.
func Finite(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return math.Round(f*100) / 100
}
