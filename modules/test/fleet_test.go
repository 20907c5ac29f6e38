package test_test

import (
	"errors"
	"testing"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/overlord"
)

// TestOverMutualTLS calls the module through a real minion and overlord.
func TestOverMutualTLS(t *testing.T) {
	f := fleettest.Start(t, fleettest.Config{Minions: 2, HostTimeout: time.Minute})
	o := f.Overlord()
	res, err := o.Targets("*").Call(t.Context(), "test", "add", int64(1)<<40, 2)
	if err != nil {
		t.Fatal(err)
	}
	for host, r := range res {
		if r.Value != int64(1)<<40+2 {
			t.Errorf("%s: test.add = %#v", host, r.Value)
		}
	}
	res, err = o.Targets("m1.test").Call(t.Context(), "test", "echo", map[string]any{"k": []any{"v", 1.5}})
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := res["m1.test"].Value.(map[string]any); !ok || m["k"].([]any)[1] != 1.5 {
		t.Errorf("test.echo = %#v", res["m1.test"].Value)
	}
	_, err = o.Targets("m1.test").Call(t.Context(), "test", "sleep", -1)
	if !errors.Is(err, gofunc.ErrBadArgs) {
		t.Errorf("test.sleep(-1) = %v, want bad args", err)
	}
	res, _ = o.Targets("m1.test").Call(t.Context(), "test", "explode")
	var fault *gofunc.Fault
	if !errors.As(res["m1.test"].Err, &fault) || fault.Code != gofunc.CodeModule {
		t.Errorf("test.explode = %v, want a module fault", res["m1.test"].Err)
	}
	// The host timeout cuts a long sleep short.
	start := time.Now()
	_, err = f.Client(overlord.WithHostTimeout(2*time.Second)).Targets("m1.test").Call(t.Context(), "test", "sleep", 30)
	if err == nil || time.Since(start) > 25*time.Second {
		t.Errorf("test.sleep(30) with a 2s host timeout = %v after %v", err, time.Since(start))
	}
}
