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
