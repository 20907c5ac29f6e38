package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The Puppet module in contrib/puppet/gofunc, driven by a real `puppet
// apply` (Debian's puppet-agent, which .ci/run installs) against a real
// certmaster and three real funcd processes, through the real func
// binary, as a puppet user would run it.

// puppetACL is what the README tells operators to give puppet's
// identity, with test.* for the calls these tests make.
const puppetACL = "puppet@overlord = test.*, command.run, service.status\n"

// puppetFleet is a certmaster, three funcd minions (web1.pp, web2.pp,
// web3.pp, each running commands in a directory of its own) whose ACL
// is puppetACL, and the "puppet" overlord identity directory, mode
// 0700 like the README says.
type puppetFleet struct {
	*fleet
	certmaster string
	identity   string
	names      []string
	cwds       []string // each minion's working directory
	procs      []*exec.Cmd
	addrs      []string
	puppet     *puppetNode
}

func newPuppetFleet(t *testing.T) *puppetFleet {
	t.Helper()
	node := newPuppetNode(t)
	f := &puppetFleet{fleet: newFleet(t), puppet: node}
	acl := filepath.Join(f.dir, "acl.d")
	if err := os.MkdirAll(acl, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(acl, "puppet.acl"), []byte(puppetACL), 0o600); err != nil {
		t.Fatal(err)
	}
	for i, ip := range []string{"127.0.0.111", "127.0.0.112", "127.0.0.113"} {
		name := fmt.Sprintf("web%d.pp", i+1)
		addr, proc := f.funcd(t, name, ip, "--acl-dir", acl)
		f.names, f.procs, f.addrs = append(f.names, name), append(f.procs, proc), append(f.addrs, addr)
		f.cwds = append(f.cwds, filepath.Join(f.dir, name))
	}
	caDir := filepath.Join(f.dir, "ca")
	f.certmaster = net.JoinHostPort("127.0.0.110", freePort(t, "127.0.0.110"))
	daemon(t, "certmaster", "serve", "--dir", caDir, "--listen", f.certmaster)
	waitListening(t, f.certmaster)
	f.identity = filepath.Join(f.dir, "puppet-identity")
	if _, errOut, code := runCmd(t, "certmaster", "issue-overlord", "--dir", caDir, "--out", f.identity, "puppet"); code != 0 {
		t.Fatalf("issue-overlord puppet: %s", errOut)
	}
	if err := os.Chmod(f.identity, 0o700); err != nil {
		t.Fatal(err)
	}
	return f
}

// options is the manifest's $opts: the options gofunc::call and
// gofunc::run take to reach this fleet as puppet.
func (f *puppetFleet) options() string {
	return fmt.Sprintf("$opts = { 'dir' => '%s', 'certmaster' => '%s' }\n", f.identity, f.certmaster)
}

// stop stops minion i and waits until its port is closed.
func (f *puppetFleet) stop(t *testing.T, i int) {
	t.Helper()
	(&opFleet{procs: f.procs, addrs: f.addrs}).stop(t, i)
}

// puppetNode is a puppet installation of its own: every directory
// puppet writes to (confdir, vardir, codedir, ssldir, ...) in a
// temporary directory, so nothing touches /etc, /var or ~.
type puppetNode struct {
	bin  string
	root string
	n    int
}

func newPuppetNode(t *testing.T) *puppetNode {
	t.Helper()
	bin, err := exec.LookPath("puppet")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("puppet is not installed; .ci/run installs Debian's puppet-agent")
		}
		t.Skip("SKIPPING the Puppet module's tests: puppet is not installed (apt-get install puppet-agent)")
	}
	root := t.TempDir()
	// Facts come from a file (puppet's yaml facts terminus) rather than
	// from Facter, which would read the machine's hardware on each run:
	// the manifests use no facts, and the runs stay quick.
	facts := filepath.Join(root, "var", "yaml", "facts")
	if err := os.MkdirAll(facts, 0o700); err != nil {
		t.Fatal(err)
	}
	doc := "--- !ruby/object:Puppet::Node::Facts\nname: gofunc-test\nvalues:\n  kernel: Linux\n"
	if err := os.WriteFile(filepath.Join(facts, "gofunc-test.yaml"), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return &puppetNode{bin: bin, root: root}
}

