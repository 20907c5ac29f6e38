// Package process is the "process" module: list processes, signal them by
// PID or by exact name, and read the load average.
//
// Signals come from a fixed set, by name ("TERM", "KILL", "HUP", "INT",
// "USR1", "USR2", "QUIT", with or without "SIG") or by number (1 to 31).
// PID 1 and the minion itself are never signalled (CodeDenied), and a PID
// below 1 (which kill(2) would take as a process group, or as every
// process) is refused.
package process

import (
	"context"
	"errors"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shirou/gopsutil/v4/load"
	"github.com/shirou/gopsutil/v4/mem"
	gp "github.com/shirou/gopsutil/v4/process"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/procrun"
)

// maxPID is the kernel's ceiling for pid_max.
const maxPID = 1 << 22

// Module is the process module. It has no configuration; the zero value is
// ready and safe for concurrent use.
type Module struct{}

// Proc is one process in a listing.
type Proc struct {
	PID  int    `xmlrpc:"pid"`  // process id
	PPID int    `xmlrpc:"ppid"` // parent's process id
	User string `xmlrpc:"user"` // user name, or the uid when it has none
	// CPUPercent is the CPU time used over the process's life, as a
	// percentage of one CPU (as ps shows it).
	CPUPercent float64 `xmlrpc:"cpu_percent"`
	// MemRSS is the resident set size in bytes.
	MemRSS     int64   `xmlrpc:"mem_rss"`
	MemPercent float64 `xmlrpc:"mem_percent"` // MemRSS as a percentage of RAM
	// Command is the process name; Args its command line (empty for
	// kernel threads).
	Command string   `xmlrpc:"command"`
	Args    []string `xmlrpc:"args"` // argv, Args[0] included
}

// Info is one process in detail: the fields of Proc and a few more. It is
// flat (no embedded Proc) so that every codec sees the same members.
type Info struct {
	PID        int       `xmlrpc:"pid"`         // as in Proc
	PPID       int       `xmlrpc:"ppid"`        // as in Proc
	User       string    `xmlrpc:"user"`        // as in Proc
	CPUPercent float64   `xmlrpc:"cpu_percent"` // as in Proc
	MemRSS     int64     `xmlrpc:"mem_rss"`     // as in Proc
	MemPercent float64   `xmlrpc:"mem_percent"` // as in Proc
	Command    string    `xmlrpc:"command"`     // as in Proc
	Args       []string  `xmlrpc:"args"`        // as in Proc
	Status     string    `xmlrpc:"status"`      // running, sleep, stop, zombie, ...
	Started    time.Time `xmlrpc:"started"`     // start time, UTC
	Threads    int       `xmlrpc:"threads"`     // number of threads
	Exe        string    `xmlrpc:"exe"`         // path of the executable
}

// List returns every process, ordered by PID. Processes that exit while
// the list is built are left out.
func (m *Module) List(ctx context.Context) ([]Proc, error) {
	pids, err := gp.PidsWithContext(ctx)
	if err != nil {
		return nil, gofunc.Errorf(gofunc.CodeModule, "list processes: %v", err)
	}
	slices.Sort(pids)
	total := totalMemory(ctx)
	users := map[uint32]string{}
	procs := make([]Proc, 0, len(pids))
	for _, pid := range pids {
		if err := ctx.Err(); err != nil {
			return nil, procrun.ContextFault(ctx, "process.list")
		}
		p, err := describe(ctx, pid, total, users)
		if err != nil {
			continue // gone already
		}
		procs = append(procs, p)
	}
	return procs, nil
}

// Info returns one process in detail.
func (m *Module) Info(ctx context.Context, pid int) (Info, error) {
	if err := checkPID(pid); err != nil {
		return Info{}, err
	}
	p, err := describe(ctx, int32(pid), totalMemory(ctx), map[uint32]string{})
	if err != nil {
		return Info{}, gofunc.Errorf(gofunc.CodeNotFound, "no process %d", pid)
	}
	info := Info{PID: p.PID, PPID: p.PPID, User: p.User, CPUPercent: p.CPUPercent,
		MemRSS: p.MemRSS, MemPercent: p.MemPercent, Command: p.Command, Args: p.Args}
	h := &gp.Process{Pid: int32(pid)}
	if st, err := h.StatusWithContext(ctx); err == nil && len(st) > 0 {
		info.Status = st[0]
	}
	if ms, err := h.CreateTimeWithContext(ctx); err == nil {
		info.Started = time.UnixMilli(ms).UTC()
	}
	if n, err := h.NumThreadsWithContext(ctx); err == nil {
		info.Threads = int(n)
	}
	if exe, err := h.ExeWithContext(ctx); err == nil {
		info.Exe, _ = procrun.SafeText([]byte(exe))
	}
	return info, nil
}

