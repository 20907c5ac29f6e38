package xmlrpc

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// roundTripResponse encodes v as a response and decodes it again.
func roundTripResponse(t *testing.T, v any) any {
	t.Helper()
	var buf bytes.Buffer
	if err := EncodeResponse(&buf, v); err != nil {
		t.Fatalf("EncodeResponse: %v", err)
	}
	got, err := DecodeResponse(&buf, Limits{})
	if err != nil {
		t.Fatalf("DecodeResponse: %v", err)
	}
	return got
}

// roundTripValues pairs Go values with what decoding their encoding gives.
var roundTripValues = []struct {
	name    string
	in, out any
}{
	{"nil", nil, nil},
	{"int", 7, int64(7)},
	{"int64 max", int64(math.MaxInt64), int64(math.MaxInt64)},
	{"int64 min", int64(math.MinInt64), int64(math.MinInt64)},
	{"2^31", int64(1) << 31, int64(1) << 31},
	{"uint32 max", uint32(math.MaxUint32), int64(math.MaxUint32)},
	{"bool", true, true},
	{"double", 0.1, 0.1},
	{"tiny double", 5e-324, 5e-324},
	{"huge double", math.MaxFloat64, math.MaxFloat64},
	{"negative double", -123.456, -123.456},
	{"string", "tab\t nl\n cr\r <&>", "tab\t nl\n cr\r <&>"},
	{"spaces only", "   ", "   "},
	{"unencodable string", "\x00\x1b\xff", []byte("\x00\x1b\xff")},
	{"bytes", []byte{0, 1, 254, 255}, []byte{0, 1, 254, 255}},
	{"time", time.Date(2038, 1, 19, 3, 14, 8, 0, time.UTC), time.Date(2038, 1, 19, 3, 14, 8, 0, time.UTC)},
	{"slice", []string{"a", ""}, []any{"a", ""}},
	{"nested", map[string]any{"procs": []map[string]any{{"pid": 1, "cmd": []string{"init"}}}, "n": nil},
		map[string]any{"procs": []any{map[string]any{"pid": int64(1), "cmd": []any{"init"}}}, "n": nil}},
	{"struct", struct {
		JobID   string
		Started time.Time
		Big     uint64
	}{"j1", time.Unix(1e9, 0), 1 << 40},
		map[string]any{"job_id": "j1", "started": time.Unix(1e9, 0).UTC(), "big": int64(1) << 40}},
}

func TestRoundTripResponse(t *testing.T) {
	for _, tt := range roundTripValues {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.out, roundTripResponse(t, tt.in)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestRoundTripCall(t *testing.T) {
	var in, want []any
	for _, tt := range roundTripValues {
		in = append(in, tt.in)
		want = append(want, tt.out)
	}
	var buf bytes.Buffer
	if err := EncodeCall(&buf, "jobs.job_status", in...); err != nil {
		t.Fatalf("EncodeCall: %v", err)
	}
	call, err := DecodeCall(&buf, Limits{})
	if err != nil {
		t.Fatalf("DecodeCall: %v", err)
	}
	if call.Method != "jobs.job_status" {
		t.Errorf("Method = %q", call.Method)
	}
	if diff := cmp.Diff(want, call.Params); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestRoundTripLargeResult(t *testing.T) {
	procs := processList(2000)
	got := roundTripResponse(t, procs)
	list, ok := got.([]any)
	if !ok || len(list) != len(procs) {
		t.Fatalf("got %T of %d, want 2000 structs", got, len(list))
	}
	last := list[len(list)-1].(map[string]any)
	if last["pid"] != int64(procs[1999].PID) || last["cmdline"].([]any)[1] != procs[1999].Cmdline[1] {
		t.Errorf("last process = %v, want %+v", last, procs[1999])
	}
}

// process is a ps line, the typical large result.
type process struct {
	PID        int
	PPID       int
	User       string
	CPUPercent float64
	MemRSS     uint64
	Started    time.Time
	State      string
	Cmdline    []string
}

func processList(n int) []process {
	procs := make([]process, n)
	for i := range procs {
		procs[i] = process{
			PID:        i + 1,
			PPID:       i / 2,
			User:       "www-data",
			CPUPercent: float64(i%100) / 7,
			MemRSS:     uint64(i) << 20,
			Started:    time.Date(2026, 1, 1, 0, 0, i%60, 0, time.UTC),
			State:      "S",
			Cmdline:    []string{"/usr/sbin/nginx", "-g", "daemon off; worker " + strings.Repeat("x", i%10)},
		}
	}
	return procs
}