// apply runs `puppet apply --detailed-exitcodes` on manifest with the
// module path contrib/puppet and returns its output and exit status: 0
// no changes, 2 changes, 4 failures, 6 both, 1 a failed compilation.
func (p *puppetNode) apply(t *testing.T, manifest string, flags ...string) (string, int) {
	t.Helper()
	p.n++
	file := filepath.Join(p.root, fmt.Sprintf("site%d.pp", p.n))
	if err := os.WriteFile(file, []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	_, self, _, _ := runtime.Caller(0)
	modules := filepath.Join(filepath.Dir(self), "..", "..", "contrib", "puppet")
	args := []string{"apply", "--detailed-exitcodes", "--color=false", "--modulepath", modules,
		"--certname", "gofunc-test", "--facts_terminus", "yaml"}
	for _, d := range []string{"confdir", "vardir", "codedir", "logdir", "rundir", "publicdir", "ssldir", "cadir"} {
		args = append(args, "--"+d, filepath.Join(p.root, d))
	}
	args = append(append(args, flags...), file)
	path := "PATH=" + binaries(t) + string(os.PathListSeparator) + os.Getenv("PATH") // built before the deadline starts
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.bin, args...)
	cmd.Env = append(os.Environ(), "HOME="+filepath.Join(p.root, "home"), path)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("puppet apply: %v\n%s", err, out.String())
	}
	return out.String(), cmd.ProcessState.ExitCode()
}

// wantApply checks an apply's exit status and that its output holds
// every one of wants.
func wantApply(t *testing.T, what, out string, code, wantCode int, wants ...string) {
	t.Helper()
	if code != wantCode {
		t.Errorf("%s: puppet apply exited %d, want %d\n%s", what, code, wantCode, out)
		return
	}
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("%s: the output lacks %q\n%s", what, w, out)
		}
	}
}

