package xmlrpc

import (
	"bytes"
	"encoding/json"
	"math"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/google/go-cmp/cmp"
)

// Python 3's xmlrpc.client is the reference client of the design: these
// tests run the real one.

func runPython(t *testing.T, script string, stdin []byte) []byte {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("SKIPPED: python3 is not on PATH; the Python interop check did not run")
	}
	cmd := exec.CommandContext(t.Context(), py, "-c", script)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, stderr.String())
	}
	return out
}

const pythonDumps = `
import datetime, json, sys
import xmlrpc.client as x

cases = {
    "scalars": (1, -2147483648, 2147483647, True, False, 1.5, -0.25, 1e20, 1e-7, -0.0, None),
    "strings": ("plain", "a<b>&c ]]> \"q\" 'a'", "", "  spaced  ", "tab\tnl\n", "日本語 \U0001F600"),
    "bytes": (b"", b"\x00\xff" * 100),
    "time": (datetime.datetime(2024, 2, 29, 23, 59, 58),),
    "nested": ({"name": "web1", "ports": [22, 80], "meta": {"up": True, "load": 0.5}, "none": None, "t": ()},),
    "empty": (),
    "unicode keys": ({"κλειδί": "τιμή", "a&b": 1},),
}
out = {k: x.dumps(v, methodname="x.y", allow_none=True) for k, v in cases.items()}
# What ServerProxy sends with encoding="us-ascii": non-ASCII as character references.
out["us-ascii"] = x.dumps(("é😀",), methodname="x.y", encoding="us-ascii").encode("us-ascii", "xmlcharrefreplace").decode("ascii")
json.dump(out, sys.stdout)
`

func TestPythonCallsDecode(t *testing.T) {
	var docs map[string]string
	if err := json.Unmarshal(runPython(t, pythonDumps, nil), &docs); err != nil {
		t.Fatal(err)
	}
	want := map[string][]any{
		"scalars": {int64(1), int64(math.MinInt32), int64(math.MaxInt32), true, false, 1.5, -0.25, 1e20, 1e-7, math.Copysign(0, -1), nil},
		"strings": {"plain", `a<b>&c ]]> "q" 'a'`, "", "  spaced  ", "tab\tnl\n", "日本語 \U0001F600"},
		"bytes":   {[]byte{}, bytes.Repeat([]byte{0, 0xff}, 100)},
		"time":    {time.Date(2024, 2, 29, 23, 59, 58, 0, time.UTC)},
		"nested": {map[string]any{"name": "web1", "ports": []any{int64(22), int64(80)},
			"meta": map[string]any{"up": true, "load": 0.5}, "none": nil, "t": []any{}}},
		"empty":        {},
		"unicode keys": {map[string]any{"κλειδί": "τιμή", "a&b": int64(1)}},
		"us-ascii":     {"é😀"},
	}
	if len(docs) != len(want) {
		t.Fatalf("python produced %d documents, want %d", len(docs), len(want))
	}
	for name, doc := range docs {
		call, err := DecodeCall(strings.NewReader(doc), Limits{})
		if err != nil {
			t.Errorf("%s: DecodeCall: %v\n%s", name, err, doc)
			continue
		}
		if call.Method != "x.y" {
			t.Errorf("%s: Method = %q", name, call.Method)
		}
		if diff := cmp.Diff(want[name], call.Params); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
}

const pythonLoads = `
import base64, datetime, json, sys
import xmlrpc.client as x

def norm(v):
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return {"int": str(v)}
    if isinstance(v, float):
        return {"double": repr(v)}
    if isinstance(v, bytes):
        return {"bytes": v.hex()}
    if isinstance(v, datetime.datetime):
        return {"time": v.isoformat()}
    if isinstance(v, (list, tuple)):
        return [norm(e) for e in v]
    if isinstance(v, dict):
        return {k: norm(e) for k, e in v.items()}
    raise TypeError(type(v))

out = {}
for name, doc in json.load(sys.stdin).items():
    try:
        params, method = x.loads(doc, use_builtin_types=True)
        out[name] = {"value": norm(params[0]), "method": method}
    except x.Fault as f:
        out[name] = {"fault": [f.faultCode, f.faultString]}
json.dump(out, sys.stdout)
`

func TestPythonReadsResponses(t *testing.T) {
	type job struct {
		JobID    string
		Started  time.Time
		Progress float64
		Output   []byte
		Hosts    map[string]int
		Note     *string
	}
	values := map[string]any{
		"int":       42,
		"int64":     int64(1) << 40,
		"negative":  int64(math.MinInt64),
		"bool":      true,
		"double":    0.1,
		"huge":      1e300,
		"string":    "a<b>&c ]]> \r\n\t 日本 \U0001F600",
		"binary":    "\x1b[1mbold\x1b[0m", // sent as base64
		"bytes":     []byte{0, 1, 2, 255},
		"nil":       nil,
		"time":      time.Date(2026, 11, 3, 14, 5, 6, 0, time.UTC),
		"list":      []any{1, "two", []int{3}, nil},
		"struct":    job{JobID: "j-1", Started: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Progress: 0.5, Output: []byte("ok\n"), Hosts: map[string]int{"b": 2, "a": 1}},
		"empty map": map[string]string{},
	}
	docs := map[string]string{}
	for name, v := range values {
		var buf bytes.Buffer
		if err := EncodeResponse(&buf, v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		docs[name] = buf.String()
	}
	var buf bytes.Buffer
	if err := EncodeFault(&buf, gofunc.Errorf(gofunc.CodeNotFound, "no job <j-9>")); err != nil {
		t.Fatal(err)
	}
	docs["fault"] = buf.String()
	in, _ := json.Marshal(docs)

	var got map[string]any
	if err := json.Unmarshal(runPython(t, pythonLoads, in), &got); err != nil {
		t.Fatal(err)
	}
	i := func(s string) any { return map[string]any{"int": s} }
	v := func(x any) any { return map[string]any{"value": x, "method": nil} }
	want := map[string]any{
		"int":      v(i("42")),
		"int64":    v(i("1099511627776")),
		"negative": v(i("-9223372036854775808")),
		"bool":     v(true),
		"double":   v(map[string]any{"double": "0.1"}),
		"huge":     v(map[string]any{"double": "1e+300"}),
		"string":   v("a<b>&c ]]> \r\n\t 日本 \U0001F600"),
		"binary":   v(map[string]any{"bytes": "1b5b316d626f6c641b5b306d"}),
		"bytes":    v(map[string]any{"bytes": "000102ff"}),
		"nil":      v(nil),
		"time":     v(map[string]any{"time": "2026-11-03T14:05:06"}),
		"list":     v([]any{i("1"), "two", []any{i("3")}, nil}),
		"struct": v(map[string]any{
			"job_id":   "j-1",
			"started":  map[string]any{"time": "2026-01-01T00:00:00"},
			"progress": map[string]any{"double": "0.5"},
			"output":   map[string]any{"bytes": "6f6b0a"},
			"hosts":    map[string]any{"a": i("1"), "b": i("2")},
			"note":     nil,
		}),
		"empty map": v(map[string]any{}),
		"fault":     map[string]any{"fault": []any{float64(gofunc.CodeNotFound), "no job <j-9>"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("what Python read (-want +got):\n%s", diff)
	}
}
