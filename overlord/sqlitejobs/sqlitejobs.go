// Package sqlitejobs is an overlord.JobStore in a SQLite database (pure
// Go, no cgo): the store behind the func command's async jobs
// (DIR/jobs.db). Its WAL mode lets `func jobs status` and `func jobs
// wait` read while a detached `func jobs run` writes from another
// process.
//
//	store := sqlitejobs.New(filepath.Join(dir, sqlitejobs.FileName))
//	defer store.Close()
//	c := overlord.New(overlord.WithIdentityDir(dir), overlord.WithJobStore(store))
//	defer c.Close()
//	job, err := c.Targets("*").CallAsync(ctx, "packages", "check_updates")
//
// Importing this package is what links SQLite into a program: an
// overlord that makes only synchronous calls does without it.
package sqlitejobs

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, pure Go

	"github.com/gofunc/gofunc/overlord"
)

// FileName is the store's file in an overlord's identity directory.
const FileName = "jobs.db"

// Store keeps jobs in SQLite. It opens (and creates, mode 0600) its
// database at first use, so a program that configures it and makes no
// async call creates no file. It is safe for concurrent use, and several
// processes may use the same file.
type Store struct {
	path string

	once    sync.Once
	db      *sql.DB
	openErr error

	mu     sync.Mutex
	closed bool
}

// New returns the store in the SQLite database at path; nothing is
// opened until the first use.
func New(path string) *Store { return &Store{path: path} }

// ErrClosed is returned by a Store used after Close.
var ErrClosed = errors.New("sqlitejobs: store closed")

// Close closes the database, if it was opened. It is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.once.Do(func() { s.openErr = ErrClosed })
	if s.db != nil {
		return s.db.Close()
	}
	return nil
}

// database opens the database on first use.
func (s *Store) database() (*sql.DB, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	s.once.Do(func() { s.db, s.openErr = open(s.path) })
	return s.db, s.openErr
}

const schema = `
CREATE TABLE IF NOT EXISTS jobs (
	id        TEXT PRIMARY KEY,
	created   INTEGER NOT NULL,
	method    TEXT NOT NULL,
	spec      TEXT NOT NULL,
	minions   TEXT NOT NULL,
	body      BLOB NOT NULL,
	args      TEXT NOT NULL,
	digest    TEXT NOT NULL,
	batch     TEXT NOT NULL,
	state     TEXT NOT NULL,
	heartbeat INTEGER NOT NULL,
	finished  INTEGER NOT NULL DEFAULT 0,
	error     TEXT NOT NULL DEFAULT '',
	on_behalf_of TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS results (
	job      TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
	host     TEXT NOT NULL,
	value    BLOB,
	err_kind TEXT NOT NULL DEFAULT '',
	err_code INTEGER NOT NULL DEFAULT 0,
	err_msg  TEXT NOT NULL DEFAULT '',
	duration INTEGER NOT NULL,
	call_id  TEXT NOT NULL DEFAULT '',
	seq      INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (job, host)
);`

// migrations bring a database made by an earlier version up to the
// schema; an error saying the change is there already is ignored.
var migrations = []string{
	`ALTER TABLE results ADD COLUMN seq INTEGER NOT NULL DEFAULT 0`,
	`CREATE INDEX IF NOT EXISTS results_seq ON results (seq)`,
	`ALTER TABLE jobs ADD COLUMN on_behalf_of TEXT NOT NULL DEFAULT ''`,
}

func open(path string) (*sql.DB, error) {
	if path == "" {
		return nil, errors.New("sqlitejobs: no database path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlitejobs: %w", err)
	}
	// Create it 0600 ourselves: the requests it keeps may hold secrets,
	// and SQLite gives its -wal and -shm files the database's mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlitejobs: %w", err)
	}
	f.Close()
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlitejobs: %s: %w", path, err)
	}
	db.SetMaxOpenConns(1) // one writer; SQLite serializes writes anyway
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlitejobs: %s: %w", path, err)
	}
	for _, m := range migrations {
		if _, err := db.Exec(m); err != nil && !strings.Contains(err.Error(), "duplicate column") {
			db.Close()
			return nil, fmt.Errorf("sqlitejobs: %s: migrating: %w", path, err)
		}
	}
	return db, nil
}

