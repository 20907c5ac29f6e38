package overlord

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// A batch the store refuses is kept, logged and written by a later
// flush, not dropped.
func TestResultWriterKeepsBatchOnError(t *testing.T) {
	st, err := openJobStore(filepath.Join(t.TempDir(), "jobs.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	ctx := t.Context()
	if _, err := st.db.ExecContext(ctx, `INSERT INTO jobs (id, created, method, spec, minions, body, args, digest, batch, state, heartbeat)
		VALUES ('j1', 0, 'test.ping', '*', '[{"name":"h1"}]', x'', '[]', '', '{}', 'running', 0)`); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	w := &resultWriter{st: st, id: "j1", log: hclog.New(&hclog.LoggerOptions{Output: &logs})}
	w.add(Result{Host: "h1", Value: int64(7)})
	if _, err := st.db.ExecContext(ctx, `DROP TABLE results`); err != nil {
		t.Fatal(err)
	}
	if err := w.flush(true); err == nil {
		t.Fatal("flush into a missing table succeeded")
	}
	if len(w.pending) != 1 || !strings.Contains(logs.String(), "job store write failed") {
		t.Fatalf("after a failed flush: %d pending, log %q", len(w.pending), logs.String())
	}
	if _, err := st.db.ExecContext(ctx, jobSchema); err != nil {
		t.Fatal(err)
	}
	if err := w.flush(false); err != nil {
		t.Fatalf("retry: %v", err)
	}
	res, err := st.results(ctx, "j1")
	if err != nil || res["h1"].Value != int64(7) {
		t.Errorf("stored results = %v, %v", res, err)
	}
}
