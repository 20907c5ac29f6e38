package watch

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/gofunc/gofunc/events"
	"github.com/gofunc/gofunc/modules/nagios"
)

// Nagios runs a Nagios plugin (type "nagios"): an event when its state
// (OK, WARNING, CRITICAL, UNKNOWN) changes, with its output and parsed
// perfdata. The plugin runs the way the nagios module runs it (no shell,
// a fixed environment, refused if a group or others may write it), and
// the configuration allows it: the watcher's plugin need not be in the
// module's default allow list.
type Nagios struct {
	// Plugin is the plugin's file name in PluginDir: "check_disk".
	Plugin string `toml:"plugin"`
	// Args are passed as they are (no shell).
	Args []string `toml:"args"`
	// PluginDir is where the plugin is; "" means the nagios module's
	// default (/usr/lib/nagios/plugins or /usr/lib64/nagios/plugins).
	PluginDir string `toml:"plugin_dir"`
	// Timeout bounds one run; zero means 30s. A plugin that runs over is
	// killed and reported UNKNOWN.
	Timeout time.Duration `toml:"timeout"`
}

// Type implements Check.
func (*Nagios) Type() string { return "nagios" }

func (*Nagios) defaultEvery() time.Duration { return time.Minute }

func (n *Nagios) validate() error {
	switch {
	case n.Plugin == "":
		return fmt.Errorf("nagios: no plugin")
	case n.Timeout < 0 || n.Timeout > 10*time.Minute:
		return fmt.Errorf("nagios: timeout %v: at most 10m", n.Timeout)
	}
	return nil
}

func (n *Nagios) start(*env) (source, error) {
	timeout := n.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	return &nagiosSource{cfg: *n, mod: &nagios.Module{PluginDir: n.PluginDir, Allow: []string{n.Plugin}, Timeout: timeout}}, nil
}

type nagiosSource struct {
	cfg Nagios
	mod *nagios.Module
}

// Bounds of a nagios.state event's text, to stay within MaxDataBytes.
const (
	maxOutput     = 1024
	maxLongOutput = 8 << 10
	maxPerf       = 32
)

func (s *nagiosSource) observe(ctx context.Context, prev events.Data) (string, events.Data, error) {
	res, err := s.mod.RunCheck(ctx, s.cfg.Plugin, s.cfg.Args)
	if err != nil {
		return "", nil, err
	}
	d := &events.NagiosState{
		Plugin: s.cfg.Plugin, Args: s.cfg.Args, State: res.Status, Code: res.ExitCode,
		Output: clip(res.Output, maxOutput), LongOutput: clip(res.LongOutput, maxLongOutput),
	}
	if p, ok := prev.(*events.NagiosState); ok {
		d.Previous = p.State
	}
	for _, p := range res.Perfdata[:min(len(res.Perfdata), maxPerf)] {
		ep := events.Perf(p) // the same item; events.Perf adds JSON names
		ep.Label = clip(ep.Label, 128)
		d.Perfdata = append(d.Perfdata, ep)
	}
	fit(d)
	return res.Status, d, nil
}

// fit shrinks d until its JSON is within events.MaxDataBytes, so that a
// plugin printing too much (a 10 KB unit of measurement, say) still gets
// its state recorded: perfdata go first, then the long output, the
// output and the arguments.
func fit(d *events.NagiosState) {
	for {
		b, err := json.Marshal(d)
		if err == nil && len(b) <= events.MaxDataBytes {
			return
		}
		switch {
		case len(d.Perfdata) > 0:
			d.Perfdata = d.Perfdata[:len(d.Perfdata)/2]
		case d.LongOutput != "":
			d.LongOutput = clip(d.LongOutput, len(d.LongOutput)/2)
		case d.Output != "":
			d.Output = clip(d.Output, len(d.Output)/2)
		case len(d.Args) > 0:
			d.Args = nil
		default:
			return // cannot happen: what is left is a few short fields
		}
	}
}

func (*nagiosSource) close() error { return nil }