// Insert implements overlord.JobStore.
func (s *Store) Insert(ctx context.Context, rec *overlord.JobRecord) error {
	db, err := s.database()
	if err != nil {
		return err
	}
	body := rec.Request
	if body == nil {
		body = []byte{} // the column is NOT NULL
	}
	minions, _ := json.Marshal(rec.Minions)
	args, _ := json.Marshal(rec.Args)
	batch, _ := json.Marshal(rec.Batch)
	_, err = db.ExecContext(ctx, `INSERT INTO jobs (id, created, method, spec, minions, body, args, digest, batch, state, heartbeat, on_behalf_of)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		rec.ID, rec.Created.UnixNano(), rec.Method, rec.Spec, string(minions), body, string(args), rec.Digest,
		string(batch), string(rec.State), rec.Heartbeat.UnixNano(), rec.OnBehalfOf)
	return err
}

// SetState implements overlord.JobStore.
func (s *Store) SetState(ctx context.Context, id string, from, to overlord.JobState, msg string) (bool, error) {
	db, err := s.database()
	if err != nil {
		return false, err
	}
	now := time.Now().UnixNano()
	var res sql.Result
	switch {
	case to == overlord.JobRunning:
		res, err = db.ExecContext(ctx, `UPDATE jobs SET state = ?, heartbeat = ? WHERE id = ? AND (? = '' OR state = ?)`,
			string(to), now, id, string(from), string(from))
	case to.Finished():
		res, err = db.ExecContext(ctx, `UPDATE jobs SET state = ?, finished = ?, error = ? WHERE id = ? AND (? = '' OR state = ?)`,
			string(to), now, msg, id, string(from), string(from))
	default:
		res, err = db.ExecContext(ctx, `UPDATE jobs SET state = ? WHERE id = ? AND (? = '' OR state = ?)`,
			string(to), id, string(from), string(from))
	}
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

const jobColumns = `id, created, method, spec, minions, body, args, digest, batch, state, heartbeat, finished, error, on_behalf_of`

// Get implements overlord.JobStore.
func (s *Store) Get(ctx context.Context, id string) (*overlord.JobRecord, error) {
	db, err := s.database()
	if err != nil {
		return nil, err
	}
	rec, err := scanJob(db.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w %q", overlord.ErrNoJob, id)
	}
	return rec, err
}

type scanner interface{ Scan(dest ...any) error }

func scanJob(row scanner) (*overlord.JobRecord, error) {
	var (
		rec                          overlord.JobRecord
		created, heartbeat, finished int64
		minions, args, batch, state  string
	)
	if err := row.Scan(&rec.ID, &created, &rec.Method, &rec.Spec, &minions, &rec.Request, &args, &rec.Digest, &batch, &state,
		&heartbeat, &finished, &rec.Error, &rec.OnBehalfOf); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(minions), &rec.Minions); err != nil {
		return nil, fmt.Errorf("sqlitejobs: job %s: %w", rec.ID, err)
	}
	_ = json.Unmarshal([]byte(batch), &rec.Batch)
	_ = json.Unmarshal([]byte(args), &rec.Args)
	rec.Created = time.Unix(0, created).UTC()
	rec.State = overlord.JobState(state)
	rec.Heartbeat = time.Unix(0, heartbeat)
	if finished > 0 {
		rec.Finished = time.Unix(0, finished).UTC()
	}
	return &rec, nil
}

// List implements overlord.JobStore.
func (s *Store) List(ctx context.Context) ([]*overlord.JobRecord, error) {
	db, err := s.database()
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, `SELECT `+jobColumns+`,
		(SELECT count(*) FROM results WHERE job = jobs.id),
		(SELECT count(NULLIF(err_kind, '')) FROM results WHERE job = jobs.id)
		FROM jobs ORDER BY created DESC, id DESC`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*overlord.JobRecord
	for rows.Next() {
		var answered, failed int
		rec, err := scanJob(countingScanner{rows, &answered, &failed})
		if err != nil {
			return nil, err
		}
		rec.Answered, rec.Failed = answered, failed
		out = append(out, rec)
	}
	return out, rows.Err()
}

// countingScanner scans a job row followed by two counts.
type countingScanner struct {
	rows             *sql.Rows
	answered, failed *int
}

func (c countingScanner) Scan(dest ...any) error {
	return c.rows.Scan(append(dest, c.answered, c.failed)...)
}

// Delete implements overlord.JobStore.
func (s *Store) Delete(ctx context.Context, id string) error {
	db, err := s.database()
	if err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, `DELETE FROM jobs WHERE id = ?`, id)
	return err
}

// Results implements overlord.JobStore.
func (s *Store) Results(ctx context.Context, id string) ([]overlord.JobResult, error) {
	db, err := s.database()
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, `SELECT host, value, err_kind, err_code, err_msg, duration, call_id, seq
		FROM results WHERE job = ? ORDER BY seq`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []overlord.JobResult
	for rows.Next() {
		var r overlord.JobResult
		var durNs int64
		if err := rows.Scan(&r.Host, &r.Value, &r.ErrKind, &r.ErrCode, &r.ErrMessage, &durNs, &r.CallID, &r.Seq); err != nil {
			return nil, err
		}
		r.Duration = time.Duration(durNs)
		out = append(out, r)
	}
	return out, rows.Err()
}

// AddResults implements overlord.JobStore: the results and the
// heartbeat in one transaction. Each result gets the next sequence
// number of the store (JobResult.Seq): the insert that reads the
// largest one holds SQLite's write lock, which serializes writers of
// every process, so numbers grow in the order results are committed and
// a reader never sees a number before a smaller one.
func (s *Store) AddResults(ctx context.Context, id string, results []overlord.JobResult) error {
	db, err := s.database()
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	for _, r := range results {
		_, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO results (job, host, value, err_kind, err_code, err_msg, duration, call_id, seq)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM results))`,
			id, r.Host, r.Value, r.ErrKind, int(r.ErrCode), r.ErrMessage, int64(r.Duration), r.CallID)
		if err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE jobs SET heartbeat = ? WHERE id = ?`, time.Now().UnixNano(), id); err != nil {
		return err
	}
	return tx.Commit()
}

var _ overlord.JobStore = (*Store)(nil)
