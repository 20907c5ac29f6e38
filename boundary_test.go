package gofunc_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/gofunc/gofunc"

// The package list is the architecture: these imports must never
// appear, checked with go list -deps rather than hoped for. A forbidden
// entry starting with "/" is a package of this module (and everything
// under it); any other is a full import path.
func TestBoundaries(t *testing.T) {
	t.Parallel()
	forbid := map[string][]string{
		// Overlords and minions hold identities; neither links the
		// certificate authority, and they never import each other.
		// The job store is opt-in, like a database/sql driver.
		// Metrics are opt-in too: client_golang only in the packages
		// that serve or collect them (metrics, */*metrics, the daemons).
		// The broker is opt-in too: package broker/caller (overlords)
		// and broker/door (minions) link NATS, the SDK does not.
		"./overlord": {"/minion", "/modules", "/ca", "/overlord/sqlitejobs", "modernc.org/sqlite", "/metrics", "github.com/prometheus",
			"/broker", "github.com/nats-io"},
		"./minion": {"/overlord", "/modules", "/ca", "/metrics", "github.com/prometheus", "/broker", "github.com/nats-io"},
		// The envelope and subjects need no NATS client.
		"./broker":        {"github.com/nats-io", "/minion", "/overlord"},
		"./broker/caller": {"/minion", "/ca", "github.com/nats-io/nats-server"},
		"./broker/door":   {"/overlord", "/ca", "github.com/nats-io/nats-server"},
		"./identity":      {"/ca", "/minion", "/overlord", "/modules", "golang.org/x/time/rate"},
		"./ca":            {"/minion", "/overlord", "/modules", "/metrics", "github.com/prometheus"},
		"./audit":         {"/minion", "/overlord", "/ca", "/identity", "/modules"},
		"./modules":       {"/overlord", "/minion", "/ca"},
		".":               {"/minion", "/overlord", "/ca", "/identity", "/audit", "/modules"},
		// The README's one-liner pays only for calls: no CA, no job
		// store, no certmaster rate limiter.
		"./examples/oneliner": {"/ca", "/minion", "/overlord/sqlitejobs", "modernc.org/sqlite", "golang.org/x/time/rate",
			"/metrics", "github.com/prometheus", "/broker", "github.com/nats-io"},
		// The metrics plumbing knows no component; collectors know theirs.
		"./metrics": {"/minion", "/overlord", "/ca", "/modules", "/events"},
	}
	for pkg, bad := range forbid {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, b := range bad {
				if strings.HasPrefix(b, "/") {
					b = module + b
				}
				if dep == b || strings.HasPrefix(dep, b+"/") {
					t.Errorf("%s imports %s", pkg, dep)
				}
			}
		}
	}
}
