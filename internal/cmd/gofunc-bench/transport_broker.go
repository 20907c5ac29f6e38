package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/broker"
	"github.com/gofunc/gofunc/broker/brokerd"
	"github.com/gofunc/gofunc/broker/caller"
	"github.com/gofunc/gofunc/broker/door"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/minion"
	"github.com/gofunc/gofunc/overlord"
)

// -transport broker: the minions dial out to a gofunc broker (brokerd,
// in a process of its own so that the overlord's figures stay its own)
// and the overlord's calls go through it, signed both ways.
func init() { transports["broker"] = &brokerBench{} }

// brokerEnv, set in the environment, makes the bench run as the broker
// process (see brokerBench.start) instead of its usual self;
// brokerProfileEnv names its CPU profile, taken like the minions'
// processes' (profileOnSignal).
const (
	brokerEnv        = "GOFUNC_BENCH_BROKER_DIR"
	brokerProfileEnv = "GOFUNC_BENCH_BROKER_PROFILE"
)

func init() {
	if dir := os.Getenv(brokerEnv); dir != "" {
		if err := runBroker(dir); err != nil {
			fmt.Fprintln(os.Stderr, "bench broker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// brokerBench holds, in a minions' process, the minions served but not
// yet connected (connectAll dials them).
type brokerBench struct {
	// In a minions' process.
	mu      sync.Mutex
	url     string
	waiting []*minion.Server
	doors   []*door.Door
	// In the parent: the broker process.
	dir, addr string
	cmd       *exec.Cmd
	profile   string  // the broker's CPU profile (-cpuprofile PATH.broker)
	rssPeak   float64 // kB, the broker's peak RSS, once stopped
}

// brokerDir holds the broker's identity and its URL (file "url").
func brokerDir(dir string) string { return filepath.Join(dir, "broker") }

func brokerURL(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(brokerDir(dir), "url"))
	return strings.TrimSpace(string(b)), err
}

// start issues the broker's certificate, starts the broker process on a
// free loopback port and waits until it takes connections. stop prints
// the broker's peak RSS on stderr and stops it.
func (b *brokerBench) start(ctx context.Context, dir string) (func() error, error) {
	authority, err := ca.Open(ca.Config{Dir: filepath.Join(dir, "ca")})
	if err != nil {
		return nil, err
	}
	id, err := authority.Issue(gofunc.RoleBroker, "broker.bench", ca.IssueOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		return nil, err
	}
	if err := id.Save(brokerDir(dir)); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	if err := os.WriteFile(filepath.Join(brokerDir(dir), "url"), []byte("nats://"+addr+"\n"), 0o644); err != nil {
		return nil, err
	}
	b.dir, b.addr = dir, addr
	if err := b.startProcess(ctx); err != nil {
		return nil, err
	}
	b.rssPeak = 0
	return func() error {
		b.rssPeak = max(b.rssPeak, procStatusOf(b.cmd.Process.Pid, "VmHWM"))
		return b.stopProcess()
	}, nil
}

// sharedPeakRSS is the broker process's peak RSS in kB (the largest of
// its runs when it was restarted), once stopped.
func (b *brokerBench) sharedPeakRSS() float64 { return b.rssPeak }

// startProcess runs the broker process (this program with brokerEnv set)
// and waits until its port takes connections.
func (b *brokerBench) startProcess(ctx context.Context) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), brokerEnv+"="+brokerDir(b.dir))
	if b.profile != "" {
		cmd.Env = append(cmd.Env, brokerProfileEnv+"="+b.profile)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	for deadline := time.Now().Add(time.Minute); ; {
		c, err := net.DialTimeout("tcp", b.addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return fmt.Errorf("broker did not start: %w", err)
		}
		time.Sleep(10 * time.Millisecond) // polling a port another process opens
	}
	b.cmd = cmd
	return nil
}

func (b *brokerBench) stopProcess() error {
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	return b.cmd.Wait()
}

// restartShared stops the broker process and starts it again on the
// same address (every minion's connection drops and must come back by
// itself); it returns when the new broker takes connections.
// profileShared makes the broker process profile its CPU into path
// between the bench's SIGUSR1 and SIGUSR2 (set before start).
func (b *brokerBench) profileShared(path string) { b.profile = path }

// signalShared sends sig to the broker process.
func (b *brokerBench) signalShared(sig os.Signal) {
	if b.cmd != nil {
		_ = b.cmd.Process.Signal(sig)
	}
}

func (b *brokerBench) restartShared(ctx context.Context) error {
	b.rssPeak = max(b.rssPeak, procStatusOf(b.cmd.Process.Pid, "VmHWM"))
	if err := b.stopProcess(); err != nil {
		return fmt.Errorf("broker stop: %w", err)
	}
	return b.startProcess(ctx)
}

// serve starts srv without a listener; connectAll opens its broker
// door (one broker connection per minion, as on a real fleet).
func (b *brokerBench) serve(_ context.Context, dir string, _ int, _ net.IP, _ *identity.Identity, srv *minion.Server) (overlord.Minion, error) {
	url, err := brokerURL(dir)
	if err != nil {
		return overlord.Minion{}, err
	}
	if err := srv.Start(); err != nil {
		return overlord.Minion{}, err
	}
	b.mu.Lock()
	b.url = url
	b.waiting = append(b.waiting, srv)
	b.mu.Unlock()
	return overlord.Minion{Name: srv.CurrentIdentity().Name()}, nil
}

// connectAll dials every waiting minion's door at once and returns when
// each connection is up and its subscription is known to the broker.
func (b *brokerBench) connectAll(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	b.mu.Lock()
	defer b.mu.Unlock()
	doors := make([]*door.Door, len(b.waiting))
	errs := make([]error, len(b.waiting))
	var wg sync.WaitGroup
	for i, srv := range b.waiting {
		wg.Go(func() {
			d, err := door.Dial(ctx, []string{b.url}, door.Config{Server: srv})
			if err != nil {
				errs[i] = fmt.Errorf("minion %s: %w", srv.CurrentIdentity().Name(), err)
				return
			}
			doors[i] = d
			// Dial returns a connection still trying when the broker
			// refused it at first (a loaded broker): wait for it.
			for !d.Conn().IsConnected() {
				if ctx.Err() != nil {
					errs[i] = ctx.Err()
					return
				}
				time.Sleep(20 * time.Millisecond) // polling nats.go's state; it has no "connected" channel
			}
			errs[i] = d.Conn().FlushTimeout(time.Minute)
		})
	}
	wg.Wait()
	b.waiting = nil
	b.doors = append(b.doors, doors...)
	return errors.Join(errs...)
}

// doorStats puts the process's call-signature verifications in rep.
func (b *brokerBench) doorStats(rep *minionsReport) {
	rep.Verified, rep.Memoised = broker.CallVerifyStats()
}

// sharedCPU is the broker process's CPU time so far.
func (b *brokerBench) sharedCPU() time.Duration {
	if b.cmd == nil {
		return 0
	}
	return procCPUOf(b.cmd.Process.Pid)
}

// clientOptions routes the overlord's calls through the broker.
func (*brokerBench) clientOptions(ctx context.Context, dir string, id *identity.Identity) ([]overlord.Option, error) {
	url, err := brokerURL(dir)
	if err != nil {
		return nil, err
	}
	t, err := caller.Dial(ctx, []string{url}, id, caller.Options{})
	if err != nil {
		return nil, err
	}
	return []overlord.Option{overlord.WithTransport(t)}, nil
}

// runBroker is the broker process: brokerd with the identity in dir,
// on the URL in dir/url, until SIGTERM.
func runBroker(dir string) error {
	if path := os.Getenv(brokerProfileEnv); path != "" {
		stop := profileOnSignal(path)
		defer stop()
	}
	id, err := identity.Load(dir)
	if err != nil {
		return err
	}
	url, err := os.ReadFile(filepath.Join(dir, "url"))
	if err != nil {
		return err
	}
	listen := strings.TrimPrefix(strings.TrimSpace(string(url)), "nats://")
	b, err := brokerd.New(brokerd.Config{Identity: id, Listen: listen})
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer cancel()
	if err := b.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if err := b.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// procStatusOf reads a kB figure from /proc/PID/status.
func procStatusOf(pid int, key string) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), key+":"); ok {
			var kb float64
			_, _ = fmt.Sscanf(strings.TrimSpace(rest), "%f", &kb)
			return kb
		}
	}
	return 0
}

// procCPUOf is a process's CPU time (user + system, all its threads),
// from /proc/PID/stat, in clock ticks of 10 ms.
func procCPUOf(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces; the fields after its
	// closing parenthesis start at field 3 (state); utime and stime are
	// fields 14 and 15.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
