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

func init() { runAsProcess(brokerEnv, "bench broker", runBroker) }

// runAsProcess makes the bench, started again with env set to a
// directory, run as one of its helper processes (a broker): run(dir),
// then exit, 1 with the error on stderr.
func runAsProcess(env, name string, run func(dir string) error) {
	dir := os.Getenv(env)
	if dir == "" {
		return
	}
	if err := run(dir); err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// brokerBench holds, in a minions' process, the minions served but not
// yet connected (connectAll dials them) and their floor responders; in
// the parent, the broker's and the floor broker's processes.
type brokerBench struct {
	// In a minions' process.
	mu      sync.Mutex
	url     string
	dir     string
	waiting []*minion.Server
	doors   []*door.Door
	floor   floorMinions
	// In the parent: the gofunc broker's process and the floor's bare
	// broker's.
	broker, floorBroker service
}

// brokerDir holds the broker's identity and its URL (file "url"); the
// floor's broker uses the same identity and listens on "floor-url".
func brokerDir(dir string) string { return filepath.Join(dir, "broker") }

func brokerURL(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(brokerDir(dir), "url"))
	return strings.TrimSpace(string(b)), err
}

// start issues the broker's certificate and starts the broker process
// and the floor's bare broker process, each on a free loopback port,
// and waits until both take connections. stop records their peak RSS
// and stops them.
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
	b.broker = service{env: brokerEnv, dir: brokerDir(dir), profile: b.broker.profile}
	b.floorBroker = service{env: floorBrokerEnv, dir: brokerDir(dir), profile: b.floorBroker.profile}
	for _, s := range []struct {
		svc  *service
		file string
	}{{&b.broker, "url"}, {&b.floorBroker, "floor-url"}} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		s.svc.addr = ln.Addr().String()
		ln.Close()
		if err := os.WriteFile(filepath.Join(brokerDir(dir), s.file), []byte("nats://"+s.svc.addr+"\n"), 0o644); err != nil {
			return nil, err
		}
		if err := s.svc.start(ctx); err != nil {
			if s.svc == &b.floorBroker {
				_ = b.broker.stop()
			}
			return nil, err
		}
	}
	return func() error { return errors.Join(b.broker.stop(), b.floorBroker.stop()) }, nil
}

// sharedPeakRSS is the broker process's peak RSS in kB (the largest of
// its runs when it was restarted), once stopped.
func (b *brokerBench) sharedPeakRSS() float64 { return b.broker.rssPeak }

// floorPeakRSS is the floor broker process's peak RSS in kB, once
// stopped.
func (b *brokerBench) floorPeakRSS() float64 { return b.floorBroker.rssPeak }

// service is a broker process the parent runs: this program again
// with env set to dir (see the init functions), listening on addr.
type service struct {
	env, dir, addr string
	cmd            *exec.Cmd
	profile        string  // its CPU profile (-cpuprofile PATH.broker)
	rssPeak        float64 // kB, its peak RSS, once stopped
}

// start runs the process and waits until its port takes connections.
func (s *service) start(ctx context.Context) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), s.env+"="+s.dir)
	if s.profile != "" {
		cmd.Env = append(cmd.Env, brokerProfileEnv+"="+s.profile)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	for deadline := time.Now().Add(time.Minute); ; {
		c, err := net.DialTimeout("tcp", s.addr, time.Second)
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
	s.cmd = cmd
	return nil
}

// stop records the process's peak RSS, stops it and waits for it.
func (s *service) stop() error {
	if s.cmd == nil {
		return nil
	}
	s.rssPeak = max(s.rssPeak, procStatusOf(s.cmd.Process.Pid, "VmHWM"))
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	err := s.cmd.Wait()
	s.cmd = nil
	return err
}

// io is the process's read and write system calls so far.
func (s *service) io() ioCount {
	if s.cmd == nil {
		return ioCount{}
	}
	return procIO(strconv.Itoa(s.cmd.Process.Pid))
}

// cpu is the process's CPU time so far.
func (s *service) cpu() time.Duration {
	if s.cmd == nil {
		return 0
	}
	return procCPUOf(s.cmd.Process.Pid)
}

func (s *service) signal(sig os.Signal) {
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(sig)
	}
}

// profileShared makes the broker processes profile their CPU into
// path (the gofunc broker) and path's ".floor" sibling (the floor's)
// between the bench's SIGUSR1 and SIGUSR2 (set before start).
func (b *brokerBench) profileShared(path string) {
	b.broker.profile, b.floorBroker.profile = path, path+".floor"
}

