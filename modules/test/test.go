// Package test is the "test" module: harmless methods for checking that a
// minion answers and that values round-trip (Func's test module).
package test

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/gofunc/gofunc"
)

// MaxSleep is the longest test.sleep accepted.
const MaxSleep = time.Hour

// Module is the test module. It has no configuration; the zero value is
// ready and safe for concurrent use.
type Module struct{}

// Ping returns true: the minion is up and the caller may call it.
func (m *Module) Ping() bool { return true }

// Echo returns its argument unchanged.
func (m *Module) Echo(x any) any { return x }

// Add returns a + b: an int when both are integers (an overflow is a
// CodeBadArgs fault), a double when either is a double.
func (m *Module) Add(a, b any) (any, error) {
	ia, aInt := asInt(a)
	ib, bInt := asInt(b)
	if aInt && bInt {
		sum := ia + ib
		if (ia > 0 && ib > 0 && sum < 0) || (ia < 0 && ib < 0 && sum >= 0) {
			return nil, gofunc.Errorf(gofunc.CodeBadArgs, "%d + %d overflows a 64-bit integer", ia, ib)
		}
		return sum, nil
	}
	fa, err := asFloat("a", a)
	if err != nil {
		return nil, err
	}
	fb, err := asFloat("b", b)
	if err != nil {
		return nil, err
	}
	return fa + fb, nil
}

// Sleep waits the given number of seconds, or until ctx ends, and returns
// the seconds actually slept. It refuses a negative value or more than an
// hour.
func (m *Module) Sleep(ctx context.Context, seconds float64) (float64, error) {
	if math.IsNaN(seconds) || seconds < 0 || seconds > MaxSleep.Seconds() {
		return 0, gofunc.Errorf(gofunc.CodeBadArgs, "seconds must be between 0 and %v, got %v", MaxSleep.Seconds(), seconds)
	}
	start := time.Now()
	timer := time.NewTimer(time.Duration(seconds * float64(time.Second)))
	defer timer.Stop()
	select {
	case <-timer.C:
		return time.Since(start).Seconds(), nil
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return 0, gofunc.Errorf(gofunc.CodeTimeout, "sleep interrupted after %.3fs: deadline exceeded", time.Since(start).Seconds())
		}
		return 0, gofunc.Errorf(gofunc.CodeCanceled, "sleep interrupted after %.3fs: canceled", time.Since(start).Seconds())
	}
}

// Explode always fails with a CodeModule fault, to test error paths.
func (m *Module) Explode() error {
	return gofunc.Errorf(gofunc.CodeModule, "test.explode: boom (this error is intended)")
}

func asInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int:
		return int64(n), true
	case int8:
		return int64(n), true
	case int16:
		return int64(n), true
	case int32:
		return int64(n), true
	case int64:
		return n, true
	}
	return 0, false
}

func asFloat(name string, v any) (float64, error) {
	if i, ok := asInt(v); ok {
		return float64(i), nil
	}
	switch f := v.(type) {
	case float64:
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, gofunc.Errorf(gofunc.CodeBadArgs, "%s is not a finite number", name)
		}
		return f, nil
	case float32:
		return asFloat(name, float64(f))
	}
	return 0, gofunc.Errorf(gofunc.CodeBadArgs, "%s is a %T, want an int or a double", name, v)
}

// Doc describes the module for introspection.
func (m *Module) Doc() gofunc.ModuleDoc {
	return gofunc.ModuleDoc{
		Description: "Harmless test methods: ping, echo, add, sleep, explode.",
		Version:     "1.0.0",
		Methods: map[string]gofunc.MethodDoc{
			"Ping": {Description: "Returns true"},
			"Echo": {
				Description: "Returns its argument unchanged",
				Args:        []gofunc.ArgDoc{{Name: "x", Type: "any", Description: "any value"}},
			},
			"Add": {
				Description: "Returns a + b: an int for two ints (64-bit, overflow refused), else a double",
				Args: []gofunc.ArgDoc{
					{Name: "a", Type: "double", Description: "int or double"},
					{Name: "b", Type: "double", Description: "int or double"},
				},
			},
			"Sleep": {
				Description: "Sleeps, honouring the call's deadline; returns the seconds slept",
				Args: []gofunc.ArgDoc{
					{Name: "seconds", Type: "double", Description: "0 to 3600"},
				},
			},
			"Explode": {Description: "Always fails with a module error (fault code 1)"},
		},
	}
}
