package ca

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/internal/syncbuf"
)

// fullDiskEnv names the tmpfs the child of TestRevokeOnFullDisk works in.
const fullDiskEnv = "GOFUNC_CA_FULLDISK_DIR"

// Issue 11 item 1: with the disk full, signing is refused (nothing the
// audit log cannot announce happens) but a revocation still works, its
// audit record written first, thanks to DIR/reserve. The disk is a real
// 4 MiB tmpfs, mounted in a private mount namespace by a child process.
func TestRevokeOnFullDisk(t *testing.T) {
	if dir := os.Getenv(fullDiskEnv); dir != "" {
		revokeOnFullDisk(t, dir)
		return
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		skipOrFail(t, "unshare (util-linux) is needed to mount a small tmpfs")
	}
	dir := t.TempDir()
	cmd := exec.CommandContext(testCtx(t), unshare, "-m", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs -o size=4m tmpfs "$1" && exec "$2" -test.run='^TestRevokeOnFullDisk$' -test.v`, "sh", dir, os.Args[0])
	cmd.Env = append(os.Environ(), fullDiskEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil && strings.Contains(string(out), "mount") && !strings.Contains(string(out), "--- ") {
		skipOrFail(t, "cannot mount a tmpfs in a mount namespace here: "+strings.TrimSpace(string(out)))
	}
	if err != nil || !strings.Contains(string(out), "--- PASS: TestRevokeOnFullDisk") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip("SKIPPED (not in CI): " + why)
}

func revokeOnFullDisk(t *testing.T, dir string) {
	var logs syncbuf.Buffer
	cadir := filepath.Join(dir, "ca")
	a, err := Init(Config{Dir: cadir, ReserveBytes: 512 << 10, Audit: &audit.Shared{Path: filepath.Join(cadir, "audit.log")},
		Logger: hclogTo(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	victim := issue(t, a, gofunc.RoleOverlord, "thief", IssueOptions{})
	if _, err := os.Stat(filepath.Join(cadir, fileReserve)); err != nil {
		t.Fatalf("no reserve: %v", err)
	}
	// Fill the disk.
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{64 << 10, 4 << 10, 1} {
		chunk := make([]byte, size)
		for {
			if _, err := f.Write(chunk); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatal(err)
				}
				break
			}
		}
	}
	f.Close()
	// The last pages of the audit log and the index may still hold a
	// record or two; soon nothing fits and signing is refused.
	var issueErr error
	for i := 0; i < 100 && issueErr == nil; i++ {
		_, issueErr = a.Issue(gofunc.RoleMinion, fmt.Sprintf("m%d", i), IssueOptions{})
	}
	if !errors.Is(issueErr, syscall.ENOSPC) {
		t.Fatalf("Issue on a full disk: %v, want a refusal for want of space", issueErr)
	}
	revoked, err := a.Revoke("thief", ReasonKeyCompromise)
	if err != nil || len(revoked) != 1 {
		t.Fatalf("Revoke on a full disk: %+v, %v", revoked, err)
	}
	der, err := a.CRL()
	if err != nil {
		t.Fatal(err)
	}
	rl, err := parseCRL(der)
	if err != nil || len(rl.RevokedCertificateEntries) != 1 || rl.RevokedCertificateEntries[0].SerialNumber.Cmp(victim.Leaf().SerialNumber) != 0 {
		t.Fatalf("CRL after the revocation on a full disk: %v", err)
	}
	var kinds []string
	if err := audit.Query([]string{filepath.Join(cadir, "audit.log")}, audit.Filter{}, func(r audit.Record) error {
		kinds = append(kinds, r.Kind)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(kinds) == 0 || kinds[len(kinds)-1] != KindRevoke {
		t.Errorf("audit log ends with %v, want the revocation", kinds)
	}
	if !strings.Contains(logs.String(), "reserve was used") {
		t.Errorf("no loud log about the reserve:\n%s", logs.String())
	}
	// Another Authority (an admin command in another process) sees it.
	b, err := Open(Config{Dir: cadir})
	if err != nil {
		t.Fatal(err)
	}
	certs, _ := b.Signed()
	for _, c := range certs {
		if c.Name == "thief" && !c.Revoked {
			t.Errorf("index after the revocation: %+v", c)
		}
	}
}
