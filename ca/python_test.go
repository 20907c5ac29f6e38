package ca

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gofunc/gofunc/identity"
)

const pythonClient = `
import json, ssl, sys, xmlrpc.client
ctx = ssl.create_default_context(cafile=sys.argv[2])
proxy = xmlrpc.client.ServerProxy("https://%s/" % sys.argv[1], context=ctx)
print(json.dumps(proxy.wait_for_cert(open(sys.argv[3]).read())))
try:
    proxy.enroll({"csr": "junk", "name": "py2"})
except xmlrpc.client.Fault as f:
    print(f.faultCode)
`

// Func's own clients are Python: wait_for_cert must work with Python's
// stock xmlrpc.client, which also verifies the certmaster's certificate
// (IP SAN 127.0.0.1) against ca.pem.
func TestPythonWaitForCert(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found; skipping the Python interop check")
	}
	ts := startService(t, withAutosign("py*"))
	key, _ := newKey()
	csr, _ := makeCSR(key, "py1")
	dir := t.TempDir()
	csrPath, caPath := filepath.Join(dir, "req.pem"), filepath.Join(dir, "ca.pem")
	os.WriteFile(csrPath, csr, 0o600)
	os.WriteFile(caPath, ts.Authority.CertificatePEM(), 0o600)
	out, err := exec.CommandContext(testCtx(t), py, "-c", pythonClient, ts.addr, caPath, csrPath).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var got []any
	if len(lines) != 2 || json.Unmarshal([]byte(lines[0]), &got) != nil || len(got) != 3 {
		t.Fatalf("python printed %q", out)
	}
	cert, err := identity.ParseCertificatePEM([]byte(got[1].(string)))
	if got[0] != true || err != nil || cert.Subject.CommonName != "py1" || got[2] != string(ts.Authority.CertificatePEM()) {
		t.Errorf("wait_for_cert answer %v (%v)", got, err)
	}
	if lines[1] != "-32602" {
		t.Errorf("fault code %q, want -32602 (bad arguments)", lines[1])
	}
}
