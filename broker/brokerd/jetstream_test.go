package brokerd

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/broker"
	"github.com/gofunc/gofunc/identity"
)

// jsDial connects id with the inbox prefix the door (minions) and the
// job client (overlords) use.
func jsDial(t *testing.T, url string, id *identity.Identity) *client {
	t.Helper()
	inbox := broker.ReplyInbox(id.Leaf()) + ".in"
	if id.Role() == gofunc.RoleMinion {
		inbox, _ = broker.MinionInbox(id.Name())
	}
	c, err := dial(t, url, id, nats.CustomInboxPrefix(inbox))
	if err != nil {
		t.Fatalf("connect as %s: %v", id.Name(), err)
	}
	return c
}

// pubAck publishes data on subject with a message id and returns the
// broker's PubAck (or its error).
func pubAck(t *testing.T, c *client, subject, id string) (stream string, err error) {
	t.Helper()
	m := nats.NewMsg(subject)
	m.Header.Set("Nats-Msg-Id", id)
	m.Data = []byte("payload " + id)
	rep, err := c.RequestMsg(m, 30*time.Second)
	if err != nil {
		return "", err
	}
	var ack struct {
		Stream string `json:"stream"`
		Error  *struct {
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(rep.Data, &ack); err != nil {
		t.Fatalf("PubAck %q: %v", rep.Data, err)
	}
	if ack.Error != nil {
		t.Fatalf("PubAck error: %s", ack.Error.Description)
	}
	return ack.Stream, nil
}

// directGet asks stream for the first message on subject from seq 1.
func directGet(c *client, stream, subject string) (*nats.Msg, error) {
	req, _ := json.Marshal(map[string]any{"seq": 1, "next_by_subj": subject})
	return c.Request(broker.DirectGetPrefix+stream, req, 30*time.Second)
}

// With JetStream on, the broker makes the job streams itself; a minion
// reads jobs by direct get and stores its own results, an overlord
// stores jobs and reads results, and neither may do anything else with
// JetStream: no stream or consumer made, changed or deleted, no other
// minion's results, doorbells or inbox.
func TestJetStreamRolesAndForbiddenSubjects(t *testing.T) {
	t.Parallel()
	c := newCA(t)
	const name, other = "web1.example.org", "web2.example.org"
	minionID := c.issue(gofunc.RoleMinion, name)
	aliceID := c.issue(gofunc.RoleOverlord, "alice")
	b := startBroker(t, c, "127.0.0.1", Config{JetStream: true, StoreDir: t.TempDir()})
	if n := b.Server().GlobalAccount().JetStreamUsage().Streams; n != 2 {
		t.Fatalf("%d streams, want GF_JOBS and GF_RESULTS", n)
	}
	m := jsDial(t, b.ClientURL(), minionID)
	alice := jsDial(t, b.ClientURL(), aliceID)
	job := subject(t, broker.JobSubject, name)
	job2 := subject(t, broker.JobSubject, other)
	jobID := strings.Repeat("ab", 16)
	res := subject(t, func(n string) (string, error) { return broker.ResultSubject(jobID, n) }, name)
	res2 := subject(t, func(n string) (string, error) { return broker.ResultSubject(jobID, n) }, other)

	// What each may do.
	if s, err := pubAck(t, alice, job, jobID+".1"); err != nil || s != broker.JobStream {
		t.Fatalf("overlord job: %q, %v", s, err)
	}
	got, err := directGet(m, broker.JobStream, job)
	if err != nil || string(got.Data) != "payload "+jobID+".1" {
		t.Fatalf("minion direct get of its job: %v", err)
	}
	if s, err := pubAck(t, m, res, jobID+"."+name); err != nil || s != broker.ResultStream {
		t.Fatalf("minion result: %q, %v", s, err)
	}
	if got, err := directGet(alice, broker.ResultStream, broker.ResultPrefix+jobID+".*"); err != nil || got.Header.Get("Nats-Subject") != res {
		t.Fatalf("overlord direct get of results: %v", err)
	}
	bell, err := m.SubscribeSync(subject(t, broker.BellSubject, name))
	must(t, err)
	m.flush(t)
	must(t, alice.Publish(subject(t, broker.BellSubject, name), nil))
	nextMsg(t, bell)

	// What the minion may not: other minions' results and doorbells,
	// the results stream, jobs, and every stream or consumer operation.
	forbiddenPubs := []string{
		res2, job, job2, broker.JobRecordPrefix + jobID, broker.BellPrefix + "x",
		broker.DirectGetPrefix + broker.ResultStream, broker.DirectGetPrefix + broker.JobStream + "." + job2,
		"$JS.API.STREAM.CREATE.X", "$JS.API.STREAM.DELETE." + broker.JobStream, "$JS.API.STREAM.UPDATE." + broker.JobStream,
		"$JS.API.STREAM.PURGE." + broker.ResultStream, "$JS.API.STREAM.MSG.DELETE." + broker.JobStream,
		"$JS.API.CONSUMER.CREATE." + broker.JobStream, "$JS.API.CONSUMER.DURABLE.CREATE." + broker.JobStream + ".d",
		"$JS.API.STREAM.INFO." + broker.JobStream, "$JS.API.INFO",
	}
	for _, s := range forbiddenPubs {
		must(t, m.Publish(s, []byte("{}")))
	}
	forbiddenSubs := []string{
		subject(t, broker.BellSubject, other), broker.BellPrefix + "*", job, res2, broker.ResultPrefix + ">",
		broker.ReplyInbox(aliceID.Leaf()) + ".>", subject(t, broker.MinionInbox, other) + ".>", broker.InboxPrefix + ">", "$JS.>", "_INBOX.>",
	}
	for _, s := range forbiddenSubs {
		_, err := m.SubscribeSync(s)
		must(t, err)
	}
	m.flush(t)
	for _, s := range append(forbiddenPubs, forbiddenSubs...) {
		m.waitViolation(t, s)
	}

	// What the overlord may not: store results, manage streams or
	// consumers.
	overlordPubs := []string{
		res, "$JS.API.STREAM.CREATE.X", "$JS.API.STREAM.DELETE." + broker.ResultStream,
		"$JS.API.STREAM.PURGE." + broker.JobStream, "$JS.API.CONSUMER.CREATE." + broker.ResultStream,
		"$JS.API.STREAM.MSG.DELETE." + broker.ResultStream,
	}
	for _, s := range overlordPubs {
		must(t, alice.Publish(s, []byte("{}")))
	}
	alice.flush(t)
	for _, s := range overlordPubs {
		alice.waitViolation(t, s)
	}
	if n := b.Server().GlobalAccount().JetStreamUsage().Streams; n != 2 {
		t.Errorf("%d streams after the attempts", n)
	}
}
