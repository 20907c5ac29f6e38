// Command gofunc-bench measures the overlord's fan-out beside a floor:
// ping to N minions over real mutual TLS on loopback, on new
// connections (cold) and reused ones (warm), and command.run of
// `uname -r`, for N = 10, 100, 1000 by default; the floor is the same
// fan-out with bare HTTPS (TLS 1.3, client certificates, net/http on
// both ends, no XML-RPC, no audit), measured in the same run, run for
// run. See README.md for the method and the figures.
//
//	go run ./internal/cmd/gofunc-bench                     # all sizes, 5 runs each
//	go run ./internal/cmd/gofunc-bench -n 5000 -runs 10
//	go run ./internal/cmd/gofunc-bench -growth             # the cost-of-growth table
//	go run ./internal/cmd/gofunc-bench -n 1000 -cpuprofile warm.prof -profile warm
//
// The minions (and the floor's servers) run in a child process, the
// floor's client in another (this program started again with -minions
// and -floor-client), so that the overlord's memory and CPU can be
// measured on their own.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gofunc/gofunc/broker"
)

func main() {
	var o options
	flag.StringVar(&o.sizes, "n", "", "comma-separated fleet sizes (default 10,100,1000; with -growth 100,1000,3000,5000)")
	flag.IntVar(&o.runs, "runs", 5, "measured runs per figure")
	flag.IntVar(&o.forks, "forks", 256, "fan-out limit, for the overlord and the floor's client alike")
	flag.BoolVar(&o.growth, "growth", false, "print the cost-of-growth table (time and memory per phase, per host) as Markdown")
	flag.BoolVar(&o.overlordAudit, "overlord-audit", true, "give the overlord an audit log, as func has")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the -profile phase (largest N) to this file")
	flag.StringVar(&o.memProfile, "memprofile", "", "write a heap profile after the warm phase (largest N) to this file")
	flag.StringVar(&o.profile, "profile", "warm", "phase to CPU-profile: cold, warm, run, or connect (-transport broker: the minions' processes and the broker while the minions connect)")
	flag.StringVar(&o.workDir, "dir", "", "work directory (CA, identities, audit logs); default a new one in /dev/shm or the temp dir")
	flag.BoolVar(&o.setup, "setup", false, "internal: make the CA and the identities")
	flag.BoolVar(&o.minions, "minions", false, "internal: run a shard of the minions and the floor's servers")
	flag.IntVar(&o.shard, "shard", 0, "internal: which shard")
	flag.IntVar(&o.shards, "shards", 1, "internal: of how many")
	flag.BoolVar(&o.floorClient, "floor-client", false, "internal: run the floor's client")
	flag.BoolVar(&o.durableFloor, "durable-floor", false, "internal: the floor servers also serve the durable floor (-single)")
	flag.IntVar(&o.childN, "child-n", 0, "internal: number of minions")
	flag.BoolVar(&o.single, "single", false, "one minion, many calls: -callers goroutines call test.ping on one minion whose audit log is on the disk")
	flag.IntVar(&o.callers, "callers", 8, "with -single: concurrent callers")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "with -single: length of each run")
	flag.BoolVar(&o.singleFloor, "single-floor", true, "with -single: then the same callers against the floor (bare HTTPS in the minion's process)")
	flag.StringVar(&o.transport, "transport", "direct", "how the overlord reaches the minions: "+transportNames())
	flag.BoolVar(&o.verifyMemo, "verify-memo", true, "with -transport broker: the minions' processes share the memo of call signatures verified (broker.SetCallVerifyMemo): a group's one signature is verified once per process, where on a real fleet each minion verifies it on its own CPU")
	flag.BoolVar(&floorShape.ack, "floor-ack", false, "with -transport broker: the floor's minions acknowledge each call at once with a frame of its own before the answer, as gofunc's do (to measure what the acknowledgement costs)")
	flag.IntVar(&floorShape.callBytes, "floor-call-bytes", 0, "with -transport broker: pad each floor request to this many bytes (gofunc's call is ~2.3 KB at -forks 256 with the bench's names), to measure what message size costs")
	flag.IntVar(&floorShape.answerBytes, "floor-answer-bytes", 0, "with -transport broker: pad each floor answer's body to this many bytes (gofunc's answer is ~1.6 KB)")
	flag.Parse()
	mode, err := lookupTransport(o.transport)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if _, ok := mode.(*brokerBench); ok {
		broker.SetCallVerifyMemo(o.verifyMemo)
		floorCallMemo.SetOn(o.verifyMemo)
	}
	floorShape.apply()
	switch {
	case o.setup:
		err = runSetup(o.workDir, o.childN)
	case o.minions:
		from, to := shardRange(o.childN, o.shard, o.shards)
		if err = raiseFileLimit(minionsFiles(to - from)); err == nil {
			err = runMinions(o.workDir, o.childN, o.shard, o.shards, mode, o.cpuProfile, o.profile, o.durableFloor)
		}
	case o.floorClient:
		if err = raiseFileLimit(clientFiles(o.childN)); err == nil {
			if o.cpuProfile != "" {
				stop := profileOnSignal(o.cpuProfile)
				defer stop()
			}
			err = runFloorClient(o.workDir, o.forks, mode)
		}
	case o.single:
		err = runSingle(o)
	default:
		err = runParent(o, mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type options struct {
	sizes                           string
	runs, forks                     int
	growth, overlordAudit           bool
	cpuProfile, memProfile, profile string
	workDir, transport              string
	setup, minions, floorClient     bool
	childN, shard, shards           int
	single                          bool
	singleFloor, durableFloor       bool
	callers                         int
	duration                        time.Duration
	verifyMemo                      bool
}

// parseSizes reads -n, with the mode's default.
func (o options) parseSizes() ([]int, error) {
	spec := o.sizes
	if spec == "" {
		spec = "10,100,1000"
		if o.growth {
			spec = "100,1000,3000,5000"
		}
	}
	var sizes []int
	for s := range strings.SplitSeq(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 250*250*4 {
			return nil, fmt.Errorf("-n: bad size %q", s)
		}
		sizes = append(sizes, n)
	}
	return sizes, nil
}
