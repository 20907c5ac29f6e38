package overlordmetrics_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/internal/promtest"
	"github.com/gofunc/gofunc/metrics"
	"github.com/gofunc/gofunc/overlord"
	"github.com/gofunc/gofunc/overlord/overlordmetrics"
)

// A long-running overlord counts its fleet's calls: give the client
// the collector's Observe and serve a registry holding it.
func ExampleNew() {
	fleet, err := fleettest.New(fleettest.Config{Minions: 2, Subnet: "127.0.12"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer fleet.Close()

	m := overlordmetrics.New(overlordmetrics.Options{})
	client := fleet.Client(overlord.WithObserver(m.Observe))
	if _, err := client.Targets("*").Call(context.Background(), "test", "ping"); err != nil {
		fmt.Println(err)
		return
	}
	reg := metrics.NewRegistry()
	reg.MustRegister(m)
	page, _, _ := promtest.Scrape(metrics.Handler(reg), promtest.AcceptText)
	for line := range strings.Lines(page) {
		if strings.HasPrefix(line, "gofunc_overlord_minion_up") || strings.HasPrefix(line, "gofunc_overlord_calls_total") {
			fmt.Print(line)
		}
	}
	// Output:
	// gofunc_overlord_calls_total{outcome="ok"} 2
	// gofunc_overlord_minion_up{minion="m1.test"} 1
	// gofunc_overlord_minion_up{minion="m2.test"} 1
}
