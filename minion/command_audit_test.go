package minion_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/minion"
	"github.com/gofunc/gofunc/modules/command"
)

// command.run's options carry env values and stdin, which are often
// secrets: the audit log records them as "[redacted]" while argv and the
// other options stay readable, for synchronous, asynchronous and denied
// calls alike.
func TestCommandOptionsNeverAudited(t *testing.T) {
	e := start(t, func(s *minion.Server) {
		s.JobDir = filepath.Join(t.TempDir(), "jobs")
		mustRegister(t, s, "command", &command.Module{})
	})
	const envSecret, stdinSecret = "env-Sup3rS3cret-value", "stdin-T0pS3cret-value"
	opts := map[string]any{"env": map[string]any{"API_TOKEN": envSecret}, "stdin": stdinSecret, "timeout": "10s"}
	argv := []string{"sh", "-c", `cat >/dev/null; printf %s "$API_TOKEN"`}

	admin := e.jobCaller(t, "admin")
	got, err := admin.call("command.run", argv, opts)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := got.(map[string]any); m["stdout"] != envSecret {
		t.Fatalf("command.run = %#v: the env did not reach the command", got)
	}
	if code, _ := admin.wait(admin.async("command.run", argv, opts)); code != minion.JobFinished {
		t.Fatalf("async command.run ended with code %d", code)
	}
	_, err = e.call(e.client(gofunc.RoleMinion, "m2.test"), "command.run", argv, opts)
	wantFault(t, "a minion calling command.run", err, gofunc.CodeDenied)

	raw, err := os.ReadFile(e.auditPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{envSecret, stdinSecret} {
		if strings.Contains(string(raw), leak) {
			t.Errorf("the audit log holds %q", leak)
		}
	}
	var runs int
	for _, r := range e.records() {
		if r.Method != "command.run" || len(r.Args) == 0 {
			continue
		}
		runs++
		o, _ := r.Args[1].(map[string]any)
		if len(r.Args) != 2 || o["env"] != audit.Redacted || o["stdin"] != audit.Redacted || o["timeout"] != "10s" {
			t.Errorf("%s record args = %#v, want argv then options with env and stdin %q", r.Kind, r.Args, audit.Redacted)
			continue
		}
		if a, _ := r.Args[0].([]any); len(a) != 3 || a[2] != argv[2] {
			t.Errorf("%s record argv = %#v, want it readable", r.Kind, r.Args[0])
		}
	}
	if runs < 3 {
		t.Errorf("%d command.run records with arguments, want at least 3 (sync, async, denied)", runs)
	}
}
