package watch

import (
	"context"
	"fmt"
	"time"

	"github.com/gofunc/gofunc/events"
	"github.com/gofunc/gofunc/modules/stats"
)

// Threshold watches a metric against thresholds (type "threshold"): an
// event when its level (ok, warning, critical) changes. A level is left
// only once the value falls Hysteresis below its threshold, so a value
// hovering around a threshold gives one event, not one per check.
type Threshold struct {
	// Metric is "disk" (used percent of the filesystem mounted at Path),
	// "memory" (used percent) or "load" (a load average).
	Metric string `toml:"metric"`
	// Path is the disk metric's mountpoint: "/", "/var".
	Path string `toml:"path"`
	// Warn and Crit are the thresholds: the level is warning from Warn,
	// critical from Crit. Warn zero means no warning level; Crit is
	// required and at least Warn.
	Warn float64 `toml:"warn"`
	Crit float64 `toml:"crit"`
	// Hysteresis is how far below a threshold the value must fall to
	// leave its level; zero means 5% of Crit.
	Hysteresis float64 `toml:"hysteresis"`
	// Average is the load average's minutes: 1, 5 or 15; zero means 5.
	Average int `toml:"average"`
	// PerCPU divides the load by the number of CPUs. Default false.
	PerCPU bool `toml:"per_cpu"`
}

// Type implements Check.
func (*Threshold) Type() string { return "threshold" }

func (*Threshold) defaultEvery() time.Duration { return 30 * time.Second }

func (t *Threshold) validate() error {
	switch t.Metric {
	case "disk":
		if t.Path == "" {
			return fmt.Errorf("threshold: disk needs a path (a mountpoint)")
		}
	case "memory", "load":
		if t.Path != "" {
			return fmt.Errorf("threshold: %s takes no path", t.Metric)
		}
	default:
		return fmt.Errorf("threshold: metric %q: want disk, memory or load", t.Metric)
	}
	switch {
	case t.Crit <= 0 || t.Warn < 0 || t.Warn > t.Crit:
		return fmt.Errorf("threshold: want 0 <= warn <= crit and crit > 0, got warn %v, crit %v", t.Warn, t.Crit)
	case t.Hysteresis < 0 || t.Hysteresis >= t.Crit:
		return fmt.Errorf("threshold: hysteresis %v: want 0 <= hysteresis < crit", t.Hysteresis)
	case t.Average != 0 && t.Average != 1 && t.Average != 5 && t.Average != 15:
		return fmt.Errorf("threshold: average %d: want 1, 5 or 15", t.Average)
	case t.Metric != "load" && (t.Average != 0 || t.PerCPU):
		return fmt.Errorf("threshold: average and per_cpu are for load")
	}
	return nil
}

func (t *Threshold) start(e *env) (source, error) {
	cfg := *t
	if cfg.Hysteresis == 0 {
		cfg.Hysteresis = cfg.Crit * 0.05
	}
	if cfg.Average == 0 {
		cfg.Average = 5
	}
	return &thresholdSource{cfg: cfg, stats: &stats.Module{Proc: e.opts.Proc}}, nil
}

type thresholdSource struct {
	cfg   Threshold
	stats *stats.Module
}

func (s *thresholdSource) observe(ctx context.Context, prev events.Data) (string, events.Data, error) {
	v, unit, err := s.value(ctx)
	if err != nil {
		return "", nil, err
	}
	d := &events.ThresholdState{Metric: s.cfg.Metric, Path: s.cfg.Path, Value: v, Unit: unit,
		Warn: s.cfg.Warn, Crit: s.cfg.Crit, Hysteresis: s.cfg.Hysteresis}
	if p, ok := prev.(*events.ThresholdState); ok {
		d.Previous = p.Level
	}
	d.Level = Level(v, s.cfg.Warn, s.cfg.Crit, s.cfg.Hysteresis, d.Previous)
	return d.Level, d, nil
}

// value reads the metric.
func (s *thresholdSource) value(ctx context.Context) (float64, string, error) {
	switch s.cfg.Metric {
	case "disk":
		ds, err := s.stats.Disk(ctx, s.cfg.Path)
		if err != nil {
			return 0, "", err
		}
		return ds[0].UsedPercent, "%", nil
	case "memory":
		m, err := s.stats.Memory(ctx)
		return m.UsedPercent, "%", err
	}
	l, err := s.stats.Load(ctx)
	if err != nil {
		return 0, "", err
	}
	v := map[int]float64{1: l.Load1, 5: l.Load5, 15: l.Load15}[s.cfg.Average]
	if s.cfg.PerCPU {
		v /= float64(max(l.CPUs, 1))
	}
	return v, "", nil
}

// Level is the level of value v with thresholds warn (0: none) and
// crit, given the previous level: a level is entered at its threshold
// and left only below the threshold minus hysteresis.
func Level(v, warn, crit, hysteresis float64, previous string) string {
	switch {
	case v >= crit, previous == events.LevelCritical && v > crit-hysteresis:
		return events.LevelCritical
	case warn > 0 && v >= warn,
		warn > 0 && (previous == events.LevelWarning || previous == events.LevelCritical) && v > warn-hysteresis:
		return events.LevelWarning
	}
	return events.LevelOK
}

func (*thresholdSource) close() error { return nil }