// Kill sends a signal (default TERM) to one process.
func (m *Module) Kill(ctx context.Context, pid int, signal any) (bool, error) {
	sig, err := ParseSignal(signal)
	if err != nil {
		return false, err
	}
	if err := checkTarget(pid); err != nil {
		return false, err
	}
	if err := send(pid, sig); err != nil {
		return false, err
	}
	return true, nil
}

// Pkill sends a signal (default TERM) to every process whose name is
// exactly name, except PID 1 and the minion, and returns their PIDs.
func (m *Module) Pkill(ctx context.Context, name string, signal any) ([]int, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	sig, err := ParseSignal(signal)
	if err != nil {
		return nil, err
	}
	pids, err := matching(ctx, name)
	if err != nil {
		return nil, err
	}
	signalled := []int{}
	for _, pid := range pids {
		if err := send(pid, sig); err != nil {
			if errors.Is(err, gofunc.ErrNotFound) {
				continue // exited meanwhile
			}
			return signalled, err
		}
		signalled = append(signalled, pid)
	}
	return signalled, nil
}

// Loadavg returns the 1, 5 and 15 minute load averages.
func (m *Module) Loadavg(ctx context.Context) ([]float64, error) {
	avg, err := load.AvgWithContext(ctx)
	if err != nil {
		return nil, gofunc.Errorf(gofunc.CodeModule, "load average: %v", err)
	}
	return []float64{avg.Load1, avg.Load5, avg.Load15}, nil
}

// matching returns the PIDs whose process name is exactly name, minus the
// ones never to be signalled.
func matching(ctx context.Context, name string) ([]int, error) {
	pids, err := gp.PidsWithContext(ctx)
	if err != nil {
		return nil, gofunc.Errorf(gofunc.CodeModule, "list processes: %v", err)
	}
	var out []int
	for _, pid := range pids {
		if checkTarget(int(pid)) != nil {
			continue
		}
		p := &gp.Process{Pid: pid}
		if n, err := p.NameWithContext(ctx); err == nil && n == name {
			out = append(out, int(pid))
		}
	}
	slices.Sort(out)
	return out, nil
}

func describe(ctx context.Context, pid int32, totalMem uint64, users map[uint32]string) (Proc, error) {
	p := &gp.Process{Pid: pid}
	name, err := p.NameWithContext(ctx)
	if err != nil {
		return Proc{}, err
	}
	out := Proc{PID: int(pid)}
	out.Command, _ = procrun.SafeText([]byte(name))
	if ppid, err := p.PpidWithContext(ctx); err == nil {
		out.PPID = int(ppid)
	}
	if uids, err := p.UidsWithContext(ctx); err == nil && len(uids) > 0 {
		out.User = userName(uids[0], users)
	}
	if args, err := p.CmdlineSliceWithContext(ctx); err == nil {
		out.Args = make([]string, len(args))
		for i, a := range args {
			out.Args[i], _ = procrun.SafeText([]byte(a))
		}
	}
	if out.Args == nil {
		out.Args = []string{}
	}
	if mi, err := p.MemoryInfoWithContext(ctx); err == nil {
		out.MemRSS = int64(mi.RSS)
		if totalMem > 0 {
			out.MemPercent = 100 * float64(mi.RSS) / float64(totalMem)
		}
	}
	if cpu, err := p.CPUPercentWithContext(ctx); err == nil {
		out.CPUPercent = cpu
	}
	return out, nil
}

func totalMemory(ctx context.Context) uint64 {
	if vm, err := mem.VirtualMemoryWithContext(ctx); err == nil {
		return vm.Total
	}
	return 0
}

// userName looks a uid up once per listing.
func userName(uid uint32, cache map[uint32]string) string {
	if name, ok := cache[uid]; ok {
		return name
	}
	name := strconv.FormatUint(uint64(uid), 10)
	if u, err := lookupUser(name); err == nil {
		name = u
	}
	cache[uid] = name
	return name
}

func checkPID(pid int) error {
	if pid < 1 || pid > maxPID {
		return gofunc.Errorf(gofunc.CodeBadArgs, "pid %d is out of range (1 to %d)", pid, maxPID)
	}
	return nil
}

