package jobs_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gofunc/gofunc/broker"
	"github.com/gofunc/gofunc/broker/internal/jsget"
	"github.com/gofunc/gofunc/broker/jobs"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/internal/xmlrpc"
	"github.com/gofunc/gofunc/minion"
)

// bigAnswer is n bytes that differ from frame to frame (a frame lost,
// doubled or swapped changes them).
func bigAnswer(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%09d\n", i)
	}
	return b.String()[:n]
}

// blob answers with bigAnswer(n), once the test opens its gate (nil:
// at once).
type blob struct {
	entered chan struct{}
	release chan struct{}
}

func (b *blob) Make(ctx context.Context, n int) (string, error) {
	if b.release != nil {
		close(b.entered)
		select {
		case <-b.release:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	return bigAnswer(n), nil
}

const threeMiB = 3 << 20

// A job's answer larger than a broker message is stored in GF_RESULTS
// as data frames and a signed final frame, and collected whole by
// another overlord; made while the broker is down, all its frames wait
// in one spool file and reach the restarted broker.
func TestChunkedResultSurvivesBrokerRestart(t *testing.T) {
	t.Parallel()
	b := &blob{entered: make(chan struct{}), release: make(chan struct{})}
	e := newEnv(t, fleettest.Config{Minions: 1, Subnet: "127.0.161", HostTimeout: time.Minute,
		Modules: func(_ string, srv *minion.Server) error { return srv.Register("blob", b) }})
	m1 := e.f.Minions()[0]
	dir := t.TempDir()
	away := e.connect(m1, dir)
	alice := e.client(e.overlord("alice"))
	job, err := alice.Submit(t.Context(), jobs.Spec{Method: "blob.make", Args: []any{threeMiB}, Targets: []string{m1.Name}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.entered:
	case <-time.After(time.Minute):
		t.Fatal("the job never started")
	}
	e.stopBroker()
	close(b.release)
	eventually(t, "the result is spooled", func() bool { return len(spooled(t, dir)) == 1 })
	away.close()

	// The broker comes back; the first two frames reach it (as when a
	// flush was cut short), then the minion sends its spool again: each
	// frame is stored once (its Nats-Msg-Id).
	e.startBroker()
	publishFrames(t, e, m1, spooled(t, dir)[0], 2)
	e.connect(m1, dir)
	bob := e.client(e.overlord("bob"))
	res := wait(t, bob, job.ID)
	if res[0].State != jobs.StateOK || res[0].Value != bigAnswer(threeMiB) || res[0].Forged != 0 {
		v, _ := res[0].Value.(string)
		t.Fatalf("result: %s %v, %d bytes, forged %d", res[0].State, res[0].Fault, len(v), res[0].Forged)
	}
	eventually(t, "the spool is emptied", func() bool { return len(spooled(t, dir)) == 0 })
	// 3 MiB in frames of 1 MiB (nats-server's max payload) - 8 KiB.
	if n := resultFrames(t, e, m1, job.ID); n != 4 {
		t.Errorf("%d frames stored for a 3 MiB answer, not 4", n)
	}
}

// publishFrames stores the first n frames of the spool file path as
// fm's door would.
func publishFrames(t *testing.T, e *env, fm *fleettest.Minion, path string, n int) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Subject string `json:"subject"`
		Frames  []struct {
			MsgID  string              `json:"msg_id"`
			Header map[string][]string `json:"header"`
			Data   []byte              `json:"data"`
		} `json:"frames"`
	}
	if err := json.Unmarshal(raw, &file); err != nil || len(file.Frames) <= n {
		t.Fatalf("spool file: %d frames, %v", len(file.Frames), err)
	}
	nc := e.minionConn(fm)
	for _, f := range file.Frames[:n] {
		if _, err := jsget.Publish(t.Context(), nc, &nats.Msg{Subject: file.Subject, Header: f.Header, Data: f.Data}, f.MsgID); err != nil {
			t.Fatal(err)
		}
	}
}

// resultFrames counts the messages GF_RESULTS holds on fm's result
// subject of job, read as an overlord.
func resultFrames(t *testing.T, e *env, fm *fleettest.Minion, job string) int {
	t.Helper()
	nc := e.overlordConn(e.overlord("frames-reader"))
	subject, _ := broker.ResultSubject(job, fm.Name)
	n := 0
	for seq := uint64(1); ; n++ {
		m, err := jsget.Next(t.Context(), nc, broker.ResultStream, subject, seq)
		if errors.Is(err, jsget.ErrNoMessage) {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
		seq = m.Seq + 1
	}
}

// A result whose final frame is genuine but whose data frames are
// missing or altered (as a broker could) is StateIncomplete with
// ErrIncomplete: its value is withheld, never a wrong one. The same
// frames, whole, make the right value.
func TestChunkedResultFramesMissingOrForged(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fleettest.Config{Minions: 3, Subnet: "127.0.162"})
	ms := e.f.Minions()
	alice := e.client(e.overlord("alice"))
	job, err := alice.Submit(t.Context(), jobs.Spec{Method: "test.ping", Targets: []string{ms[0].Name, ms[1].Name, ms[2].Name}})
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	if err := xmlrpc.EncodeResponse(&body, "part one|part two|part three"); err != nil {
		t.Fatal(err)
	}
	whole := body.Bytes()
	parts := [][]byte{whole[:len(whole)/3], whole[len(whole)/3 : 2*len(whole)/3], whole[2*len(whole)/3:]}
	store := func(fm *fleettest.Minion, data [][]byte) {
		t.Helper()
		nc := e.minionConn(fm)
		sc := e.firstJob(nc, fm)
		h, err := broker.SignReply(fm.Identity.Certificate(), &broker.Reply{ID: sc.ID, Request: sc.RequestSum(), Minion: fm.Name, Seq: 3}, whole)
		if err != nil {
			t.Fatal(err)
		}
		h[broker.HeaderRequest] = []string{base64.StdEncoding.EncodeToString(sc.SignedBytes())}
		for seq, d := range data {
			if d == nil {
				continue // lost
			}
			m := &nats.Msg{Subject: sc.ReplyTo, Header: nats.Header{broker.HeaderVersion: {broker.Version}, broker.HeaderID: {sc.ID},
				broker.HeaderSeq: {strconv.Itoa(seq + 1)}}, Data: d}
			if seq == len(data)-1 {
				m.Header = nats.Header(h)
			}
			if _, err := jsget.Publish(t.Context(), nc, m, fmt.Sprintf("%s.%d", fm.Name, seq)); err != nil {
				t.Fatal(err)
			}
		}
	}
	store(ms[0], [][]byte{parts[0], nil, parts[2]})
	store(ms[1], [][]byte{parts[0], []byte(strings.Repeat("X", len(parts[1]))), parts[2]})
	store(ms[2], parts)

	_, res, err := e.client(e.overlord("bob")).Status(t.Context(), job.ID)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res[:2] {
		if r.State != jobs.StateIncomplete || !errors.Is(r.Err, jobs.ErrIncomplete) || r.Value != nil || r.Reason == "" {
			t.Errorf("target %d: %+v", i, r)
		}
	}
	if !strings.Contains(res[0].Reason, "frame 2 of 3 is not stored") {
		t.Errorf("missing frame: %s", res[0].Reason)
	}
	if r := res[2]; r.State != jobs.StateOK || r.Value != "part one|part two|part three" {
		t.Errorf("whole frames: %+v", r)
	}
}

// A target that has no result once the job's start-by (and the grace)
// has passed is StateExpired (ErrExpired), so Wait ends; a target that
// answered is not.
func TestTargetWithoutResultExpires(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fleettest.Config{Minions: 2, Subnet: "127.0.163"})
	m1, m2 := e.f.Minions()[0], e.f.Minions()[1]
	e.connect(m1, t.TempDir()) // m2 never comes
	alice, err := jobs.Dial(t.Context(), []string{e.url}, e.overlord("alice"), jobs.Options{ExpiryGrace: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	startBy := time.Now().Add(3 * time.Second)
	job, err := alice.Submit(t.Context(), jobs.Spec{Method: "test.ping", Targets: []string{m1.Name, m2.Name}, StartBy: startBy})
	if err != nil {
		t.Fatal(err)
	}
	_, res, err := alice.Status(t.Context(), job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if time.Now().Before(startBy) && res[1].State != jobs.StatePending {
		t.Errorf("before its start-by: %+v", res[1])
	}
	// A result read after the start-by still counts.
	eventually(t, "m1 answers", func() bool {
		_, res, err := alice.Status(t.Context(), job.ID)
		return err == nil && res[0].State == jobs.StateOK
	})
	res = wait(t, alice, job.ID)
	if res[0].State != jobs.StateOK || res[0].Err != nil {
		t.Errorf("answered: %+v", res[0])
	}
	if r := res[1]; r.State != jobs.StateExpired || !errors.Is(r.Err, jobs.ErrExpired) || !strings.Contains(r.Reason, "start-by") {
		t.Errorf("never came: %+v", r)
	}
	// With the default grace (10 minutes) it is still pending.
	_, res, err = e.client(e.overlord("bob")).Status(t.Context(), job.ID)
	if err != nil || res[1].State != jobs.StatePending {
		t.Errorf("within the default grace: %+v, %v", res, err)
	}
}
