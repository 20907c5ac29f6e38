package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/overlord"
)

// phase is one measured phase at one size: the wall time of each run of
// the whole fan-out, for gofunc and (when it has one) the floor.
type phase struct {
	name          string
	floor, gofunc []time.Duration
	hosts         []time.Duration // every host's Result.Duration, gofunc
	// Hosts that failed, over all runs: a run with failed hosts still
	// counts (its time is the fan-out's), and the failures are
	// reported beside it.
	gofuncFailed, floorFailed int
	// CPU per run of the overlord's process and of the floor client's.
	gofuncCPU, floorCPU time.Duration
	// CPU per run of the minions' processes (summed) and of the shared
	// service's (the broker), while gofunc's runs went (not the
	// floor's); the call signatures the minions' processes verified
	// over those runs, and those their memo answered.
	minionsCPU, sharedCPU time.Duration
	verified, memoised    uint64
	// The same while the floor's runs went: the minions' processes'
	// CPU, the floor's broker's (-transport broker) and the floor's
	// call signatures verified and memoised.
	floorMinionsCPU, floorSharedCPU time.Duration
	floorVerified, floorMemoised    uint64
	// Read and write system calls over all runs, gofunc's and the
	// floor's: the caller's process (overlord, floor client), the
	// minions' processes, the broker's.
	gofuncIO, floorIO [3]ioCount
	// newConns are, run by run, how many hosts gofunc answered on a
	// connection the run opened (Observation.NewConnection): every host
	// in a cold run, none in a warm one unless connections were lost.
	newConns []int64
}

// ratio is the median over runs of gofunc's time over the floor's in
// the same round (the two run back to back, so they share the load).
func (p *phase) ratio() float64 {
	var rs []float64
	for i := range min(len(p.floor), len(p.gofunc)) {
		if p.floor[i] > 0 {
			rs = append(rs, float64(p.gofunc[i])/float64(p.floor[i]))
		}
	}
	return median(rs)
}

// restartResult is how the fleet came back after its shared service
// (the broker) restarted: back is from the new service taking
// connections to the end of the first ping round where every minion
// answered; down is how long the restart itself took.
type restartResult struct {
	back, down time.Duration
	rounds     int
}

// sizeResult is everything measured at one fleet size.
type sizeResult struct {
	n                   int
	loadStart, loadEnd  float64
	setup, setupCPU     time.Duration
	connect             time.Duration // the minions connecting to the shared service, 0 if none
	floorConnect        time.Duration // the same for the floor's broker, 0 if none
	floorPeak           float64       // the floor's broker's peak RSS (kB), 0 if none
	restart             restartResult // the shared service restarted, zero if none
	sharedPeak          float64       // the shared service's peak RSS (kB), 0 if none
	shards              int           // minion processes
	phases              []*phase
	overlord, floorMem  memory
	minionsMem          memory
	minionsDoor         minionsReport // the door's counters, summed (Memory unused)
	overlordAuditRecord int           // bytes of the overlord's audit log per call
}

func (r *sizeResult) phase(name string) *phase {
	for _, p := range r.phases {
		if p.name == name {
			return p
		}
	}
	p := &phase{name: name}
	r.phases = append(r.phases, p)
	return p
}

func runParent(o options, mode benchTransport) error {
	sizes, err := o.parseSizes()
	if err != nil {
		return err
	}
	if err := raiseFileLimit(clientFiles(slices.Max(sizes))); err != nil {
		return err
	}
	base := o.workDir
	if base == "" {
		parent := os.TempDir()
		if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
			parent = "/dev/shm" // minion audit logs fsync every call: keep that off the disk
		}
		dir, err := os.MkdirTemp(parent, "gofunc-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		base = dir
	}
	fmt.Printf("gofunc-bench: %s, GOMAXPROCS=%d, %d CPUs, runs=%d, forks=%d, transport %s, overlord audit log %v%s\n", runtime.Version(),
		runtime.GOMAXPROCS(0), runtime.NumCPU(), o.runs, o.forks, o.transport, o.overlordAudit, floorShape)
	largest := slices.Max(sizes)
	var results []*sizeResult
	for _, n := range sizes {
		r, err := benchSize(o, mode, filepath.Join(base, fmt.Sprintf("n%d", n)), n, n == largest)
		if err != nil {
			return fmt.Errorf("fleet of %d: %w", n, err)
		}
		report(r)
		results = append(results, r)
	}
	if o.growth {
		growthTable(os.Stdout, results)
	}
	return nil
}

