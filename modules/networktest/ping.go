package networktest

import (
	"regexp"
	"strconv"

	"github.com/gofunc/gofunc"
)

// PingStats are the summary lines of ping's output.
type PingStats struct {
	Transmitted int `xmlrpc:"transmitted"` // echo requests sent
	Received    int `xmlrpc:"received"`    // replies received
	// PacketLoss is a percentage.
	PacketLoss float64 `xmlrpc:"packet_loss"`
	// Round-trip times in milliseconds; zero when nothing was received.
	RTTMinMS float64 `xmlrpc:"rtt_min_ms"`
	RTTAvgMS float64 `xmlrpc:"rtt_avg_ms"` // average
	RTTMaxMS float64 `xmlrpc:"rtt_max_ms"` // maximum
}

var (
	// iputils: "3 packets transmitted, 3 received, 0% packet loss, time 2003ms"
	// busybox: "3 packets transmitted, 3 packets received, 0% packet loss"
	pingCounts = regexp.MustCompile(`(\d{1,9}) packets transmitted, (\d{1,9}) (?:packets )?received`)
	pingLoss   = regexp.MustCompile(`(\d{1,3}(?:\.\d{1,6})?)% packet loss`)
	// iputils: "rtt min/avg/max/mdev = 0.028/0.040/0.050/0.009 ms"
	// busybox: "round-trip min/avg/max = 0.058/0.067/0.078 ms"
	pingRTT = regexp.MustCompile(`(?:rtt|round-trip) min/avg/max(?:/[a-z]+)? = (\d{1,9}(?:\.\d{1,6})?)/(\d{1,9}(?:\.\d{1,6})?)/(\d{1,9}(?:\.\d{1,6})?)`)
)

// ParsePing reads the statistics from the output of iputils or busybox
// ping. It fails when the output has no "packets transmitted" line.
func ParsePing(out []byte) (PingStats, error) {
	var s PingStats
	c := pingCounts.FindSubmatch(out)
	if c == nil {
		return s, gofunc.Errorf(gofunc.CodeModule, "no statistics in ping's output")
	}
	s.Transmitted, _ = strconv.Atoi(string(c[1]))
	s.Received, _ = strconv.Atoi(string(c[2]))
	if l := pingLoss.FindSubmatch(out); l != nil {
		s.PacketLoss, _ = strconv.ParseFloat(string(l[1]), 64)
	}
	if r := pingRTT.FindSubmatch(out); r != nil {
		s.RTTMinMS, _ = strconv.ParseFloat(string(r[1]), 64)
		s.RTTAvgMS, _ = strconv.ParseFloat(string(r[2]), 64)
		s.RTTMaxMS, _ = strconv.ParseFloat(string(r[3]), 64)
	}
	return s, nil
}
