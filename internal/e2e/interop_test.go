package e2e

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// pyClient drives a minion with Python's standard xmlrpc.client over an
// ssl.SSLContext holding the overlord's certificate: a client no one
// here wrote.
const pyClient = `
import json, ssl, sys, xmlrpc.client
url, d, name = sys.argv[1], sys.argv[2], sys.argv[3]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(d + "/ca.pem")
ctx.load_cert_chain(d + "/cert.pem", d + "/key.pem")
# The minion's certificate names the minion, not the IP we dial.
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_REQUIRED
s = xmlrpc.client.ServerProxy(url, context=ctx, allow_none=True, use_builtin_types=True)
out = {}
out["ping"] = s.test.ping()
out["has_list_methods"] = "system.list_methods" in s.system.list_methods()
out["list_methods_std"] = "test.ping" in s.system.listMethods()
r = s.command.run(["echo", "hello from python"])
out["run"] = [r["exit_code"], r["stdout"]]
out["big"] = s.test.add(2000000000, 2000000000)
blob = bytes(range(256))
out["blob_ok"] = s.test.echo(blob) == blob
out["nested"] = s.test.echo({"a": [1, 2.5, True, "x", {"b": None}]})
try:
    s.test.no_such_method()
    out["fault"] = None
except xmlrpc.client.Fault as f:
    out["fault"] = f.faultCode
try:
    s.test.add("two", 3)
    out["badargs"] = None
except xmlrpc.client.Fault as f:
    out["badargs"] = f.faultCode
print(json.dumps(out))
`

func TestPythonXMLRPCClient(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("SKIP: python3 is not installed; interop with xmlrpc.client not checked")
	}
	f := newFleet(t)
	addr, _ := f.funcd(t, "py1.test", "127.0.0.61")
	out := python(t, pyClient, "https://"+addr+"/RPC2", f.overlord, "py1.test")
	var got struct {
		Ping           bool  `json:"ping"`
		HasListMethods bool  `json:"has_list_methods"`
		ListMethodsStd bool  `json:"list_methods_std"`
		Run            []any `json:"run"`
		Big            int64 `json:"big"`
		BlobOK         bool  `json:"blob_ok"`
		Nested         any   `json:"nested"`
		Fault          *int  `json:"fault"`
		BadArgs        *int  `json:"badargs"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("python said %q: %v", out, err)
	}
	if !got.Ping || !got.HasListMethods || !got.ListMethodsStd {
		t.Errorf("introspection/ping: %+v", got)
	}
	if len(got.Run) != 2 || got.Run[0] != float64(0) || got.Run[1] != "hello from python\n" {
		t.Errorf("command.run = %v", got.Run)
	}
	if got.Big != 4000000000 {
		t.Errorf("test.add beyond 32 bits = %d", got.Big)
	}
	if !got.BlobOK {
		t.Error("a 256-byte binary blob did not round-trip")
	}
	if b, _ := json.Marshal(got.Nested); string(b) != `{"a":[1,2.5,true,"x",{"b":null}]}` {
		t.Errorf("nested echo = %s", b)
	}
	if got.Fault == nil || *got.Fault != -32601 {
		t.Errorf("unknown method fault code = %v, want -32601", got.Fault)
	}
	if got.BadArgs == nil || *got.BadArgs != -32602 {
		t.Errorf("bad argument fault code = %v, want -32602", got.BadArgs)
	}
}

// The README documents calling a minion with curl; keep that form working.
func TestCurlCall(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("SKIP: curl is not installed")
	}
	f := newFleet(t)
	addr, _ := f.funcd(t, "curl1.test", "127.0.0.62")
	body := `<?xml version="1.0"?><methodCall><methodName>test.add</methodName><params><param><value><int>40</int></value></param><param><value><int>2</int></value></param></params></methodCall>`
	cmd := exec.Command(curl, "-sS", "--fail",
		"--cacert", filepath.Join(f.overlord, "ca.pem"),
		"--cert", filepath.Join(f.overlord, "cert.pem"), "--key", filepath.Join(f.overlord, "key.pem"),
		"--resolve", "curl1.test:"+strings.Split(addr, ":")[1]+":127.0.0.62",
		"-H", "Content-Type: text/xml", "--data-binary", body,
		"https://curl1.test:"+strings.Split(addr, ":")[1]+"/RPC2")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "<int>42</int>") {
		t.Fatalf("curl got %s", out)
	}
}
