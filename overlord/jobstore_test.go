package overlord_test

import (
	"bytes"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	_ "modernc.org/sqlite"

	"github.com/gofunc/gofunc/overlord"
)

// A batch the store refuses is kept, logged and written by a later
// flush, not dropped.
func TestResultWriterKeepsBatchOnError(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "jobs.db")
	st := jobStore(t, path)
	ctx := t.Context()
	rec := &overlord.JobRecord{Job: overlord.Job{ID: "j1", Method: "test.ping", Spec: "*", State: overlord.JobQueued, Created: time.Now()},
		Minions: []overlord.Minion{{Name: "h1"}}, Heartbeat: time.Now()}
	if err := st.Insert(ctx, rec); err != nil {
		t.Fatal(err)
	}
	// A second connection to the same file takes the results table
	// away, as a damaged or foreign database would.
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.ExecContext(ctx, `ALTER TABLE results RENAME TO results_away`); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	w := overlord.NewResultWriter(st, "j1", hclog.New(&hclog.LoggerOptions{Output: &logs}))
	w.Add(overlord.Result{Host: "h1", Value: int64(7)})
	if err := w.Flush(true); err == nil {
		t.Fatal("flush into a missing table succeeded")
	}
	if w.Pending() != 1 || !strings.Contains(logs.String(), "job store write failed") {
		t.Fatalf("after a failed flush: %d pending, log %q", w.Pending(), logs.String())
	}
	if _, err := raw.ExecContext(ctx, `ALTER TABLE results_away RENAME TO results`); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(false); err != nil {
		t.Fatalf("retry: %v", err)
	}
	res, err := st.Results(ctx, "j1")
	if err != nil || len(res) != 1 || res[0].Host != "h1" || res[0].ErrKind != "" || !bytes.Contains(res[0].Value, []byte("7")) {
		t.Errorf("stored results = %+v, %v", res, err)
	}
}