// checkTarget refuses the PIDs never to be signalled.
func checkTarget(pid int) error {
	if err := checkPID(pid); err != nil {
		return err
	}
	switch pid {
	case 1:
		return gofunc.Errorf(gofunc.CodeDenied, "refusing to signal PID 1")
	case os.Getpid():
		return gofunc.Errorf(gofunc.CodeDenied, "refusing to signal the minion itself (PID %d)", pid)
	}
	return nil
}

func checkName(name string) error {
	if name == "" || len(name) > 255 {
		return gofunc.Errorf(gofunc.CodeBadArgs, "process name must be 1 to 255 bytes")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return gofunc.Errorf(gofunc.CodeBadArgs, "process name %q contains a control character", name)
		}
	}
	return nil
}

func send(pid int, sig syscall.Signal) error {
	err := syscall.Kill(pid, sig)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.ESRCH):
		return gofunc.Errorf(gofunc.CodeNotFound, "no process %d", pid)
	case errors.Is(err, syscall.EPERM):
		return gofunc.Errorf(gofunc.CodeDenied, "not permitted to signal process %d", pid)
	}
	return gofunc.Errorf(gofunc.CodeModule, "kill %d: %v", pid, err)
}

// signals is the fixed set of signals accepted by name.
var signals = map[string]syscall.Signal{
	"HUP":  syscall.SIGHUP,
	"INT":  syscall.SIGINT,
	"QUIT": syscall.SIGQUIT,
	"KILL": syscall.SIGKILL,
	"USR1": syscall.SIGUSR1,
	"USR2": syscall.SIGUSR2,
	"TERM": syscall.SIGTERM,
}

// ParseSignal reads a signal given by name (HUP, INT, QUIT, KILL, USR1,
// USR2, TERM; any case, "SIG" prefix allowed) or number (1 to 31, as an
// int or a decimal string). nil or "" means TERM.
func ParseSignal(v any) (syscall.Signal, error) {
	var n int64
	switch s := v.(type) {
	case nil:
		return syscall.SIGTERM, nil
	case int:
		n = int64(s)
	case int64:
		n = s
	case int32:
		n = int64(s)
	case string:
		if s == "" {
			return syscall.SIGTERM, nil
		}
		if num, err := strconv.ParseInt(s, 10, 64); err == nil {
			n = num
			break
		}
		name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
		if sig, ok := signals[name]; ok {
			return sig, nil
		}
		return 0, gofunc.Errorf(gofunc.CodeBadArgs, "signal %q is not one of HUP, INT, QUIT, KILL, USR1, USR2, TERM or a number 1 to 31", s)
	default:
		return 0, gofunc.Errorf(gofunc.CodeBadArgs, "signal is a %T, want a name or a number", v)
	}
	if n < 1 || n > 31 {
		return 0, gofunc.Errorf(gofunc.CodeBadArgs, "signal %d is out of range (1 to 31)", n)
	}
	return syscall.Signal(n), nil
}

// Doc describes the module for introspection.
func (m *Module) Doc() gofunc.ModuleDoc {
	signal := gofunc.ArgDoc{Name: "signal", Type: "string", Optional: true, Default: "TERM",
		Description: "HUP, INT, QUIT, KILL, USR1, USR2 or TERM, or a number 1 to 31"}
	return gofunc.ModuleDoc{
		Description: "List and signal processes; load average.",
		Version:     "1.0.0",
		Methods: map[string]gofunc.MethodDoc{
			"List": {Description: "Every process: [{pid, ppid, user, cpu_percent, mem_rss (bytes), mem_percent, command, args}]"},
			"Info": {
				Description: "One process: the fields of list plus status, started, threads, exe",
				Args:        []gofunc.ArgDoc{{Name: "pid", Type: "int", Description: "process id"}},
			},
			"Kill": {
				Description: "Signal one process (never PID 1 or the minion); returns true",
				Args:        []gofunc.ArgDoc{{Name: "pid", Type: "int", Description: "process id"}, signal},
				Dangerous:   true,
			},
			"Pkill": {
				Description: "Signal every process with exactly this name (never PID 1 or the minion); returns their PIDs",
				Args:        []gofunc.ArgDoc{{Name: "name", Type: "string", Description: "exact process name"}, signal},
				Dangerous:   true,
			},
			"Loadavg": {Description: "The 1, 5 and 15 minute load averages: [double, double, double]"},
		},
	}
}

func lookupUser(uid string) (string, error) {
	u, err := user.LookupId(uid)
	if err != nil {
		return "", err
	}
	return u.Username, nil
}
