package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/minion"
	"github.com/gofunc/gofunc/modules"
	"github.com/gofunc/gofunc/overlord"
)

// minionAddr gives minion i (from 0) its own loopback address:
// 127.0.1.2 ... 127.0.1.251, 127.0.2.2 ...
func minionAddr(i int) net.IP {
	return net.IPv4(127, byte(i/(250*250)), byte(1+i/250%250), byte(2+i%250))
}

// fleetInfo is what the minion process tells the others once its
// servers listen.
type fleetInfo struct {
	// Minions are the gofunc minions.
	Minions []overlord.Minion `json:"minions"`
	// Floor are the floor's servers, one per minion with its
	// certificate (same name): bare HTTPS on the minion's address, or
	// (-transport broker) a responder on the floor's bare broker (no
	// address).
	Floor []overlord.Minion `json:"floor"`
	// Setup is how long the process took to make the CA, the
	// identities and start every server.
	Setup time.Duration `json:"setup_ns"`
	// SetupCPU is the CPU time it used for that.
	SetupCPU time.Duration `json:"setup_cpu_ns"`
	// Connect is how long the minions took to connect to the shared
	// service (the broker) once all were ready to, 0 when the transport
	// has none (part of Setup).
	Connect time.Duration `json:"connect_ns,omitempty"`
	// FloorConnect is the same for the floor's own connections (the
	// broker floor's), made after gofunc's.
	FloorConnect time.Duration `json:"floor_connect_ns,omitempty"`
}

// floorBody is the floor servers' whole answer: about the size of a
// test.ping response, so that both move the same bytes.
var floorBody = []byte(`<?xml version="1.0"?><methodResponse><params><param><value><boolean>1</boolean></value></param></params></methodResponse>`)

// runSetup creates the CA, the overlord's identity (dir/admin) and n
// minion identities (dir/ids/NAME), each for its own loopback address,
// and prints how long that took.
func runSetup(dir string, n int) error {
	start, cpu0 := time.Now(), cpuTime()
	authority, err := ca.Init(ca.Config{Dir: filepath.Join(dir, "ca")})
	if err != nil {
		return err
	}
	admin, err := authority.Issue(gofunc.RoleOverlord, "bench", ca.IssueOptions{})
	if err != nil {
		return err
	}
	if err := admin.Save(filepath.Join(dir, "admin")); err != nil {
		return err
	}
	for i := range n {
		id, err := authority.Issue(gofunc.RoleMinion, minionName(i), ca.IssueOptions{IPs: []net.IP{minionAddr(i)}})
		if err != nil {
			return err
		}
		if err := id.Save(filepath.Join(dir, "ids", minionName(i))); err != nil {
			return err
		}
	}
	return json.NewEncoder(os.Stdout).Encode(fleetInfo{Setup: time.Since(start), SetupCPU: cpuTime() - cpu0})
}

func minionName(i int) string { return fmt.Sprintf("m%04d.bench", i) }

// shardRange is the minions shard k of shards serves: a contiguous
// range of indexes.
func shardRange(n, k, shards int) (from, to int) {
	return k * n / shards, (k + 1) * n / shards
}