// bench holds the processes and clients of one fleet size.
type bench struct {
	o       options
	mode    benchTransport
	dir     string
	n       int
	info    fleetInfo
	minions []*process
	floor   *process
	id      *identity.Identity
	audit   *audit.Log
	res     *sizeResult
	profile bool
	stopCPU func()
	// stopMode ends what the transport started for this size.
	stopMode func() error
	// newConns counts the calls answered on a new connection, over
	// every client of the size.
	newConns atomic.Int64
}

func benchSize(o options, mode benchTransport, dir string, n int, profile bool) (*sizeResult, error) {
	b := &bench{o: o, mode: mode, dir: dir, n: n, profile: profile, res: &sizeResult{n: n, loadStart: loadAvg()}}
	if err := b.start(); err != nil {
		return nil, err
	}
	err := b.run()
	if serr := b.stop(); err == nil {
		err = serr
	}
	b.res.loadEnd = loadAvg()
	return b.res, err
}

// start makes the CA and identities, starts the minions (in as many
// processes as the open-file limit asks) and the floor's client.
func (b *bench) start() error {
	setup, err := startProcess(childArgs("setup", b.dir, b.n), &b.info)
	if err != nil {
		return err
	}
	if err := setup.stop(nil); err != nil {
		return err
	}
	b.res.setup, b.res.setupCPU = b.info.Setup, b.info.SetupCPU
	if p, ok := b.mode.(sharedProfiler); ok && b.profile && b.o.cpuProfile != "" {
		p.profileShared(b.o.cpuProfile + ".broker")
	}
	if b.stopMode, err = b.mode.start(context.Background(), b.dir); err != nil {
		return err
	}
	if b.profile && b.o.profile == "connect" {
		b.signalMinions(syscall.SIGUSR1) // the broker's process, as no minion runs yet
	}
	shards := shardsFor(b.n)
	parts := make([]fleetInfo, shards)
	errs := make([]error, shards)
	b.minions = make([]*process, shards)
	var wg sync.WaitGroup
	for k := range shards {
		args := childArgs("minions", b.dir, b.n, "-transport", b.o.transport,
			"-shard", strconv.Itoa(k), "-shards", strconv.Itoa(shards), "-verify-memo="+strconv.FormatBool(b.o.verifyMemo))
		args = append(args, floorShape.args()...)
		if b.profile && b.o.cpuProfile != "" {
			args = append(args, "-cpuprofile", fmt.Sprintf("%s.minions%d", b.o.cpuProfile, k), "-profile", b.o.profile)
		}
		wg.Go(func() {
			b.minions[k], errs[k] = startProcess(args, &parts[k])
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if b.profile && b.o.profile == "connect" {
		b.signalMinions(syscall.SIGUSR2)
	}
	var slowest, cpu time.Duration
	for _, part := range parts {
		b.info.Minions = append(b.info.Minions, part.Minions...)
		b.info.Floor = append(b.info.Floor, part.Floor...)
		slowest, cpu = max(slowest, part.Setup), cpu+part.SetupCPU
		b.res.connect = max(b.res.connect, part.Connect)
		b.res.floorConnect = max(b.res.floorConnect, part.FloorConnect)
	}
	b.res.setup += slowest
	b.res.setupCPU += cpu
	b.res.shards = shards
	js, err := json.Marshal(b.info)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(b.dir, "fleet.json"), js, 0o600); err != nil {
		return err
	}
	args := childArgs("floor-client", b.dir, b.n, "-forks", strconv.Itoa(b.o.forks), "-transport", b.o.transport)
	args = append(args, floorShape.args()...)
	if b.profile && b.o.cpuProfile != "" {
		args = append(args, "-cpuprofile", b.o.cpuProfile+".floorclient")
	}
	b.floor, err = startProcess(args, nil)
	if err != nil {
		return err
	}
	if b.id, err = identity.Load(filepath.Join(b.dir, "admin")); err != nil {
		return err
	}
	if b.o.overlordAudit {
		b.audit, err = audit.Open(filepath.Join(b.dir, "overlord-audit.log"), audit.Config{})
	}
	return err
}

func (b *bench) stop() error {
	var err error
	if b.floor != nil {
		err = b.floor.stop(&b.res.floorMem)
	}
	for _, p := range b.minions {
		if p == nil {
			continue
		}
		var m minionsReport
		if merr := p.stop(&m); err == nil {
			err = merr
		}
		b.res.minionsMem.RSS += m.Memory.RSS
		b.res.minionsMem.Peak += m.Memory.Peak
		b.res.minionsDoor.HandshakesFailed += m.HandshakesFailed
		b.res.minionsDoor.HandshakesEvicted += m.HandshakesEvicted
		b.res.minionsDoor.ConnsRefused += m.ConnsRefused
		b.res.minionsDoor.Busy += m.Busy
	}
	if b.stopMode != nil {
		if merr := b.stopMode(); err == nil {
			err = merr
		}
		if m, ok := b.mode.(interface{ sharedPeakRSS() float64 }); ok {
			b.res.sharedPeak = m.sharedPeakRSS()
		}
		if m, ok := b.mode.(interface{ floorPeakRSS() float64 }); ok {
			b.res.floorPeak = m.floorPeakRSS()
		}
	}
	if b.audit != nil {
		if fi, serr := os.Stat(b.audit.Path()); serr == nil {
			calls := 0
			for _, p := range b.res.phases {
				calls += len(p.gofunc)
			}
			if calls > 0 {
				b.res.overlordAuditRecord = int(fi.Size()) / (calls + 2) // + the two warm-ups
			}
		}
		b.audit.Close()
	}
	return err
}

// benchClient is an overlord client and the transport made for it,
// which overlord.Client.Close leaves open (WithTransport: the caller's
// to close): Close closes both. A transport left open would stay
// subscribed to the caller's answers.
type benchClient struct {
	*overlord.Client
	closeTransport func() error
}

func (c *benchClient) Close() error {
	return errors.Join(c.Client.Close(), c.closeTransport())
}

// newClient is a new overlord client for the fleet, through the
// bench's transport: a cold run makes one each time.
func (b *bench) newClient() (*benchClient, error) {
	opts := []overlord.Option{overlord.WithIdentity(b.id), overlord.WithMinions(overlord.Static(b.info.Minions)),
		overlord.WithHostTimeout(30 * time.Second), overlord.WithForks(b.o.forks),
		overlord.WithObserver(func(o overlord.Observation) {
			if o.NewConnection {
				b.newConns.Add(1)
			}
		})}
	if b.audit != nil {
		opts = append(opts, overlord.WithAudit(b.audit))
	}
	more, closeTransport, err := b.mode.clientOptions(context.Background(), b.dir, b.id)
	if err != nil {
		return nil, err
	}
	return &benchClient{Client: overlord.New(append(opts, more...)...), closeTransport: closeTransport}, nil
}

func (b *bench) run() error {
	ctx := context.Background()
	// Resolving the targets ("*" among N): the overlord's own work
	// before any host is called.
	c, err := b.newClient()
	if err != nil {
		return err
	}
	resolve := b.res.phase("resolve")
	for range b.o.runs {
		start := time.Now()
		if _, err := c.Targets("*").Hosts(ctx); err != nil {
			return err
		}
		resolve.gofunc = append(resolve.gofunc, time.Since(start))
	}
	c.Close()

	// Cold: a new client each run, so every call opens a new connection
	// with a full TLS handshake (no session to resume); the floor's
	// client likewise makes a new transport.
	cold := b.res.phase("ping cold")
	b.startProfile("cold")
	for range b.o.runs {
		if err := b.floorRun(cold, "cold"); err != nil {
			return err
		}
		c, err := b.newClient()
		if err != nil {
			return err
		}
		err = b.gofuncRun(ctx, cold, c, "test", "ping")
		c.Close()
		if err != nil {
			return err
		}
	}
	b.endProfile()

	// Warm: one client, connections opened once and reused.
	if c, err = b.newClient(); err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Targets("*").Call(ctx, "test", "ping"); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	warm := b.res.phase("ping warm")
	if err := b.floorRun(&phase{}, "warm"); err != nil { // its warm-up
		return err
	}
	b.startProfile("warm")
	for range b.o.runs {
		if err := b.floorRun(warm, "warm"); err != nil {
			return err
		}
		if err := b.gofuncRun(ctx, warm, c, "test", "ping"); err != nil {
			return err
		}
	}
	b.endProfile()

	run := b.res.phase("command.run uname -r")
	b.startProfile("run")
	for range b.o.runs {
		if err := b.gofuncRun(ctx, run, c, "command", "run", []string{"uname", "-r"}); err != nil {
			return err
		}
	}
	b.endProfile()

	// The overlord's memory with N connections open: this process holds
	// no minion and no floor client, so all of it is the overlord's.
	b.res.overlord = readMemory()

	if r, ok := b.mode.(restarter); ok {
		if err := b.restartRun(ctx, c, r); err != nil {
			return err
		}
	}
	if b.profile && b.o.memProfile != "" {
		if f, err := os.Create(b.o.memProfile); err == nil {
			_ = pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	return nil
}

// restartRun restarts the shared service (the broker) under the fleet
// and pings every minion, round after round, until a round where all
// answer: how long the fleet takes to come back by itself.
func (b *bench) restartRun(ctx context.Context, c *benchClient, r restarter) error {
	stopped := time.Now()
	if err := r.restartShared(ctx); err != nil {
		return err
	}
	up := time.Now()
	for round := 1; ; round++ {
		_, err := c.Targets("*").Call(ctx, "test", "ping")
		if err == nil {
			b.res.restart = restartResult{back: time.Since(up), down: up.Sub(stopped), rounds: round}
			return nil
		}
		if time.Since(up) > 3*time.Minute {
			return fmt.Errorf("minions not all back 3m after the broker restarted: %w", err)
		}
	}
}

// gofuncRun makes one call to every minion; any failed host is an
// error.
func (b *bench) gofuncRun(ctx context.Context, p *phase, c *benchClient, module, method string, args ...any) error {
	before, err := b.minionsCounters()
	if err != nil {
		return err
	}
	shared0, sharedIO0 := b.sharedCPU(), b.sharedIO(false)
	cpu0, io0, start, conns0 := cpuTime(), procIO("self"), time.Now(), b.newConns.Load()
	res, err := c.Targets("*").Call(ctx, module, method, args...)
	d := time.Since(start)
	after, cerr := b.minionsCounters()
	if cerr != nil {
		return cerr
	}
	p.minionsCPU += (after.CPU - before.CPU) / time.Duration(b.o.runs)
	p.sharedCPU += (b.sharedCPU() - shared0) / time.Duration(b.o.runs)
	p.gofuncIO[0] = p.gofuncIO[0].add(procIO("self").sub(io0))
	p.gofuncIO[1] = p.gofuncIO[1].add(after.IO.sub(before.IO))
	p.gofuncIO[2] = p.gofuncIO[2].add(b.sharedIO(false).sub(sharedIO0))
	p.verified += after.Verified - before.Verified
	p.memoised += after.Memoised - before.Memoised
	p.newConns = append(p.newConns, b.newConns.Load()-conns0)
	var callErr *overlord.CallError
	if errors.As(err, &callErr) {
		p.gofuncFailed += callErr.Failed
		fmt.Fprintf(os.Stderr, "bench: N=%d %s: %v\n", b.n, p.name, err)
	} else if err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	p.gofunc = append(p.gofunc, d)
	p.gofuncCPU += (cpuTime() - cpu0) / time.Duration(b.o.runs)
	for _, r := range res {
		p.hosts = append(p.hosts, r.Duration)
	}
	return nil
}

// minionsCounters asks every minions' process for its counters now and
// sums them.
func (b *bench) minionsCounters() (minionsReport, error) {
	var sum minionsReport
	for _, p := range b.minions {
		if _, err := fmt.Fprintln(p.stdin); err != nil {
			return sum, err
		}
		var rep minionsReport
		if err := p.out.Decode(&rep); err != nil {
			return sum, err
		}
		sum.CPU += rep.CPU
		sum.Verified += rep.Verified
		sum.Memoised += rep.Memoised
		sum.FloorVerified += rep.FloorVerified
		sum.FloorMemoised += rep.FloorMemoised
		sum.IO = sum.IO.add(rep.IO)
	}
	return sum, nil
}

// sharedCPU is the shared service's CPU time so far (0 when none).
func (b *bench) sharedCPU() time.Duration {
	if s, ok := b.mode.(interface{ sharedCPU() time.Duration }); ok {
		return s.sharedCPU()
	}
	return 0
}

// sharedIO is the shared service's read and write system calls so far
// (the floor's broker's with floor), zero when none.
func (b *bench) sharedIO(floor bool) ioCount {
	s, ok := b.mode.(interface {
		sharedIO() ioCount
		floorSharedIO() ioCount
	})
	switch {
	case !ok:
		return ioCount{}
	case floor:
		return s.floorSharedIO()
	}
	return s.sharedIO()
}

// floorSharedCPU is the floor's broker's CPU time so far (0 when none).
func (b *bench) floorSharedCPU() time.Duration {
	if s, ok := b.mode.(interface{ floorSharedCPU() time.Duration }); ok {
		return s.floorSharedCPU()
	}
	return 0
}

// floorRun asks the floor's client for one fan-out.
func (b *bench) floorRun(p *phase, op string) error {
	before, err := b.minionsCounters()
	if err != nil {
		return err
	}
	shared0, sharedIO0 := b.floorSharedCPU(), b.sharedIO(true)
	if err := json.NewEncoder(b.floor.stdin).Encode(floorCommand{Op: op}); err != nil {
		return err
	}
	var res phaseResult
	if err := b.floor.out.Decode(&res); err != nil {
		return fmt.Errorf("floor client: %w", err)
	}
	after, err := b.minionsCounters()
	if err != nil {
		return err
	}
	p.floorMinionsCPU += (after.CPU - before.CPU) / time.Duration(b.o.runs)
	p.floorSharedCPU += (b.floorSharedCPU() - shared0) / time.Duration(b.o.runs)
	p.floorIO[0] = p.floorIO[0].add(res.IO)
	p.floorIO[1] = p.floorIO[1].add(after.IO.sub(before.IO))
	p.floorIO[2] = p.floorIO[2].add(b.sharedIO(true).sub(sharedIO0))
	p.floorVerified += after.FloorVerified - before.FloorVerified
	p.floorMemoised += after.FloorMemoised - before.FloorMemoised
	if res.Err != "" {
		return fmt.Errorf("floor %s: %s", op, res.Err)
	}
	if res.Failed > 0 {
		p.floorFailed += res.Failed
		fmt.Fprintf(os.Stderr, "bench: N=%d floor %s: %s\n", b.n, op, res.FirstFailure)
	}
	p.floor = append(p.floor, res.Wall)
	p.floorCPU += res.CPU / time.Duration(b.o.runs)
	return nil
}

func (b *bench) startProfile(phase string) {
	if !b.profile || b.o.cpuProfile == "" || b.o.profile != phase {
		return
	}
	f, err := os.Create(b.o.cpuProfile)
	if err != nil {
		return
	}
	if pprof.StartCPUProfile(f) != nil {
		f.Close()
		return
	}
	b.signalMinions(syscall.SIGUSR1)
	b.stopCPU = func() { pprof.StopCPUProfile(); f.Close(); b.signalMinions(syscall.SIGUSR2) }
}

// signalMinions starts (SIGUSR1) or stops (SIGUSR2) the minions'
// processes' CPU profiles (-cpuprofile PATH writes PATH.minionsK).
func (b *bench) signalMinions(sig syscall.Signal) {
	for _, p := range b.minions {
		_ = p.cmd.Process.Signal(sig)
	}
	if b.floor != nil { // started with -cpuprofile, as the minions were
		_ = b.floor.cmd.Process.Signal(sig)
	}
	if p, ok := b.mode.(sharedProfiler); ok {
		p.signalShared(sig)
	}
}

// A sharedProfiler is a benchTransport whose shared service (the
// broker's process) can be CPU-profiled over the same phase.
type sharedProfiler interface {
	profileShared(path string)
	signalShared(sig os.Signal)
}

func (b *bench) endProfile() {
	if b.stopCPU != nil {
		b.stopCPU()
		b.stopCPU = nil
	}
}
