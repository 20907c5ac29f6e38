package watch

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/gofunc/gofunc/events"
	"github.com/gofunc/gofunc/modules/service"
)

// Service watches a systemd unit (type "service"): an event when its
// active or sub state changes (running, exited, failed, ...). On a host
// where systemd is not running the watcher is skipped, with a
// "watch.skipped" event saying so.
type Service struct {
	// Unit is the unit's name: "nginx" or "nginx.service".
	Unit string `toml:"unit"`
}

// Type implements Check.
func (*Service) Type() string { return "service" }

func (*Service) defaultEvery() time.Duration { return 30 * time.Second }

func (s *Service) validate() error {
	if err := service.CheckUnitName(s.Unit); err != nil {
		return fmt.Errorf("service: %w", err)
	}
	return nil
}

func (s *Service) start(e *env) (source, error) {
	runDir := e.opts.SystemdRunDir
	if runDir == "" {
		runDir = service.DefaultSystemdRunDir
	}
	if _, err := os.Stat(runDir); err != nil {
		comm, _ := os.ReadFile("/proc/1/comm")
		return nil, fmt.Errorf("%w: systemd is not running (%s is missing; PID 1 is %q)", ErrUnsupported, runDir, trimNL(comm))
	}
	return &serviceSource{unit: s.Unit, mod: &service.Module{Systemctl: e.opts.Systemctl, SystemdRunDir: runDir, Timeout: 30 * time.Second}}, nil
}

func trimNL(b []byte) string {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return clip(string(b), 64)
}

type serviceSource struct {
	unit string
	mod  *service.Module
}

func (s *serviceSource) observe(ctx context.Context, prev events.Data) (string, events.Data, error) {
	st, err := s.mod.Status(ctx, s.unit)
	if err != nil {
		return "", nil, err
	}
	d := &events.ServiceState{Unit: st.Name, Load: st.LoadState, Active: st.ActiveState, Sub: st.SubState}
	if d.Unit == "" {
		d.Unit = s.unit
	}
	if p, ok := prev.(*events.ServiceState); ok {
		d.PrevActive, d.PrevSub = p.Active, p.Sub
	}
	return d.Load + "/" + d.Active + "/" + d.Sub, d, nil
}

func (*serviceSource) close() error { return nil }
