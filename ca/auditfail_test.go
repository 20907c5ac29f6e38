package ca

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
)

// failingDisk is an audit writer whose disk is full.
type failingDisk struct{}

func (failingDisk) Write([]byte) (int, error) { return 0, syscall.ENOSPC }
func (failingDisk) Sync() error               { return syscall.ENOSPC }

// No audit, no signature: when the record cannot be written the CA
// refuses the operation and changes nothing.
func TestAuditFailureStopsOperations(t *testing.T) {
	dir := t.TempDir()
	if _, err := Init(Config{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	log, err := audit.New(failingDisk{}, audit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := Open(Config{Dir: dir, Audit: log})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Issue(gofunc.RoleMinion, "m1", IssueOptions{}); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("Issue with a full audit disk = %v", err)
	}
	key, _ := newKey()
	csr, _ := makeCSR(key, "m2")
	if _, err := a.Submit(context.Background(), Request{CSR: csr, Source: "192.0.2.1:1"}, ""); err == nil {
		t.Error("request stored without an audit record")
	}
	if _, err := a.Submit(context.Background(), Request{CSR: csr, Source: "192.0.2.1:1"}, "*"); err == nil {
		t.Error("request signed without an audit record")
	}
	if _, _, err := a.CreateToken(TokenOptions{}); err == nil {
		t.Error("token created without an audit record")
	}
	signed, _ := a.Signed()
	reqs, _ := a.Requests()
	if len(signed) != 0 || len(reqs) != 0 {
		t.Errorf("state changed: %d certificates, %d requests", len(signed), len(reqs))
	}
	if _, err := os.Stat(a.path(fileTokens)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("tokens file written: %v", err)
	}
}
