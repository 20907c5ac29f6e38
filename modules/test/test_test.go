package test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/modtest"
)

func TestDoc(t *testing.T) { modtest.CheckDoc(t, &Module{}) }

func TestPingEcho(t *testing.T) {
	m := &Module{}
	if !m.Ping() {
		t.Fatal("Ping = false")
	}
	for _, v := range []any{"x", int64(1) << 40, 2.5, []any{"a", int64(1)}, map[string]any{"k": true}} {
		if got := m.Echo(v); fmt.Sprint(got) != fmt.Sprint(v) {
			t.Errorf("Echo(%v) = %v", v, got)
		}
	}
}

func TestAdd(t *testing.T) {
	m := &Module{}
	for _, tc := range []struct {
		a, b, want any
		code       gofunc.Code
	}{
		{2, 3, int64(5), 0},
		{int64(1) << 40, int64(1), int64(1)<<40 + 1, 0},
		{int32(-7), int64(2), int64(-5), 0},
		{1.5, 2, 3.5, 0},
		{2, 0.25, 2.25, 0},
		{int64(math.MaxInt64), int64(1), nil, gofunc.CodeBadArgs},
		{int64(math.MinInt64), int64(-1), nil, gofunc.CodeBadArgs},
		{"1; rm -rf /", 1, nil, gofunc.CodeBadArgs},
		{1, true, nil, gofunc.CodeBadArgs},
		{math.NaN(), 1, nil, gofunc.CodeBadArgs},
		{math.Inf(1), 1.0, nil, gofunc.CodeBadArgs},
	} {
		got, err := m.Add(tc.a, tc.b)
		if tc.code != 0 {
			var f *gofunc.Fault
			if !errors.As(err, &f) || f.Code != tc.code {
				t.Errorf("Add(%v, %v) = %v, %v; want code %v", tc.a, tc.b, got, err, tc.code)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Add(%v, %v) = %#v, %v; want %#v", tc.a, tc.b, got, err, tc.want)
		}
	}
}

func TestSleep(t *testing.T) {
	m := &Module{}
	got, err := m.Sleep(t.Context(), 0.05)
	if err != nil || got < 0.05 {
		t.Fatalf("Sleep(0.05) = %v, %v", got, err)
	}
	for _, bad := range []float64{-1, 3601, 10e9, math.NaN()} {
		if _, err := m.Sleep(t.Context(), bad); !errors.Is(err, gofunc.ErrBadArgs) {
			t.Errorf("Sleep(%v) = %v, want bad args", bad, err)
		}
	}
}

func TestSleepHonoursContext(t *testing.T) {
	m := &Module{}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := m.Sleep(ctx, 3600)
	if !errors.Is(err, gofunc.ErrTimeout) {
		t.Fatalf("Sleep = %v, want a timeout fault", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatal("Sleep ignored its deadline")
	}
	ctx, cancel = context.WithCancel(t.Context())
	cancel()
	if _, err := m.Sleep(ctx, 10); !errors.Is(err, gofunc.ErrCanceled) {
		t.Fatalf("Sleep = %v, want a canceled fault", err)
	}
}

func TestExplode(t *testing.T) {
	var f *gofunc.Fault
	if err := (&Module{}).Explode(); !errors.As(err, &f) || f.Code != gofunc.CodeModule {
		t.Fatalf("Explode = %v", err)
	}
}

func ExampleModule_Add() {
	m := &Module{}
	sum, _ := m.Add(2, 3)
	fmt.Println(sum)
	sum, _ = m.Add(2, 0.5)
	fmt.Println(sum)
	// Output:
	// 5
	// 2.5
}