// TestPuppetCall: gofunc::call at compile time, as the issue lists it:
// test.add on every host, values of every type crossing both ways
// exactly, a method the ACL denies failing the compilation with
// "denied", and a minion down failing it by name (or, with
// fail_on_error => false, marked not ok in the result).
func TestPuppetCall(t *testing.T) {
	t.Parallel()
	f := newPuppetFleet(t)
	manifest := f.options() + `
$sum = gofunc::call('web*', 'test', 'add', [1, 2], $opts + { 'timeout' => 60, 'forks' => 2 })
$sum.each |$host, $r| { notify { "add ${host}": message => "${host}: ${r['value']} ok=${r['ok']}" } }

$some = gofunc::call('*', 'test', 'ping', [], $opts + { 'exclude' => ['web2*'], 'timeout' => '1m' })
notify { 'some': message => "pinged ${some.keys.join(',')}" }

# Deferred: called by the agent when it applies the catalog.
notify { 'deferred': message => Deferred('gofunc::call', ['web3*', 'test', 'add', [40, 2], $opts]) }

$big = gofunc::call('web1*', 'test', 'add', [4398046511104, -9007199254740993], $opts)
notify { 'big': message => "big sum: ${big['web1.pp']['value']}" }

$sent = {
  'big'    => 4398046511104,
  'neg'    => -9007199254740993,
  'yes'    => true,
  'no'     => false,
  'float'  => 2.0,
  'text'   => 'Ünïcode <&> text',
  'bin'    => Binary('AAEC/4CBgg=='),
  'when'   => Timestamp('2026-12-07T10:02:03Z'),
  'nested' => { 'list' => [1, [2, { 'deep' => Binary('') }], {}], 'empty' => [] },
  'dollar' => { '$binary' => 'a struct member, not a tag' },
}
$echo = gofunc::call('*', 'test', 'echo', [$sent], $opts)
$echo.each |$host, $r| {
  $got = $r['value']
  # == alone ignores case and 2 == 2.0: compare the exact types too.
  $same = $got == $sent and type($got) == type($sent)
  notify { "echo ${host}": message => "${host}: same=${same} bin=${got['bin']} type=${type($got)}" }
}
`
	out, code := f.puppet.apply(t, manifest)
	wantApply(t, "calls", out, code, 2,
		"Notice: web1.pp: 3 ok=true", "Notice: web2.pp: 3 ok=true", "Notice: web3.pp: 3 ok=true",
		"Notice: big sum: -9002801208229889", "Notice: pinged web1.pp,web3.pp\n", "Notify[deferred]/message: defined 'message' as {\n  'web3.pp' => {\n    'ok' => true,\n    'value' => 42,",
		"Notice: web1.pp: same=true bin=AAEC/4CBgg==", "Notice: web2.pp: same=true", "Notice: web3.pp: same=true",
		"'big' => Integer[4398046511104, 4398046511104]", "'neg' => Integer[-9007199254740993, -9007199254740993]",
		"'yes' => Boolean[true]", "'no' => Boolean[false]", "'float' => Float[2.0, 2.0]", "'bin' => Binary",
		"'when' => Timestamp['2026-12-07T10:02:03.000000000 UTC']", "'deep' => Binary", "'dollar' => Struct[{'$binary' => String}]")

	// The ACL grants puppet test.*, command.run and service.status:
	// service.restart is denied, and the compilation fails saying so.
	out, code = f.puppet.apply(t, f.options()+`
gofunc::call('web*', 'service', 'restart', ['nginx'], $opts)
notify { 'not reached': }
`)
	wantApply(t, "denied", out, code, 1,
		"gofunc::call service.restart on 'web*': 3 of 3 hosts failed: web1.pp, web2.pp, web3.pp: denied: puppet (overlord) may not call service.restart")
	if strings.Contains(out, "not reached") {
		t.Errorf("denied: the catalog was applied:\n%s", out)
	}

	// One minion down: with fail_on_error => false the result says so
	// (notice() prints while compiling); by default the compilation
	// fails and names it.
	f.stop(t, 1)
	out, code = f.puppet.apply(t, f.options()+`
$r = gofunc::call('web*', 'test', 'ping', [], $opts + { 'fail_on_error' => false })
$r.each |$host, $x| { notice("${host} ok=${x['ok']} kind=${x.dig('error', 'kind')}") }
gofunc::call('web*', 'test', 'ping', [], $opts)
`)
	wantApply(t, "minion down", out, code, 1,
		"web1.pp ok=true kind=\n", "web2.pp ok=false kind=unreachable", "web3.pp ok=true kind=\n",
		"gofunc::call test.ping on 'web*': 1 of 3 hosts failed: web2.pp: unreachable (connection refused)")
}

