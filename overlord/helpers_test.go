package overlord_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/gofunc/gofunc/overlord"
	"github.com/gofunc/gofunc/overlord/sqlitejobs"
)

func t0() context.Context { return context.Background() }

// remotePorts returns the distinct remote addresses in an audit log.
func remotePorts(t *testing.T, path string) map[string]bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r struct {
			Remote string `json:"remote"`
		}
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Remote != "" {
			seen[r.Remote] = true
		}
	}
	return seen
}

// waitFor polls cond until it holds, failing the test after d.
func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// jobStore is a SQLite job store at path, closed when the test ends.
func jobStore(t *testing.T, path string) *sqlitejobs.Store {
	st := sqlitejobs.New(path)
	t.Cleanup(func() { st.Close() })
	return st
}

// writeMinions writes a minion list as the Certmaster source caches it.
func writeMinions(path string, ms []overlord.Minion) error {
	b, err := json.Marshal(ms)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}
