package jobs_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/broker"
	"github.com/gofunc/gofunc/broker/brokertest"
	"github.com/gofunc/gofunc/broker/internal/jsget"
	"github.com/gofunc/gofunc/broker/internal/natsconn"
	"github.com/gofunc/gofunc/broker/jobs"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/minion"
)

// gate is a module whose Hold returns only when the test releases it.
type gate struct {
	entered chan struct{}
	release chan struct{}
}

func (g *gate) Hold(context.Context) bool {
	close(g.entered)
	<-g.release
	return true
}

// A result made while the broker is down waits in the minion's spool
// (a 0600 file) and reaches GF_RESULTS when the broker is back; the
// file goes once the broker acknowledged it.
func TestResultSpooledWhileBrokerDown(t *testing.T) {
	t.Parallel()
	g := &gate{entered: make(chan struct{}), release: make(chan struct{})}
	e := newEnv(t, fleettest.Config{Minions: 1, Subnet: "127.0.142", HostTimeout: time.Minute,
		Modules: func(_ string, srv *minion.Server) error { return srv.Register("gate", g) }})
	m1 := e.f.Minions()[0]
	dir := t.TempDir()
	e.connect(m1, dir)
	alice := e.client(e.overlord("alice"))
	job, err := alice.Submit(t.Context(), jobs.Spec{Method: "gate.hold", Targets: []string{m1.Name}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-g.entered:
	case <-time.After(time.Minute):
		t.Fatal("the job never started")
	}
	e.stopBroker()
	close(g.release)
	eventually(t, "the result is spooled", func() bool { return len(spooled(t, dir)) == 1 })
	file := spooled(t, dir)[0]
	if m := fileMode(t, file); m != 0o600 {
		t.Errorf("spool file mode %v", m)
	}

	e.startBroker()
	res := wait(t, e.client(e.overlord("bob")), job.ID)
	if res[0].State != jobs.StateOK || res[0].Value != true {
		t.Errorf("result: %+v", res[0])
	}
	eventually(t, "the spool is emptied", func() bool { return len(spooled(t, dir)) == 0 })
}

// A caller revoked while its job waited is denied when the minion takes
// the job: audited, not run, and the denial is the signed result.
func TestRevokedCallerDeniedAtExecution(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fleettest.Config{Minions: 1, Subnet: "127.0.143"})
	m1 := e.f.Minions()[0]
	mallory := e.client(e.overlord("mallory"))
	job, err := mallory.Submit(t.Context(), jobs.Spec{Method: "test.ping", Targets: []string{m1.Name}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.f.CA.Revoke("mallory", ca.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	crl, err := e.f.CA.CRL()
	if err != nil {
		t.Fatal(err)
	}
	if err := m1.Identity.SetCRL(crl); err != nil {
		t.Fatal(err)
	}
	e.connect(m1, t.TempDir())
	res := wait(t, e.client(e.overlord("alice")), job.ID)
	if res[0].State != jobs.StateFault || res[0].Fault == nil || res[0].Fault.Code != gofunc.CodeDenied {
		t.Errorf("result: %+v", res[0])
	}
	if recs := jobRecords(t, m1, "call.denied", job.ID); len(recs) != 1 {
		t.Errorf("%d denial records", len(recs))
	}
	if recs := jobRecords(t, m1, "call.start", job.ID); len(recs) != 0 {
		t.Errorf("the job ran: %+v", recs)
	}
}

// Results in GF_RESULTS that their minion did not sign for the job are
// refused by the collector, and the genuine one after them counts: one
// signed by another minion, one unsigned, one whose answer was changed
// after signing.
func TestForgedResultsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fleettest.Config{Minions: 2, Subnet: "127.0.144"})
	m1, m2 := e.f.Minions()[0], e.f.Minions()[1]
	alice := e.client(e.overlord("alice"))
	job, err := alice.Submit(t.Context(), jobs.Spec{Method: "test.ping", Targets: []string{m2.Name}})
	if err != nil {
		t.Fatal(err)
	}
	// m2's own connection (as a compromised m2 key-less process could
	// hold, or a broker could inject) reads its job and stores forgeries
	// on its result subject.
	nc := e.minionConn(m2)
	sc := e.firstJob(nc, m2)
	answer := []byte("<?xml version=\"1.0\"?><methodResponse><params><param><value><boolean>0</boolean></value></param></params></methodResponse>")
	forge := func(id *fleettest.Minion, edit func(h broker.Header, body []byte) []byte, msgID string) {
		t.Helper()
		h, err := broker.SignReply(id.Identity.Certificate(), &broker.Reply{ID: sc.ID, Request: sc.RequestSum(), Minion: m2.Name, Seq: 1}, answer)
		if err != nil {
			t.Fatal(err)
		}
		h[broker.HeaderRequest] = []string{base64.StdEncoding.EncodeToString(sc.SignedBytes())}
		body := edit(h, answer)
		if _, err := jsget.Publish(t.Context(), nc, &nats.Msg{Subject: sc.ReplyTo, Header: nats.Header(h), Data: body}, msgID); err != nil {
			t.Fatal(err)
		}
	}
	same := func(_ broker.Header, b []byte) []byte { return b }
	forge(m1, same, "by-another-minion")
	forge(m2, func(h broker.Header, b []byte) []byte { delete(h, broker.HeaderSig); return b }, "unsigned")
	forge(m2, func(_ broker.Header, b []byte) []byte {
		return []byte("<?xml version=\"1.0\"?><methodResponse><params><param><value><i4>7</i4></value></param></params></methodResponse>")
	}, "changed")

	_, res, err := alice.Status(t.Context(), job.ID)
	if err != nil || res[0].State != jobs.StatePending || res[0].Forged != 3 {
		t.Fatalf("forgeries counted: %+v, %v", res, err)
	}
	e.connect(m2, t.TempDir())
	res = wait(t, alice, job.ID)
	if res[0].State != jobs.StateOK || res[0].Value != true || res[0].Forged != 3 {
		t.Errorf("result: %+v", res[0])
	}
}

// Submitting to a broker without JetStream is a typed error.
func TestNoJetStream(t *testing.T) {
	t.Parallel()
	f := fleettest.Start(t, fleettest.Config{Minions: 1, Subnet: "127.0.145"})
	e := &env{t: t, f: f}
	bid, err := f.CA.Issue(gofunc.RoleBroker, "broker.test", ca.IssueOptions{IPs: ipLoopback})
	if err != nil {
		t.Fatal(err)
	}
	e.brokerID, e.listen = bid, "127.0.0.1:0"
	e.startBrokerWith(false)
	t.Cleanup(e.stopBroker)
	c := e.client(e.overlord("alice"))
	if _, err := c.Submit(t.Context(), jobs.Spec{Method: "test.ping", Targets: []string{f.Minions()[0].Name}}); !errors.Is(err, jobs.ErrNoJetStream) {
		t.Errorf("submit: %v", err)
	}
	if _, _, err := c.Status(t.Context(), broker.NewID()); !errors.Is(err, jobs.ErrNoJetStream) {
		t.Errorf("status: %v", err)
	}
	for _, spec := range []jobs.Spec{{Method: "test.ping"}, {Method: "test.ping", Targets: []string{"a"}, StartBy: time.Now().Add(30 * 24 * time.Hour)},
		{Method: "test.ping", Targets: []string{"bad_name"}}} {
		if _, err := c.Submit(t.Context(), spec); !errors.Is(err, jobs.ErrSpec) {
			t.Errorf("%+v: %v", spec, err)
		}
	}
}

// A job record the broker (or anyone) stored without its caller's
// signature, or with another's, cannot be read: its targets could be
// anything.
func TestForgedRecordRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fleettest.Config{Minions: 1, Subnet: "127.0.148"})
	alice, eve := e.overlord("alice"), e.overlord("eve")
	inbox := broker.ReplyInbox(eve.Leaf()) + ".in"
	nc, err := natsconn.Connect(t.Context(), []string{e.url}, eve, natsconn.Options{InboxPrefix: inbox})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := e.client(alice)
	for i, tc := range []struct {
		name   string
		header func(rec []byte) broker.Header
	}{
		{"unsigned", func([]byte) broker.Header { return broker.Header{} }},
		{"signed by another overlord", func(rec []byte) broker.Header {
			h, err := broker.SignRecord(eve.Certificate(), rec)
			if err != nil {
				t.Fatal(err)
			}
			return h
		}},
	} {
		id := broker.NewID()
		rec := []byte(fmt.Sprintf(`{"id":%q,"method":"test.ping","targets":["m%d.test"],"caller":"alice"}`, id, i))
		subject, _ := broker.JobRecordSubject(id)
		if _, err := jsget.Publish(t.Context(), nc, &nats.Msg{Subject: subject, Header: nats.Header(tc.header(rec)), Data: rec}, id); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Status(t.Context(), id); !errors.Is(err, jobs.ErrForged) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// An envelope whose signature does not verify, stored with the id of a
// job to come, is refused, and does not make the genuine job a replay,
// even after a restart that reseeds the replay cache from the audit log.
func TestUnsignedEnvelopeCannotBlockAJob(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fleettest.Config{Minions: 1, Subnet: "127.0.149"})
	m1 := e.f.Minions()[0]
	alice, eve := e.overlord("alice"), e.overlord("eve")
	nc, err := natsconn.Connect(t.Context(), []string{e.url}, eve, natsconn.Options{InboxPrefix: broker.ReplyInbox(eve.Leaf()) + ".in"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	id := broker.NewID()
	subject, _ := broker.JobSubject(m1.Name)
	reply, _ := broker.ResultSubject(id, m1.Name)
	body := []byte(`<?xml version="1.0"?><methodCall><methodName>test.ping</methodName><params></params></methodCall>`)
	store := func(signer *identity.Identity, msgID string, edit func(broker.Header)) {
		t.Helper()
		now := time.Now()
		h, err := broker.SignCall(signer.Certificate(), &broker.Call{ID: id, Issued: now, Deadline: now.Add(time.Hour), Method: "test.ping",
			Audience: []string{m1.Name}, ReplyTo: reply}, body)
		if err != nil {
			t.Fatal(err)
		}
		edit(h)
		if _, err := jsget.Publish(t.Context(), nc, &nats.Msg{Subject: subject, Header: nats.Header(h), Data: body}, msgID); err != nil {
			t.Fatal(err)
		}
	}
	// The deadline changed after signing: the signature fails.
	store(eve, "forged", func(h broker.Header) {
		h[broker.HeaderDeadline] = []string{time.Now().Add(2 * time.Hour).UTC().Format(broker.TimeLayout)}
	})
	dir := t.TempDir()
	first := e.connect(m1, dir)
	eventually(t, "the forged envelope is refused", func() bool {
		recs, err := brokertest.AuditRecords(m1.AuditPath, audit.Filter{Kind: "call.denied"})
		return err == nil && len(recs) == 1
	})
	first.close()
	store(alice, "genuine", func(broker.Header) {})
	e.connect(m1, dir) // reseeds its replay cache from the audit log
	eventually(t, "the genuine job runs", func() bool { return len(jobRecords(t, m1, "call.start", id)) == 1 })
}
