package nagioscmd_test

import (
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/gofunc/gofunc/events"
	"github.com/gofunc/gofunc/events/nagioscmd"
)

// A received event becomes a passive check result for the host its
// certificate names.
func ExampleFormat() {
	dir, err := os.MkdirTemp("", "nagioscmd-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	j, err := events.Open(dir, events.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer j.Close()
	j.Emit("disk root", &events.NagiosState{Plugin: "check_disk", State: "CRITICAL", Code: 2,
		Output: "DISK CRITICAL - / 97% used", Perfdata: []events.Perf{{Label: "/", Value: 97, UOM: "%", Warn: "80", Crit: "95"}}})
	b, _ := j.Since(events.Request{})
	evs, _ := events.Receive("web1.example.org", b.Lines) // the name from web1's certificate
	line, err := nagioscmd.Format(evs[0])
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(line[strings.Index(line, "]")+2:]) // the part after the timestamp
	// Output:
	// PROCESS_SERVICE_CHECK_RESULT;web1.example.org;disk root;2;DISK CRITICAL - / 97% used|/=97%;80;95
}