// runMinions serves shard k of the fleet: for each of its minions, a
// gofunc minion (audit log on, every module) and a floor server, on the
// minion's own address. It prints its part of the fleet on stdout and
// serves until stdin closes; then it prints its memory figures. With
// durableFloor (-single) each floor server also serves the durable
// floor, its log beside the minion's audit log.
func runMinions(dir string, n, k, shards int, mode benchTransport, cpuProfile, profilePhase string, durableFloor bool) error {
	ctx := context.Background()
	if cpuProfile != "" {
		stop := profileOnSignal(cpuProfile)
		defer stop()
	}
	start, cpu0 := time.Now(), cpuTime()
	var info fleetInfo
	var servers []*minion.Server
	var floors []func(context.Context)
	var trails []*audit.Log
	var durables []*durableLog
	from, to := shardRange(n, k, shards)
	for i := from; i < to; i++ {
		name, ip := minionName(i), minionAddr(i)
		id, err := identity.Load(filepath.Join(dir, "ids", name))
		if err != nil {
			return err
		}
		// A directory per minion, as on a real fleet: a broker door
		// reads its log's directory at start (the replay cache), and
		// one directory of N logs made the fleet's start O(N²).
		trail, err := audit.Open(filepath.Join(dir, "minions", name, "audit.log"), audit.Config{})
		if err != nil {
			return err
		}
		srv := &minion.Server{Identity: id, Audit: trail}
		if err := modules.Register(srv, modules.Config{}); err != nil {
			return err
		}
		m, err := mode.serve(ctx, dir, i, ip, id, srv)
		if err != nil {
			return err
		}
		var durable *durableLog
		if durableFloor {
			if durable, err = openDurableLog(filepath.Join(dir, "minions", name, "floor.log")); err != nil {
				return err
			}
			durables = append(durables, durable)
		}
		fm, stopFloor, err := serveFloor(mode, dir, ip, id, durable)
		if err != nil {
			return fmt.Errorf("floor server %d: %w", i, err)
		}
		servers, trails, floors = append(servers, srv), append(trails, trail), append(floors, stopFloor)
		info.Minions = append(info.Minions, m)
		info.Floor = append(info.Floor, fm)
	}
	if c, ok := mode.(connector); ok {
		// The connections alone, timed: every minion dials at once, as
		// a fleet does when its broker comes up.
		var prof *os.File
		if cpuProfile != "" && profilePhase == "connect" {
			if prof, _ = os.Create(cpuProfile); prof != nil && pprof.StartCPUProfile(prof) != nil {
				prof.Close()
				prof = nil
			}
		}
		t0 := time.Now()
		err := c.connectAll(ctx)
		if prof != nil {
			pprof.StopCPUProfile()
			prof.Close()
		}
		if err != nil {
			return err
		}
		info.Connect = time.Since(t0)
	}
	if f, ok := mode.(floorServer); ok {
		t0 := time.Now()
		if err := f.connectFloor(ctx); err != nil {
			return err
		}
		info.FloorConnect = time.Since(t0)
	}
	info.Setup, info.SetupCPU = time.Since(start), cpuTime()-cpu0
	if err := json.NewEncoder(os.Stdout).Encode(info); err != nil {
		return err
	}
	// Each line the parent sends asks for the counters now (-single
	// reads them around each run); its stdin closing says it is done.
	lines := bufio.NewScanner(os.Stdin)
	for lines.Scan() {
		if err := json.NewEncoder(os.Stdout).Encode(counted(servers, trails, durables, mode)); err != nil {
			return err
		}
	}
	rep := counted(servers, trails, durables, mode)
	rep.Memory = readMemory()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for i, srv := range servers {
		_ = srv.Shutdown(ctx)
		floors[i](ctx)
		trails[i].Close()
	}
	if f, ok := mode.(floorServer); ok {
		f.closeFloor()
	}
	for _, d := range durables {
		_ = d.Close()
	}
	return json.NewEncoder(os.Stdout).Encode(rep)
}

// A floorServer is a benchTransport with a floor of its own (the
// broker's: bare NATS and signatures) in place of the bare HTTPS one.
// serveFloor prepares minion id's floor responder in the minions'
// process; connectFloor, called once every minion of the process is
// prepared and connected to gofunc's broker, connects them all.
type floorServer interface {
	serveFloor(dir string, id *identity.Identity) (overlord.Minion, error)
	connectFloor(ctx context.Context) error
	closeFloor()
}

// serveFloor starts minion id's floor server: the transport's own, or
// the bare HTTPS one on the minion's address. stop ends it.
func serveFloor(mode benchTransport, dir string, ip net.IP, id *identity.Identity, durable *durableLog) (overlord.Minion, func(context.Context), error) {
	if f, ok := mode.(floorServer); ok {
		m, err := f.serveFloor(dir, id)
		return m, func(context.Context) {}, err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		return overlord.Minion{}, nil, err
	}
	floor := newFloorServer(id, durable)
	go func() { _ = floor.ServeTLS(ln, "", "") }()
	return overlord.Minion{Name: id.Name(), Addr: ln.Addr().String()}, func(ctx context.Context) { _ = floor.Shutdown(ctx) }, nil
}

