package sqlitejobs

import (
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/gofunc/gofunc/overlord"
)

func insertJob(t *testing.T, s *Store, id string) {
	t.Helper()
	rec := &overlord.JobRecord{Job: overlord.Job{ID: id, Method: "test.ping", State: overlord.JobQueued, Created: time.Now()},
		Heartbeat: time.Now()}
	if err := s.Insert(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
}

func seqs(t *testing.T, s *Store, id string) map[string]int64 {
	t.Helper()
	rs, err := s.Results(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	var last int64
	for _, r := range rs {
		if r.Seq < last || r.Seq == last && r.Seq != 0 {
			t.Errorf("Results(%s) not in increasing seq order: %d after %d", id, r.Seq, last)
		}
		last = r.Seq
		out[r.Host] = r.Seq
	}
	return out
}

// Results are numbered in the order they are recorded, across jobs; a
// host's replaced result gets a new, larger number.
func TestResultSequence(t *testing.T) {
	s := New(filepath.Join(t.TempDir(), FileName))
	defer s.Close()
	insertJob(t, s, "a")
	insertJob(t, s, "b")
	add := func(job string, hosts ...string) {
		var rs []overlord.JobResult
		for _, h := range hosts {
			rs = append(rs, overlord.JobResult{Host: h, ErrKind: "timeout", ErrMessage: "x"})
		}
		if err := s.AddResults(t.Context(), job, rs); err != nil {
			t.Fatal(err)
		}
	}
	add("a", "h1", "h2")
	add("b", "h1")
	add("a", "h3")
	a, b := seqs(t, s, "a"), seqs(t, s, "b")
	if !(a["h1"] < a["h2"] && a["h2"] < b["h1"] && b["h1"] < a["h3"]) || a["h1"] < 1 {
		t.Errorf("seqs a=%v b=%v: want h1 < h2 < b.h1 < h3, from 1", a, b)
	}
	add("a", "h1")
	if again := seqs(t, s, "a"); again["h1"] <= a["h3"] {
		t.Errorf("replaced result got seq %d, want more than %d", again["h1"], a["h3"])
	}
}

// A database made before results were numbered is brought up to date.
func TestMigrateOldDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	old := `CREATE TABLE jobs (id TEXT PRIMARY KEY, created INTEGER NOT NULL, method TEXT NOT NULL, spec TEXT NOT NULL,
		minions TEXT NOT NULL, body BLOB NOT NULL, args TEXT NOT NULL, digest TEXT NOT NULL, batch TEXT NOT NULL,
		state TEXT NOT NULL, heartbeat INTEGER NOT NULL, finished INTEGER NOT NULL DEFAULT 0, error TEXT NOT NULL DEFAULT '');
	CREATE TABLE results (job TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE, host TEXT NOT NULL, value BLOB,
		err_kind TEXT NOT NULL DEFAULT '', err_code INTEGER NOT NULL DEFAULT 0, err_msg TEXT NOT NULL DEFAULT '',
		duration INTEGER NOT NULL, call_id TEXT NOT NULL DEFAULT '', PRIMARY KEY (job, host));
	INSERT INTO jobs VALUES ('old', 1, 'test.ping', '*', '[]', x'', 'null', '', '{}', 'done', 1, 2, '');
	INSERT INTO results (job, host, duration) VALUES ('old', 'h1', 5);`
	if _, err := db.Exec(old); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s := New(path)
	defer s.Close()
	if got := seqs(t, s, "old"); got["h1"] != 0 {
		t.Errorf("old result seq %d, want 0", got["h1"])
	}
	if err := s.AddResults(t.Context(), "old", []overlord.JobResult{{Host: "h2", ErrKind: "timeout"}}); err != nil {
		t.Fatal(err)
	}
	if got := seqs(t, s, "old"); got["h2"] != 1 {
		t.Errorf("new result seq %d, want 1", got["h2"])
	}
}
