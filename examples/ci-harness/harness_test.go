package ciharness_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/minion"
)

// Deployer is the code under test: a module a deploy tool would ship to
// its hosts. It writes a release marker under its root.
type Deployer struct {
	Root string
	mu   sync.Mutex
}

// Deploy records version as the current release and returns the path.
func (d *Deployer) Deploy(ctx context.Context, version string) (string, error) {
	if version == "" || strings.ContainsAny(version, "/ \x00") {
		return "", gofunc.Errorf(gofunc.CodeBadArgs, "bad version %q", version)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	path := filepath.Join(d.Root, "current")
	return path, os.WriteFile(path, []byte(version), 0o644)
}

// Current returns the deployed version.
func (d *Deployer) Current() (string, error) {
	b, err := os.ReadFile(filepath.Join(d.Root, "current"))
	if errors.Is(err, os.ErrNotExist) {
		return "", gofunc.Errorf(gofunc.CodeNotFound, "nothing deployed")
	}
	return string(b), err
}

// fleet starts n minions, each with its own Deployer root.
func fleet(t *testing.T, n int) *fleettest.Fleet {
	roots := t.TempDir()
	return fleettest.Start(t, fleettest.Config{Minions: n, Modules: func(name string, srv *minion.Server) error {
		dir := filepath.Join(roots, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		return srv.Register("deploy", &Deployer{Root: dir})
	}})
}

func TestDeployEverywhere(t *testing.T) {
	f := fleet(t, 3)
	o := f.Overlord()
	if _, err := o.Targets("*").Call(t.Context(), "deploy", "deploy", "v1.2.3"); err != nil {
		t.Fatalf("deploy: %v", err)
	}
	res, err := o.Targets("*").Call(t.Context(), "deploy", "current")
	if err != nil {
		t.Fatalf("current: %v", err)
	}
	for _, h := range res.Hosts() {
		if res[h].Value != "v1.2.3" {
			t.Errorf("%s runs %v, want v1.2.3", h, res[h].Value)
		}
	}
}

func TestBadVersionRefusedOnEveryHost(t *testing.T) {
	f := fleet(t, 2)
	res, err := f.Overlord().Targets("*").Call(t.Context(), "deploy", "deploy", "../../etc")
	if !errors.Is(err, gofunc.ErrBadArgs) {
		t.Fatalf("err = %v, want bad args", err)
	}
	if len(res.Failed()) != 2 {
		t.Fatalf("failed hosts = %v, want both", res.Failed())
	}
}

// A deploy must not claim success on a host that is down.
func TestHostDownDuringDeploy(t *testing.T) {
	f := fleet(t, 3)
	f.Minions()[1].Down()
	res, err := f.Overlord().Targets("*").Call(t.Context(), "deploy", "deploy", "v2")
	if err == nil {
		t.Fatal("deploy with a host down returned no error")
	}
	if got := fmt.Sprint(res.Failed()); got != "[m2.test]" {
		t.Fatalf("failed = %s, want [m2.test]", got)
	}
}

// Only the overlord role may deploy; a minion certificate is denied, and
// a monitoring user restricted by ACL may read but not deploy.
func TestACL(t *testing.T) {
	acl, err := minion.ParseACL("ci.acl", strings.NewReader(`
admin@overlord   = *
monitor@overlord = deploy.current, test.ping
`))
	if err != nil {
		t.Fatal(err)
	}
	roots := t.TempDir()
	f := fleettest.Start(t, fleettest.Config{Minions: 1, ACL: acl, Modules: func(name string, srv *minion.Server) error {
		return srv.Register("deploy", &Deployer{Root: roots})
	}})
	mon := f.As(gofunc.RoleOverlord, "monitor")
	if _, err := mon.Targets("*").Call(t.Context(), "deploy", "deploy", "v3"); !errors.Is(err, gofunc.ErrDenied) {
		t.Fatalf("monitor deploy: %v, want denied", err)
	}
	if _, err := mon.Targets("*").Call(t.Context(), "deploy", "current"); !errors.Is(err, gofunc.ErrNotFound) {
		t.Fatalf("monitor current: %v, want not found (allowed, nothing deployed)", err)
	}
	if _, err := f.As(gofunc.RoleMinion, "m9.test").Targets("*").Call(t.Context(), "test", "ping"); !errors.Is(err, gofunc.ErrDenied) {
		t.Fatalf("minion cert: %v, want denied", err)
	}
}
