package door

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/gofunc/gofunc/broker"
	"github.com/gofunc/gofunc/broker/internal/jsget"
)

// The spool sends results oldest first, deletes each one sent, stops at
// the first that cannot be sent (kept for next time), and puts aside an
// unreadable file or one the broker refuses, never losing it.
func TestSpool(t *testing.T) {
	s := &spool{dir: t.TempDir()}
	job := strings.Repeat("ab", 16)
	for i := range 4 {
		subject, _ := broker.ResultSubject(job, fmt.Sprintf("web%d", i))
		if err := s.put(spooled{Subject: subject, MsgID: fmt.Sprint(i), Header: broker.Header{"Gf-Ver": {"1"}}, Data: []byte("answer")}); err != nil {
			t.Fatal(err)
		}
	}
	files, _ := filepath.Glob(filepath.Join(s.dir, "*"+spoolExt))
	for _, f := range files {
		if st, err := os.Stat(f); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, st.Mode(), err)
		}
	}
	if err := os.WriteFile(filepath.Join(s.dir, "00000000000000000000-000000"+spoolExt), []byte("{torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	var sent []string
	s.each(hclog.NewNullLogger(), func(r spooled) error {
		switch r.MsgID {
		case "1":
			return fmt.Errorf("%w: maximum message size", jsget.ErrNotStored)
		case "3":
			return errors.New("broker down")
		}
		sent = append(sent, r.MsgID)
		return nil
	})
	if strings.Join(sent, ",") != "0,2" {
		t.Errorf("sent %v", sent)
	}
	left, _ := filepath.Glob(filepath.Join(s.dir, "*"+spoolExt))
	bad, _ := filepath.Glob(filepath.Join(s.dir, "*.bad"))
	if len(left) != 1 || len(bad) != 2 {
		t.Errorf("left %v, put aside %v", left, bad)
	}
	s.each(hclog.NewNullLogger(), func(r spooled) error { sent = append(sent, r.MsgID); return nil })
	if strings.Join(sent, ",") != "0,2,3" {
		t.Errorf("sent %v", sent)
	}
}

// A chunked result is one spool file holding every frame, read back in
// order; a file written before results were chunked (one frame at the
// top level) reads as a result of one frame; a frame without its
// message id is no result.
func TestSpoolFrames(t *testing.T) {
	s := &spool{dir: t.TempDir()}
	subject, _ := broker.ResultSubject(strings.Repeat("cd", 16), "web1")
	frames := []spooledFrame{{MsgID: "a.1", Data: []byte("one")}, {MsgID: "a.2", Data: []byte("two")}, {MsgID: "a.3", Header: broker.Header{"Gf-Final": {"1"}}, Data: []byte("three")}}
	if err := s.put(spooled{Subject: subject, Frames: frames}); err != nil {
		t.Fatal(err)
	}
	if err := s.put(spooled{Subject: subject, Frames: []spooledFrame{{Data: []byte("no id")}}}); err != nil {
		t.Fatal(err)
	}
	var got []string
	s.each(hclog.NewNullLogger(), func(r spooled) error {
		for _, f := range r.Frames {
			got = append(got, f.MsgID+"="+string(f.Data))
		}
		return nil
	})
	if strings.Join(got, ",") != "a.1=one,a.2=two,a.3=three" {
		t.Errorf("frames read back: %v", got)
	}
	if bad, _ := filepath.Glob(filepath.Join(s.dir, "*.bad")); len(bad) != 1 {
		t.Errorf("put aside: %v", bad)
	}
	legacy := filepath.Join(s.dir, "legacy"+spoolExt)
	if err := os.WriteFile(legacy, []byte(`{"subject":"`+subject+`","msg_id":"old","header":{},"data":"YW5zd2Vy"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := readSpooled(legacy)
	if err != nil || len(r.Frames) != 1 || r.Frames[0].MsgID != "old" || string(r.Frames[0].Data) != "answer" {
		t.Errorf("legacy file: %+v, %v", r, err)
	}
}

// FuzzReadSpooled: a spool file is read as a result with at least one
// frame, each with a message id, on a result subject, or refused; never
// a panic.
func FuzzReadSpooled(f *testing.F) {
	subject, _ := broker.ResultSubject(strings.Repeat("cd", 16), "web1")
	f.Add(`{"subject":"` + subject + `","frames":[{"msg_id":"a.1","header":{},"data":"b25l"}]}`)
	f.Add(`{"subject":"` + subject + `","msg_id":"old","data":"YW5zd2Vy"}`)
	f.Add(`{"subject":"gf.v1.res.x","frames":[]}`)
	f.Fuzz(func(t *testing.T, s string) {
		path := filepath.Join(t.TempDir(), "f"+spoolExt)
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		r, err := readSpooled(path)
		if err != nil {
			return
		}
		if _, _, err := broker.ResultOf(r.Subject); err != nil || len(r.Frames) == 0 {
			t.Fatalf("%q read as %+v", s, r)
		}
		for _, fr := range r.Frames {
			if fr.MsgID == "" {
				t.Fatalf("%q: a frame without its message id", s)
			}
		}
	})
}
