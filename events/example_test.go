package events_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/gofunc/gofunc/events"
)

// A minion journals what happens; a consumer reads it with a tracker
// that stamps the sender from its certificate name and keeps the cursor.
func ExampleJournal() {
	dir, err := os.MkdirTemp("", "events-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	j, err := events.Open(dir, events.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer j.Close()
	j.Lifecycle(events.Lifecycle{Phase: events.PhaseStarted, Version: "1.0.0"})
	j.Emit("disk_root", &events.NagiosState{Plugin: "check_disk", State: "CRITICAL", Previous: "OK", Code: 2,
		Output: "DISK CRITICAL - / 97% used"})

	// The consumer's side: in a real fleet the batch comes over
	// events.since and the name from the minion's verified certificate.
	t := events.NewTracker(nil)
	batch, err := j.Since(t.Request("web1.example.org", 100, 0))
	if err != nil {
		log.Fatal(err)
	}
	evs, notices := t.Accept("web1.example.org", batch)
	for _, e := range evs {
		fmt.Println(e.Minion, e.Seq, e.Type, e.Severity, e.Source)
	}
	fmt.Println(len(notices), "notices; cursor at seq", t.Cursor("web1.example.org").Seq)
	// Output:
	// web1.example.org 1 lifecycle.started info minion
	// web1.example.org 2 nagios.state critical disk_root
	// 0 notices; cursor at seq 2
}

// A consumer that fell behind a bounded journal is told which events it
// missed, and the journal says what it dropped.
func ExampleTracker_Accept() {
	dir, err := os.MkdirTemp("", "events-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	j, err := events.Open(dir, events.Config{MaxEvents: 80}) // segments of 10 events
	if err != nil {
		log.Fatal(err)
	}
	defer j.Close()
	t := events.NewTracker(nil)
	j.Lifecycle(events.Lifecycle{Phase: events.PhaseStarted})
	b, _ := j.Since(t.Request("m1", 0, 0))
	t.Accept("m1", b) // read seq 1, then fall behind
	for range 100 {
		j.Emit("load", &events.ThresholdState{Metric: "load", Level: events.LevelOK})
	}
	b, _ = j.Since(t.Request("m1", 0, 0))
	evs, notices := t.Accept("m1", b)
	for _, n := range notices {
		fmt.Println(n)
	}
	for _, e := range evs {
		if e.Type == events.TypeDropped {
			d, _ := e.Decode()
			fmt.Printf("seq %d: %s %+v\n", e.Seq, e.Type, *d.(*events.Dropped))
		}
	}
	fmt.Println("kept", len(evs), "events up to seq", t.Cursor("m1").Seq)
	// Output:
	// m1: gap: events 2 to 30 are missing
	// seq 81: events.dropped {Count:10 From:1 To:10}
	// seq 91: events.dropped {Count:10 From:11 To:20}
	// seq 101: events.dropped {Count:10 From:21 To:30}
	// kept 74 events up to seq 104
}

// Poll is the long-poll behind events.since: it answers at once when
// there are events after the cursor, else waits for one (or Wait).
func ExampleJournal_Poll() {
	dir, err := os.MkdirTemp("", "events-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	j, err := events.Open(dir, events.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer j.Close()
	t := events.NewTracker(nil)

	done := make(chan struct{})
	go func() {
		defer close(done)
		// Nothing yet: this waits until the watcher below reports.
		b, err := j.Poll(context.Background(), t.RequestFrom("m1", time.Now().Add(-time.Hour), 100, 30*time.Second))
		if err != nil {
			log.Fatal(err)
		}
		evs, _ := t.Accept("m1", b)
		fmt.Println(len(evs), evs[0].Type, evs[0].Source)
	}()
	j.Emit("nginx", &events.ServiceState{Unit: "nginx.service", Active: "failed", Sub: "failed"})
	<-done
	// Output:
	// 1 service.state nginx
}
