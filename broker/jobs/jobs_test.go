package jobs_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/broker"
	"github.com/gofunc/gofunc/broker/internal/jsget"
	"github.com/gofunc/gofunc/broker/jobs"
	"github.com/gofunc/gofunc/fleettest"
)

// A job for minions that are offline waits in the broker; each runs it
// when it connects, once, and any overlord collects the signed results.
func TestJobReachesOfflineMinionsAndAnyOverlordCollects(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fleettest.Config{Minions: 2, Subnet: "127.0.141"})
	m1, m2 := e.f.Minions()[0], e.f.Minions()[1]
	alice := e.client(e.overlord("alice"))
	bob := e.client(e.overlord("bob"))

	first := e.connect(m1, t.TempDir()) // online: takes it on the doorbell
	job, err := alice.Submit(t.Context(), jobs.Spec{Method: "test.add", Args: []any{2, 3}, Targets: []string{m1.Name, m2.Name}})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the online minion answers", func() bool {
		_, res, err := bob.Status(t.Context(), job.ID)
		return err == nil && res[0].State == jobs.StateOK
	})
	_, res, err := bob.Status(t.Context(), job.ID)
	if err != nil || res[1].State != jobs.StatePending {
		t.Fatalf("the offline minion: %+v, %v", res, err)
	}

	dir2 := t.TempDir()
	e.connect(m2, dir2) // comes back: takes the job waiting for it
	res = wait(t, bob, job.ID)
	for i, r := range res {
		if r.State != jobs.StateOK || r.Value != int64(5) && r.Value != 5 || r.CallID == "" || r.Forged != 0 {
			t.Errorf("target %d: %+v", i, r)
		}
	}
	if got, _, err := alice.Status(t.Context(), job.ID); err != nil || got.Caller != "alice" || len(got.Targets) != 2 {
		t.Errorf("record: %+v, %v", got, err)
	}
	for _, fm := range []*fleettest.Minion{m1, m2} {
		if recs := jobRecords(t, fm, "call.start", job.ID); len(recs) != 1 || recs[0].Details["via"] != "nats" {
			t.Errorf("%s: %d call.start records for the job: %+v", fm.Name, len(recs), recs)
		}
	}

	// A restart keeps the job done: with its cursor the minion does not
	// read it again; without (lost state) it reads it and refuses it as
	// a replay (the audit log reseeds the replay cache for 7 days).
	first.close()
	if err := os.Remove(filepath.Join(first.dir, "cursor")); err != nil {
		t.Fatal(err)
	}
	again := e.connect(m1, first.dir)
	eventually(t, "the replay is refused and recorded", func() bool { return len(jobRecords(t, m1, "call.denied", job.ID)) == 1 })
	if recs := jobRecords(t, m1, "call.start", job.ID); len(recs) != 1 {
		t.Errorf("ran %d times", len(recs))
	}
	again.close()
	_ = e.connect(m1, first.dir) // cursor kept now: nothing read, nothing recorded
	if _, err := alice.Submit(t.Context(), jobs.Spec{Method: "test.ping", Targets: []string{m1.Name}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the next job runs", func() bool { return jobStarts(t, m1) == 2 })
	if n := len(jobRecords(t, m1, "call.denied", job.ID)); n != 1 {
		t.Errorf("%d denials of the old job after a restart with its cursor", n)
	}
	if _, _, err := bob.Status(t.Context(), "0123456789abcdef0123456789abcdef"); !errors.Is(err, jobs.ErrNoJob) {
		t.Errorf("an unknown job: %v", err)
	}
}

// A broker whose job stream was made afresh (its store lost) numbers
// jobs from 1 again: a minion whose cursor is further on still takes
// the new jobs.
func TestJobStreamMadeAfresh(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fleettest.Config{Minions: 1, Subnet: "127.0.146"})
	m1 := e.f.Minions()[0]
	alice := e.client(e.overlord("alice"))
	e.connect(m1, t.TempDir())
	for range 3 { // the cursor moves past where the new stream's first job will be
		job, err := alice.Submit(t.Context(), jobs.Spec{Method: "test.ping", Targets: []string{m1.Name}})
		if err != nil {
			t.Fatal(err)
		}
		wait(t, alice, job.ID)
	}
	e.stopBroker()
	e.store = t.TempDir()
	e.startBroker()
	job, err := alice.Submit(t.Context(), jobs.Spec{Method: "test.add", Args: []any{1, 1}, Targets: []string{m1.Name}})
	if err != nil {
		t.Fatal(err)
	}
	if res := wait(t, alice, job.ID); res[0].State != jobs.StateOK {
		t.Errorf("result: %+v", res[0])
	}
}

// A job whose start-by passed while its minion was away is refused when
// the minion takes it: audited, not run, and "expired" is its result.
func TestExpiredJobRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fleettest.Config{Minions: 1, Subnet: "127.0.147"})
	m1 := e.f.Minions()[0]
	alice := e.client(e.overlord("alice"))
	job, err := alice.Submit(t.Context(), jobs.Spec{Method: "test.ping", Targets: []string{m1.Name}, StartBy: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	e.connectAt(m1, t.TempDir(), func() time.Time { return time.Now().Add(2 * time.Hour) })
	res := wait(t, alice, job.ID)
	if res[0].State != jobs.StateFault || res[0].Fault.Code != gofunc.CodeDenied || !strings.Contains(res[0].Fault.Message, "past its deadline") {
		t.Errorf("result: %+v %v", res[0], res[0].Fault)
	}
	if recs := jobRecords(t, m1, "call.start", job.ID); len(recs) != 0 {
		t.Errorf("ran: %+v", recs)
	}
}

// List reads the records of the jobs the broker keeps, from any
// overlord, oldest first, leaving out a record its caller did not sign.
func TestList(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fleettest.Config{Minions: 1, Subnet: "127.0.164"})
	m1 := e.f.Minions()[0]
	nc := e.overlordConn(e.overlord("eve"))
	carol := e.client(e.overlord("carol"))
	if got, err := carol.List(t.Context(), time.Time{}); err != nil || len(got) != 0 {
		t.Fatalf("no jobs: %+v, %v", got, err)
	}
	first, err := e.client(e.overlord("alice")).Submit(t.Context(), jobs.Spec{Method: "test.ping", Targets: []string{m1.Name}})
	if err != nil {
		t.Fatal(err)
	}
	forged := broker.NewID()
	rec := []byte(fmt.Sprintf(`{"id":%q,"method":"test.ping","targets":[%q],"caller":"alice"}`, forged, m1.Name))
	subject, _ := broker.JobRecordSubject(forged)
	if _, err := jsget.Publish(t.Context(), nc, &nats.Msg{Subject: subject, Data: rec}, forged); err != nil {
		t.Fatal(err)
	}
	second, err := e.client(e.overlord("bob")).Submit(t.Context(), jobs.Spec{Method: "test.add", Args: []any{1, 2}, Targets: []string{m1.Name}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := carol.List(t.Context(), time.Time{})
	if err != nil || len(got) != 2 || got[0].ID != first.ID || got[0].Caller != "alice" || got[1].ID != second.ID ||
		got[1].Caller != "bob" || got[1].Method != "test.add" || len(got[1].Targets) != 1 {
		t.Fatalf("list: %+v, %v", got, err)
	}
	since := first.Issued.Add(time.Millisecond)
	want := 1
	if second.Issued.Before(since) {
		want = 0 // issued in the same millisecond
	}
	if got, err := carol.List(t.Context(), since); err != nil || len(got) != want {
		t.Errorf("since %s: %+v, %v", since, got, err)
	}
}
