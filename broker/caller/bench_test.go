package caller_test

import (
	"testing"
	"time"

	"github.com/gofunc/gofunc/broker/door"
	"github.com/gofunc/gofunc/fleettest"
)

// BenchmarkPingOverBroker is a warm test.ping to 32 minions through a
// real broker, all three parties in this process: what one call costs
// them together (ns/op over 32 hosts), with the acknowledgement folded
// into quick answers (the default) and sent apart (AckFold < 0).
//
//	go test -run '^$' -bench PingOverBroker -count 5 ./broker/caller/
func BenchmarkPingOverBroker(b *testing.B) {
	e := newEnv(b, fleettest.Config{Minions: 32, Subnet: "127.0.48"})
	c := e.client(e.f.Admin())
	for _, tc := range []struct {
		name string
		fold time.Duration
	}{{"fold", 0}, {"apart", -1}} {
		for _, m := range e.f.Minions() {
			e.reopen(m.Name, door.Config{AckFold: tc.fold})
		}
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := c.Targets("*").Call(b.Context(), "test", "ping"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
