package watch

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const sample = `
listen = "127.0.0.1:51234"   # funcd's own keys are left alone

[[watch]]
type = "nagios"
name = "disk root"
every = "2m"
plugin = "check_disk"
args = ["-w", "10%", "-c", "5%", "-p", "/"]
timeout = "20s"

[[watch]]
type = "threshold"
name = "root full"
metric = "disk"
path = "/"
warn = 80
crit = 90
hysteresis = 3
pause_during_calls = true

[[watch]]
type = "threshold"
name = "load"
metric = "load"
crit = 2.5
average = 15
per_cpu = true
only_on_change = false

[[watch]]
type = "file"
name = "passwd"
path = "/etc/passwd"
notify = false

[[watch]]
type = "service"
name = "nginx"
unit = "nginx.service"
every = "10s"
`

func TestParse(t *testing.T) {
	ws, err := Parse([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 5 {
		t.Fatalf("%d watches", len(ws))
	}
	n := ws[0].Check.(*Nagios)
	if ws[0].Name != "disk root" || ws[0].Every != 2*time.Minute || n.Plugin != "check_disk" || len(n.Args) != 6 || n.Timeout != 20*time.Second {
		t.Errorf("nagios = %+v %+v", ws[0], n)
	}
	th := ws[1].Check.(*Threshold)
	if !ws[1].PauseDuringCalls || th.Metric != "disk" || th.Path != "/" || th.Warn != 80 || th.Crit != 90 || th.Hysteresis != 3 || ws[1].Always {
		t.Errorf("threshold = %+v %+v", ws[1], th)
	}
	if l := ws[2].Check.(*Threshold); !ws[2].Always || l.Average != 15 || !l.PerCPU || l.Warn != 0 {
		t.Errorf("load = %+v %+v", ws[2], l)
	}
	if f := ws[3].Check.(*File); f.Path != "/etc/passwd" || !f.NoNotify || ws[3].Check.Type() != "file" {
		t.Errorf("file = %+v", f)
	}
	if s := ws[4].Check.(*Service); s.Unit != "nginx.service" || ws[4].Every != 10*time.Second {
		t.Errorf("service = %+v", s)
	}
	if ws, err := Parse([]byte("log-level = \"debug\"\n")); err != nil || len(ws) != 0 {
		t.Errorf("no watches: %v, %v", ws, err)
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct{ toml, want string }{
		{"[[watch]]\ntype = \"nagios\"\nname = \"x\"\nplugin = \"check_x\"\nplugn = 1\n", `unknown key "plugn"`},
		{"[[watch]]\ntype = \"file\"\nname = \"x\"\npath = \"/etc\"\nunit = \"x\"\n", `unknown key "unit"`},
		{"[[watch]]\ntype = \"cron\"\nname = \"x\"\n", `type "cron"`},
		{"[[watch]]\nname = \"x\"\n", `type ""`},
		{"[[watch]]\ntype = \"file\"\nname = \"a;b\"\npath = \"/etc\"\n", "name"},
		{"[[watch]]\ntype = \"file\"\nname = \"x\"\npath = \"etc\"\n", "clean absolute path"},
		{"[[watch]]\ntype = \"file\"\nname = \"x\"\npath = \"/etc\"\nevery = 60\n", "every 60ns"},
		{"[[watch]]\ntype = \"file\"\nname = \"x\"\npath = \"/etc\"\nevery = \"soon\"\n", "soon"},
		{"[[watch]]\ntype = \"threshold\"\nname = \"x\"\nmetric = \"memory\"\nwarn = 90\ncrit = 80\n", "warn <= crit"},
		{"[[watch]]\ntype = \"service\"\nname = \"x\"\nunit = \"--now\"\n", "not a valid unit name"},
		{"[[watch]]\ntype = \"service\"\nname = \"x\"\nunit = \"a\"\n[[watch]]\ntype = \"service\"\nname = \"x\"\nunit = \"b\"\n", "also watch 1's"},
		{"watch = 3\n", ""},
		{"[[watch]\n", ""},
	} {
		_, err := Parse([]byte(tc.toml))
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want ErrConfig mentioning %q", tc.toml, err, tc.want)
		}
	}
}

// FuzzParse: never panics; what parses is valid and parses the same
// way again.
func FuzzParse(f *testing.F) {
	f.Add(sample)
	f.Add("[[watch]]\ntype = \"file\"\nname = \"x\"\npath = \"/etc\"\n")
	f.Add("[[watch]]\ntype = \"threshold\"\nname = \"x\"\nmetric = \"load\"\ncrit = 1\n")
	f.Fuzz(func(t *testing.T, s string) {
		ws, err := Parse([]byte(s))
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v is not ErrConfig", err)
			}
			return
		}
		for _, w := range ws {
			if err := w.validate(); err != nil {
				t.Fatalf("Parse accepted an invalid watch %+v: %v", w, err)
			}
		}
	})
}
