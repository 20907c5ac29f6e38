package overlord_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"
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