// TestPuppetRun: gofunc::run changes only the hosts that need it (the
// unless check runs on each), names them, changes nothing the second
// time, runs a refreshonly command when notified, and fails naming
// the hosts where the command failed or that could not be checked.
func TestPuppetRun(t *testing.T) {
	t.Parallel()
	f := newPuppetFleet(t)
	// web2 already has the marker: only web1 and web3 need the command.
	if err := os.WriteFile(filepath.Join(f.cwds[1], "marker"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	trigger := filepath.Join(f.puppet.root, "trigger")
	manifest := f.options() + fmt.Sprintf(`
gofunc::run { 'marker':
  spec    => 'web*',
  command => ['touch', 'marker'],
  unless  => ['test', '-e', 'marker'],
  *       => $opts,
}
file { '%s': content => 'changed' }
~> gofunc::run { 'on refresh':
  spec        => 'web[13]*',
  command     => ['touch', 'refreshed'],
  refreshonly => true,
  *           => $opts,
}
`, trigger)
	out, code := f.puppet.apply(t, manifest)
	wantApply(t, "first apply", out, code, 2,
		`Gofunc_run[marker]/state: ran ["touch", "marker"] on web1.pp, web3.pp (web2.pp did not need it)`,
		`Gofunc_run[on refresh]: ran ["touch", "refreshed"] on web1.pp, web3.pp`)
	for i, want := range []bool{true, true, true} {
		if _, err := os.Stat(filepath.Join(f.cwds[i], "marker")); (err == nil) != want {
			t.Errorf("%s: marker: %v", f.names[i], err)
		}
	}
	for i, want := range []bool{true, false, true} {
		if _, err := os.Stat(filepath.Join(f.cwds[i], "refreshed")); (err == nil) != want {
			t.Errorf("%s: refreshed: %v, want it there: %v", f.names[i], err, want)
		}
	}
	// Again: unless holds everywhere and nothing notifies: no change.
	if err := os.Remove(filepath.Join(f.cwds[0], "refreshed")); err != nil {
		t.Fatal(err)
	}
	out, code = f.puppet.apply(t, manifest)
	wantApply(t, "second apply", out, code, 0)
	if strings.Contains(out, "Gofunc_run") {
		t.Errorf("second apply changed something:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(f.cwds[0], "refreshed")); err == nil {
		t.Errorf("the refreshonly command ran without a notification")
	}

	// mkdir fails on web2 (a file is in the way), web3 is down: the
	// resource fails naming both, after running on web1.
	if err := os.WriteFile(filepath.Join(f.cwds[1], "sub"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	f.stop(t, 2)
	out, code = f.puppet.apply(t, f.options()+`
gofunc::run { 'sub':
  spec    => 'web*',
  command => ['mkdir', 'sub'],
  unless  => ['test', '-d', 'sub'],
  *       => $opts,
}
`)
	wantApply(t, "failing command", out, code, 4,
		"Gofunc_run[sub]/state: change from 'needed on web1.pp, web2.pp; unknown on web3.pp' to 'done' failed: "+
			"the command failed on web2.pp: exit 1: mkdir: cannot create directory",
		"could not check web3.pp: unreachable (connection refused); it ran on web1.pp")
	if fi, err := os.Stat(filepath.Join(f.cwds[0], "sub")); err != nil || !fi.IsDir() {
		t.Errorf("web1.pp: sub: %v", err)
	}
}

// TestPuppetCallErrors: mistakes in a manifest fail the compilation
// with a message naming them, before any host is called.
func TestPuppetCallErrors(t *testing.T) {
	t.Parallel()
	node := newPuppetNode(t)
	out, code := node.apply(t, `
$r = gofunc::call('*', 'test', 'echo', [{ 'a' => [1, undef] }], { 'func' => '/bin/true' })
`)
	wantApply(t, "undef argument", out, code, 1, `gofunc::call test.echo on '*': args[0]["a"][1] is undef: XML-RPC has no undef`)
	out, code = node.apply(t, `
$r = gofunc::call('*', 'test', 'ping', [], { 'dir' => '/nonexistent', 'bogus' => 1 })
`)
	wantApply(t, "unknown option", out, code, 1, "'gofunc::call' parameter 'options' unrecognized key 'bogus'")
	out, code = node.apply(t, `
$r = gofunc::call('*', 'test', 'ping', [], { 'dir' => '`+filepath.Join(node.root, "no-identity")+`' })
`)
	wantApply(t, "no identity", out, code, 1, "gofunc::call test.ping on '*': func: ", "certmaster issue-overlord")
	// func passes the broker option on; a func without the broker
	// transport refuses it, and the module says what to do.
	help, _, _ := runCmd(t, "func", "--help")
	if !strings.Contains(help, "--broker") {
		out, code = node.apply(t, `
$r = gofunc::call('*', 'test', 'ping', [], { 'broker' => 'nats://127.0.0.1:4222' })
`)
		wantApply(t, "broker", out, code, 1, "func: unknown flag --broker (this func has no broker transport")
	}
}