// minionsReport is what a minions' process says at its end: its memory
// and what its minions refused or lost at the door, summed. A failed
// handshake on a loopback bench is one the machine was too loaded to
// finish within the minion's handshake timeout.
type minionsReport struct {
	Memory            memory `json:"memory"`
	HandshakesFailed  uint64 `json:"handshakes_failed"`
	HandshakesEvicted uint64 `json:"handshakes_evicted"`
	ConnsRefused      uint64 `json:"conns_refused"`
	Busy              uint64 `json:"busy"`
	// Calls reached their methods; the audit logs made Records durable
	// in Commits writes, each with its fsync.
	Calls        uint64 `json:"calls"`
	AuditRecords uint64 `json:"audit_records"`
	AuditCommits uint64 `json:"audit_commits"`
	// FloorRecords and FloorCommits are the durable floor's (-single).
	FloorRecords uint64        `json:"floor_records,omitempty"`
	FloorCommits uint64        `json:"floor_commits,omitempty"`
	CPU          time.Duration `json:"cpu_ns"` // the process's, since it started
	IO           ioCount       `json:"io"`     // its read and write system calls, since it started
	// Over the broker: ECDSA verifications of call signatures the
	// process made, and those its memo answered
	// (broker.CallVerifyStats).
	Verified uint64 `json:"verified"`
	Memoised uint64 `json:"memoised"`
	// The same for the broker floor's responders (floorCallMemo).
	FloorVerified uint64 `json:"floor_verified"`
	FloorMemoised uint64 `json:"floor_memoised"`
}

// A doorCounter is a benchTransport whose minions' doors count the
// call signatures they verified (the broker's:
// broker.CallVerifyStats); it fills in those fields of rep.
type doorCounter interface {
	doorStats(rep *minionsReport)
}

// counted sums the minions' counters.
func counted(servers []*minion.Server, trails []*audit.Log, durables []*durableLog, mode benchTransport) minionsReport {
	rep := minionsReport{CPU: cpuTime(), IO: procIO("self")}
	if d, ok := mode.(doorCounter); ok {
		d.doorStats(&rep)
	}
	for _, srv := range servers {
		st := srv.Stats()
		rep.HandshakesFailed += st.HandshakesFailed
		rep.HandshakesEvicted += st.HandshakesEvicted
		rep.ConnsRefused += st.ConnsRefused
		rep.Busy += st.Busy
		rep.Calls += st.Calls
	}
	for _, t := range trails {
		st := t.Stats()
		rep.AuditRecords += st.Records
		rep.AuditCommits += st.Commits
	}
	for _, d := range durables {
		records, commits := d.counts()
		rep.FloorRecords += records
		rep.FloorCommits += commits
	}
	return rep
}

// process is a helper process of the bench (the minions, or the floor's
// client), talking JSON lines over its stdin and stdout.
type process struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *json.Decoder
}

// startProcess runs this program again with args and decodes the first
// JSON value it prints into first (when not nil).
func startProcess(args []string, first any) (*process, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, stdin: stdin, out: json.NewDecoder(bufio.NewReader(stdout))}
	if first != nil {
		if err := p.out.Decode(first); err != nil {
			p.stop(nil)
			return nil, fmt.Errorf("%s: %w", args[0], err)
		}
	}
	return p, nil
}

// stop closes the process's stdin, decodes the last JSON value it
// prints into last (when not nil) and waits for it to exit.
func (p *process) stop(last any) error {
	p.stdin.Close()
	var err error
	if last != nil {
		err = p.out.Decode(last)
	}
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
		err = errors.Join(err, errors.New("killed after 30s"))
	}
	return err
}

func childArgs(mode, dir string, n int, more ...string) []string {
	return append([]string{"-" + mode, "-child-n", strconv.Itoa(n), "-dir", dir}, more...)
}