// signalShared sends sig to the broker processes.
func (b *brokerBench) signalShared(sig os.Signal) {
	b.broker.signal(sig)
	b.floorBroker.signal(sig)
}

// restartShared stops the gofunc broker process and starts it again on
// the same address (every minion's connection drops and must come back
// by itself); it returns when the new broker takes connections.
func (b *brokerBench) restartShared(ctx context.Context) error {
	if err := b.broker.stop(); err != nil {
		return fmt.Errorf("broker stop: %w", err)
	}
	return b.broker.start(ctx)
}

// serve starts srv without a listener; connectAll opens its broker
// door (one broker connection per minion, as on a real fleet).
// Its floor is served by serveFloor.
func (b *brokerBench) serve(_ context.Context, dir string, _ int, _ net.IP, _ *identity.Identity, srv *minion.Server) (overlord.Minion, error) {
	url, err := brokerURL(dir)
	if err != nil {
		return overlord.Minion{}, err
	}
	if err := srv.Start(); err != nil {
		return overlord.Minion{}, err
	}
	b.mu.Lock()
	b.url, b.dir = url, dir
	b.waiting = append(b.waiting, srv)
	b.mu.Unlock()
	return overlord.Minion{Name: srv.CurrentIdentity().Name()}, nil
}

// serveFloor prepares minion id's floor responder; connectFloor
// connects them.
func (b *brokerBench) serveFloor(dir string, id *identity.Identity) (overlord.Minion, error) {
	return overlord.Minion{Name: id.Name()}, b.floor.add(dir, id)
}

// closeFloor closes the floor responders' connections.
func (b *brokerBench) closeFloor() { b.floor.close() }

// connectFloor connects every floor responder prepared, all at once,
// to the floor's broker.
func (b *brokerBench) connectFloor(ctx context.Context) error {
	b.mu.Lock()
	dir := b.dir
	b.mu.Unlock()
	url, err := floorBrokerURL(dir)
	if err != nil {
		return err
	}
	return b.floor.connectAll(ctx, url)
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

// doorStats puts the process's call-signature verifications in rep,
// gofunc's and the floor's.
func (b *brokerBench) doorStats(rep *minionsReport) {
	rep.Verified, rep.Memoised = broker.CallVerifyStats()
	rep.FloorVerified, rep.FloorMemoised = floorCallMemo.Stats()
}

// sharedCPU is the broker process's CPU time so far.
func (b *brokerBench) sharedCPU() time.Duration { return b.broker.cpu() }

// sharedIO and floorSharedIO are the broker processes' read and write
// system calls so far.
func (b *brokerBench) sharedIO() ioCount      { return b.broker.io() }
func (b *brokerBench) floorSharedIO() ioCount { return b.floorBroker.io() }

// floorSharedCPU is the floor broker process's CPU time so far.
func (b *brokerBench) floorSharedCPU() time.Duration { return b.floorBroker.cpu() }

// clientOptions routes the overlord's calls through the broker, on a
// connection of their own that the returned function closes.
func (*brokerBench) clientOptions(ctx context.Context, dir string, id *identity.Identity) ([]overlord.Option, func() error, error) {
	url, err := brokerURL(dir)
	if err != nil {
		return nil, nil, err
	}
	t, err := caller.Dial(ctx, []string{url}, id, caller.Options{})
	if err != nil {
		return nil, nil, err
	}
	return []overlord.Option{overlord.WithTransport(t)}, t.Close, nil
}

// brokerProcess starts a broker process of the bench (the gofunc
// broker's or the floor's): its CPU profile when the parent asked for
// one (stop ends it), the identity in dir, and the host:port to listen
// on from the URL in dir/urlFile.
func brokerProcess(dir, urlFile string) (id *identity.Identity, listen string, stop func(), err error) {
	stop = func() {}
	if path := os.Getenv(brokerProfileEnv); path != "" {
		stop = profileOnSignal(path)
	}
	if id, err = identity.Load(dir); err != nil {
		stop()
		return nil, "", nil, err
	}
	url, err := os.ReadFile(filepath.Join(dir, urlFile))
	if err != nil {
		stop()
		return nil, "", nil, err
	}
	return id, strings.TrimPrefix(strings.TrimSpace(string(url)), "nats://"), stop, nil
}

// runBroker is the broker process: brokerd with the identity in dir,
// on the URL in dir/url, until SIGTERM.
func runBroker(dir string) error {
	id, listen, stop, err := brokerProcess(dir, "url")
	if err != nil {
		return err
	}
	defer stop()
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
