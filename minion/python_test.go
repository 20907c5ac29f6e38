package minion_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gofunc/gofunc"
)

// pythonClient drives a minion with Python's stock xmlrpc.client and an
// ssl.SSLContext holding a client certificate: the reference check that
// any language's XML-RPC client can call a minion.
const pythonClient = `
import ssl, sys, time, xmlrpc.client
url, ca, cert, key = sys.argv[1:5]
ctx = ssl.create_default_context(cafile=ca)
ctx.load_cert_chain(cert, key)
s = xmlrpc.client.ServerProxy(url, context=ctx, allow_none=True)
assert s.test.ping() is True
assert s.test.add(2**30, 2**30) == 2**31, "64-bit result"
assert s.test.echo(None) is None
assert "test.ping" in s.system.listMethods()
try:
    s.test.nope()
    raise SystemExit("no fault")
except xmlrpc.client.Fault as f:
    assert f.faultCode == -32601, f.faultCode
job = getattr(s, "async").test.add(1, 2)
for _ in range(500):
    code, result = s.jobs.job_status(job)
    if code != 0:
        break
    time.sleep(0.01)
assert [code, result] == [1, 3], (code, result)
print("python ok")
`

func TestPythonStockClient(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("SKIP: python3 not installed; the stock-client interop check did not run")
	}
	e := start(t, nil)
	dir := filepath.Join(t.TempDir(), "admin")
	if err := e.identity(gofunc.RoleOverlord, "admin").Save(dir); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "client.py")
	if err := os.WriteFile(script, []byte(pythonClient), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(python, script, "https://"+e.addr+"/RPC2",
		filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "python ok") {
		t.Fatalf("python client: %v\n%s", err, out)
	}
}
