package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/identity"
)

// certmaster issue writes credentials for every role with that role in
// the certificate; browser roles get a PKCS#12 file that OpenSSL opens
// with the password printed once.
func TestIssueRoles(t *testing.T) {
	dir, _ := initCA(t)
	for _, role := range []gofunc.Role{gofunc.RoleOverlord, gofunc.RoleMonitor, gofunc.RoleBroker,
		gofunc.RoleViewer, gofunc.RoleOperator, gofunc.RoleAdmin, gofunc.RoleDelegate} {
		out := filepath.Join(t.TempDir(), string(role))
		name := "u-" + string(role)
		args := []string{"issue", "--dir", dir, "--json", "--role", string(role), "--out", out, name}
		if role.Serves() {
			args = append(args, "--dns", name+".example.org", "--ip", "127.0.0.9")
		}
		var res struct {
			Role        gofunc.Role `json:"role"`
			P12         string      `json:"p12"`
			P12Password string      `json:"p12_password"`
		}
		if err := json.Unmarshal([]byte(mustRun(t, args...)), &res); err != nil {
			t.Fatal(err)
		}
		id, err := identity.Load(out)
		if err != nil {
			t.Fatal(err)
		}
		if id.Role() != role || id.Name() != name || res.Role != role {
			t.Errorf("issue --role %s: certificate is %s/%s", role, id.Name(), id.Role())
		}
		if role.Serves() && (len(id.Leaf().IPAddresses) != 1 || len(id.Leaf().DNSNames) != 2) {
			t.Errorf("%s: SANs %v %v", role, id.Leaf().DNSNames, id.Leaf().IPAddresses)
		}
		p12 := filepath.Join(out, name+".p12")
		_, statErr := os.Stat(p12)
		switch browser := role == gofunc.RoleViewer || role == gofunc.RoleOperator || role == gofunc.RoleAdmin; {
		case browser && (statErr != nil || res.P12 != p12 || res.P12Password == ""):
			t.Errorf("%s: no PKCS#12 file (%v) or password", role, statErr)
		case !browser && statErr == nil:
			t.Errorf("%s: a PKCS#12 file for a role that is no browser's", role)
		case browser:
			checkMode(t, p12, 0o600)
			cmd := exec.Command("openssl", "pkcs12", "-in", p12, "-passin", "pass:"+res.P12Password, "-nokeys", "-clcerts")
			b, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(b), "CN = "+name) && !strings.Contains(string(b), "CN="+name) {
				t.Errorf("openssl pkcs12 on %s: %v\n%s", p12, err, b)
			}
			if err := exec.Command("openssl", "pkcs12", "-in", p12, "-passin", "pass:wrong", "-nokeys").Run(); err == nil {
				t.Errorf("%s opened with a wrong password", p12)
			}
		}
	}
	// Client roles carry no names to serve with.
	_, errOut, code := runCmd(t, "issue", "--dir", dir, "--role", "viewer", "--out", t.TempDir(), "--ip", "127.0.0.1", "v2")
	if code == 0 || !strings.Contains(errOut, "no DNS or IP names") {
		t.Errorf("viewer with --ip: exit %d, %q", code, errOut)
	}
	// A password file.
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	mustRun(t, "issue", "--dir", dir, "--role", "admin", "--out", out, "--p12-password-file", pw, "boss")
	if b, err := exec.Command("openssl", "pkcs12", "-in", filepath.Join(out, "boss.p12"), "-passin", "pass:s3cret", "-nokeys").CombinedOutput(); err != nil {
		t.Errorf("PKCS#12 with the password from the file: %v\n%s", err, b)
	}
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != want {
		t.Errorf("%s: mode %v, want %v", path, st.Mode().Perm(), want)
	}
}

// issue-overlord (and issue) refuse to overwrite credentials without
// --force, and refuse before a certificate is issued.
func TestIssueOverlordRefusesOverwrite(t *testing.T) {
	dir, _ := initCA(t)
	out := filepath.Join(t.TempDir(), "alice")
	mustRun(t, "issue-overlord", "--dir", dir, "--out", out, "alice")
	first, err := identity.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	_, errOut, code := runCmd(t, "issue-overlord", "--dir", dir, "--out", out, "alice")
	if code != exitFailure || !strings.Contains(errOut, "--force") {
		t.Errorf("second issue-overlord: exit %d, %q; want a refusal naming --force", code, errOut)
	}
	if again, err := identity.Load(out); err != nil || !again.Leaf().Equal(first.Leaf()) {
		t.Errorf("the refused command changed %s (%v)", out, err)
	}
	var signed []struct{ Name string }
	if err := json.Unmarshal([]byte(mustRun(t, "list-signed", "--dir", dir, "--json")), &signed); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range signed {
		if c.Name == "alice" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d certificates for alice after a refused re-issue, want 1", n)
	}
	mustRun(t, "issue-overlord", "--dir", dir, "--out", out, "--force", "alice")
	if again, err := identity.Load(out); err != nil || again.Leaf().Equal(first.Leaf()) {
		t.Errorf("--force did not replace the credentials (%v)", err)
	}
	// One name, one role: alice cannot become a monitor too.
	_, errOut, code = runCmd(t, "issue", "--dir", dir, "--role", "monitor", "--out", t.TempDir(), "alice")
	if code != exitFailure || !strings.Contains(errOut, "another role") {
		t.Errorf("monitor alice beside overlord alice: exit %d, %q", code, errOut)
	}
	// Revoke by name takes the role.
	_, errOut, code = runCmd(t, "revoke", "--dir", dir, "--role", "minion", "alice")
	if code != exitFailure || !strings.Contains(errOut, "not found") {
		t.Errorf("revoke --role minion alice: exit %d, %q", code, errOut)
	}
	if out := mustRun(t, "revoke", "--dir", dir, "--role", "overlord", "alice"); strings.Count(out, "revoked alice") != 2 {
		t.Errorf("revoke --role overlord alice:\n%s", out)
	}
}

// --audit-keep bounds the rotated audit files; what is kept still
// verifies (issue 11 item 1).
func TestAuditRetentionFlags(t *testing.T) {
	dir, _ := initCA(t)
	for range 30 {
		mustRun(t, "token", "create", "--dir", dir, "--audit-max-file", "1KiB", "--audit-keep", "2", "--comment", strings.Repeat("x", 200))
	}
	files, err := audit.Files(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Errorf("audit files %v, want 2 rotated and the live one", files)
	}
	if _, err := audit.Verify(files...); err != nil {
		t.Errorf("the audit files kept do not verify: %v", err)
	}
}
