package packages

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/modtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDoc(t *testing.T) { modtest.CheckDoc(t, &Module{}) }

func testdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func requireDpkg(t *testing.T) {
	t.Helper()
	if !executable(DefaultDpkgQueryPath) {
		t.Skip("no dpkg-query on this host")
	}
}

// TestListRealDpkg runs the real dpkg-query: dpkg itself must be listed,
// with the version dpkg-query reports for it.
func TestListRealDpkg(t *testing.T) {
	requireDpkg(t)
	want, err := exec.Command(DefaultDpkgQueryPath, "-W", "-f=${Version}", "dpkg").Output()
	if err != nil {
		t.Fatal(err)
	}
	pkgs, err := (&Module{}).List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range pkgs {
		if p.Name == "dpkg" {
			found = true
			if p.Version != string(want) || p.Status != "installed" || p.Arch == "" {
				t.Errorf("dpkg listed as %+v, want version %s, installed", p, want)
			}
		}
	}
	if !found || len(pkgs) < 50 {
		t.Errorf("List() = %d packages, dpkg found: %v", len(pkgs), found)
	}
	got, err := (&Module{}).Version(t.Context(), "dpkg")
	if err != nil || len(got) != 1 || got[0].Version != string(want) {
		t.Errorf("Version(dpkg) = %+v, %v; want %s", got, err, want)
	}
	if _, err := (&Module{}).Version(t.Context(), "no-such-package-gofunc"); !errors.Is(err, gofunc.ErrNotFound) {
		t.Errorf("Version(missing) = %v, want CodeNotFound", err)
	}
}

// TestCheckUpdatesReal runs the real apt-get -s upgrade: a simulation,
// reading the package lists already on the host.
func TestCheckUpdatesReal(t *testing.T) {
	requireDpkg(t)
	if !executable(DefaultAptGetPath) {
		t.Skip("no apt-get")
	}
	updates, err := (&Module{}).CheckUpdates(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d updates available", len(updates))
	for _, u := range updates {
		if u.Name == "" || u.Available == "" || u.Arch == "" {
			t.Errorf("incomplete update %+v", u)
		}
	}
}

func TestFakeDeb(t *testing.T) {
	dpkg, dpkgArgv := modtest.FakeTool(t, "dpkg-query", testdata(t, "dpkg-query.txt"), 0)
	apt, aptArgv := modtest.FakeTool(t, "apt-get", testdata(t, "apt-upgrade.txt"), 0)
	m := &Module{DpkgQueryPath: dpkg, AptGetPath: apt}
	pkgs, err := m.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []Package{
		{Name: "dpkg", Version: "1.21.22", Arch: "amd64", Status: "installed"},
		{Name: "libc6", Version: "2.36-9+deb12u4", Arch: "amd64", Status: "installed"},
		{Name: "libc6", Version: "2.36-9+deb12u4", Arch: "i386", Status: "half-configured"},
		{Name: "half", Version: "2.0", Arch: "all", Status: "unpacked"},
	}
	if diff := cmp.Diff(want, pkgs); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{dpkg, "-W", "-f=" + dpkgFormat}, dpkgArgv.Last()); diff != "" {
		t.Errorf("dpkg-query argv (-want +got):\n%s", diff)
	}
	if _, err := m.Version(t.Context(), "libc6:i386"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{dpkg, "-W", "-f=" + dpkgFormat, "--", "libc6:i386"}, dpkgArgv.Last()); diff != "" {
		t.Errorf("dpkg-query argv (-want +got):\n%s", diff)
	}
	updates, err := m.CheckUpdates(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(updates) != 5 || updates[1].Name != "dpkg" || updates[1].Available != "1.21.23" {
		t.Errorf("CheckUpdates = %+v", updates)
	}
	if diff := cmp.Diff([]string{apt, "-s", "-q", "upgrade"}, aptArgv.Last()); diff != "" {
		t.Errorf("apt-get argv (-want +got):\n%s", diff)
	}
}

func TestInstallRemoveArgv(t *testing.T) {
	apt, aptArgv := modtest.FakeTool(t, "apt-get", "Setting up nginx (1.22.1-9) ...\n", 0)
	dnf, dnfArgv := modtest.FakeTool(t, "dnf", "Complete!\n", 0)
	deb := &Module{Manager: Deb, AptGetPath: apt}
	rpm := &Module{Manager: RPM, DnfPath: dnf}
	aptPrefix := []string{apt, "-y", "-q", "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"}
	res, err := deb.Install(t.Context(), []string{"nginx", "libc6:i386", "bash=5.2.15-2+b8", "login=1:4.13+dfsg1-1"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Output, "Setting up nginx") {
		t.Errorf("Install output = %q", res.Output)
	}
	want := append(append([]string(nil), aptPrefix...), "install", "--", "nginx", "libc6:i386", "bash=5.2.15-2+b8", "login=1:4.13+dfsg1-1")
	if diff := cmp.Diff(want, aptArgv.Last()); diff != "" {
		t.Errorf("apt-get install argv (-want +got):\n%s", diff)
	}
	if _, err := deb.Remove(t.Context(), []string{"nginx"}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(append(append([]string(nil), aptPrefix...), "remove", "--", "nginx"), aptArgv.Last()); diff != "" {
		t.Errorf("apt-get remove argv (-want +got):\n%s", diff)
	}
	if _, err := rpm.Install(t.Context(), []string{"NetworkManager", "perl-Data-Dumper", "kernel-6.9.4-200.fc40.x86_64"}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{dnf, "-y", "-q", "install", "--", "NetworkManager", "perl-Data-Dumper", "kernel-6.9.4-200.fc40.x86_64"},
		dnfArgv.Last()); diff != "" {
		t.Errorf("dnf install argv (-want +got):\n%s", diff)
	}
	if _, err := rpm.Remove(t.Context(), []string{"nginx"}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{dnf, "-y", "-q", "remove", "--", "nginx"}, dnfArgv.Last()); diff != "" {
		t.Errorf("dnf remove argv (-want +got):\n%s", diff)
	}
}

func TestToolFailures(t *testing.T) {
	tests := []struct {
		out  string
		exit int
		want error
	}{
		{"E: Unable to locate package nosuch", 100, gofunc.ErrNotFound},
		{"E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 42 (apt-get)", 100, gofunc.ErrBusy},
		{"E: Sub-process /usr/bin/dpkg returned an error code (1)", 100, &gofunc.Fault{Code: gofunc.CodeModule}},
	}
	for _, tt := range tests {
		apt, _ := modtest.FakeTool(t, "apt-get", tt.out, tt.exit)
		_, err := (&Module{Manager: Deb, AptGetPath: apt}).Install(t.Context(), []string{"nosuch"})
		if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.out[:20]) {
			t.Errorf("apt-get saying %q: Install = %v, want %v with its message", tt.out, err, tt.want)
		}
	}
}

func TestFakeRPM(t *testing.T) {
	rpm, rpmArgv := modtest.FakeTool(t, "rpm", testdata(t, "rpm-qa.txt"), 0)
	dnf, dnfArgv := modtest.FakeTool(t, "dnf", testdata(t, "dnf-check-update.txt"), 100)
	// Detection: no dpkg-query, an rpm.
	m := &Module{DpkgQueryPath: filepath.Join(t.TempDir(), "none"), RpmPath: rpm, DnfPath: dnf}
	pkgs, err := m.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != 4 || pkgs[2] != (Package{Name: "glibc", Version: "2.39-15.fc40", Arch: "i686", Status: "installed"}) {
		t.Errorf("List = %+v", pkgs)
	}
	if diff := cmp.Diff([]string{rpm, "-qa", "--qf", rpmFormat}, rpmArgv.Last()); diff != "" {
		t.Errorf("rpm argv (-want +got):\n%s", diff)
	}
	updates, err := m.CheckUpdates(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []Update{
		{Name: "bash", Arch: "x86_64", Available: "5.2.26-1.fc40", Origin: "updates"},
		{Name: "kernel-core", Arch: "x86_64", Available: "6.9.4-200.fc40", Origin: "updates"},
		{Name: "a-really-long-package-name-that-wraps", Arch: "noarch", Available: "1.2.3-4.fc40", Origin: "updates"},
		{Name: "python3-libs", Arch: "x86_64", Available: "3.12.4-1.fc40", Origin: "updates-testing"},
	}
	if diff := cmp.Diff(want, updates); diff != "" {
		t.Errorf("CheckUpdates (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{dnf, "-q", "check-update"}, dnfArgv.Last()); diff != "" {
		t.Errorf("dnf argv (-want +got):\n%s", diff)
	}
	none, _ := modtest.FakeTool(t, "dnf", "", 0)
	if u, err := (&Module{Manager: RPM, DnfPath: none}).CheckUpdates(t.Context()); err != nil || len(u) != 0 {
		t.Errorf("dnf exit 0: CheckUpdates = %+v, %v; want none", u, err)
	}
	broken, _ := modtest.FakeTool(t, "dnf", "Error: Failed to download metadata for repo 'fedora'", 1)
	if _, err := (&Module{Manager: RPM, DnfPath: broken}).CheckUpdates(t.Context()); !errors.Is(err, &gofunc.Fault{Code: gofunc.CodeModule}) ||
		!strings.Contains(err.Error(), "Failed to download") {
		t.Errorf("dnf exit 1: CheckUpdates = %v, want CodeModule with dnf's message", err)
	}
	missing, _ := modtest.FakeTool(t, "rpm", "package nosuch is not installed\n", 1)
	if _, err := (&Module{Manager: RPM, RpmPath: missing}).Version(t.Context(), "nosuch"); !errors.Is(err, gofunc.ErrNotFound) {
		t.Errorf("Version(missing rpm) = %v, want CodeNotFound", err)
	}
}

func TestUnavailable(t *testing.T) {
	dir := t.TempDir()
	m := &Module{DpkgQueryPath: filepath.Join(dir, "a"), RpmPath: filepath.Join(dir, "b")}
	if _, err := m.List(t.Context()); !errors.Is(err, gofunc.ErrUnavailable) {
		t.Errorf("List without any tool = %v, want CodeUnavailable", err)
	}
	if _, err := (&Module{Manager: "pacman"}).List(t.Context()); !errors.Is(err, gofunc.ErrUnavailable) {
		t.Errorf("List with an unknown Manager = %v, want CodeUnavailable", err)
	}
	if _, err := (&Module{Manager: Deb, AptGetPath: filepath.Join(dir, "apt-get")}).CheckUpdates(t.Context()); !errors.Is(err, gofunc.ErrUnavailable) {
		t.Errorf("CheckUpdates without apt-get = %v, want CodeUnavailable", err)
	}
}

func TestHostileNames(t *testing.T) {
	apt, aptArgv := modtest.FakeTool(t, "apt-get", "", 0)
	dnf, dnfArgv := modtest.FakeTool(t, "dnf", "", 0)
	deb := &Module{Manager: Deb, AptGetPath: apt, DpkgQueryPath: apt}
	rpm := &Module{Manager: RPM, DnfPath: dnf, RpmPath: dnf}
	hostile := []string{"nginx; reboot", "-rf", "--allow-unauthenticated", "../../etc/shadow", "a\x00b", "",
		"nginx reboot", "nginx\n", "$(reboot)", "ng*", strings.Repeat("a", 10000)}
	for _, name := range hostile {
		for _, m := range []*Module{deb, rpm} {
			if _, err := m.Install(t.Context(), []string{"bash", name}); !errors.Is(err, gofunc.ErrBadArgs) {
				t.Errorf("%s Install(%.30q) = %v, want CodeBadArgs", m.Manager, name, err)
			}
			if _, err := m.Remove(t.Context(), []string{name}); !errors.Is(err, gofunc.ErrBadArgs) {
				t.Errorf("%s Remove(%.30q) = %v, want CodeBadArgs", m.Manager, name, err)
			}
			if _, err := m.Version(t.Context(), name); !errors.Is(err, gofunc.ErrBadArgs) {
				t.Errorf("%s Version(%.30q) = %v, want CodeBadArgs", m.Manager, name, err)
			}
		}
	}
	for _, name := range []string{"Nginx", "nginx=", "nginx=;reboot", "nginx=-1", "nginx:", "n"} {
		if _, err := deb.Install(t.Context(), []string{name}); !errors.Is(err, gofunc.ErrBadArgs) {
			t.Errorf("deb Install(%q) = %v, want CodeBadArgs", name, err)
		}
	}
	if _, err := deb.Version(t.Context(), "nginx=1.0"); !errors.Is(err, gofunc.ErrBadArgs) {
		t.Errorf("Version(name=version) = %v, want CodeBadArgs", err)
	}
	if _, err := deb.Install(t.Context(), nil); !errors.Is(err, gofunc.ErrBadArgs) {
		t.Errorf("Install(no names) = %v, want CodeBadArgs", err)
	}
	if _, err := deb.Install(t.Context(), make([]string, maxNames+1)); !errors.Is(err, gofunc.ErrBadArgs) {
		t.Errorf("Install(%d names) = %v, want CodeBadArgs", maxNames+1, err)
	}
	if got := append(aptArgv.Last(), dnfArgv.Last()...); len(got) > 0 {
		t.Errorf("a refused call ran a tool: %q", got)
	}
}

func TestParseAptSimulate(t *testing.T) {
	updates, err := ParseAptSimulate(strings.NewReader(testdata(t, "apt-upgrade.txt")))
	if err != nil {
		t.Fatal(err)
	}
	want := []Update{
		{Name: "base-files", Current: "12.4+deb12u11", Available: "12.4+deb12u14", Arch: "amd64", Origin: "Debian:12.14/oldstable"},
		{Name: "dpkg", Current: "1.21.22", Available: "1.21.23", Arch: "amd64", Origin: "Debian:12.14/oldstable"},
		{Name: "login", Current: "1:4.13+dfsg1-1+deb12u1", Available: "1:4.13+dfsg1-1+deb12u2", Arch: "amd64",
			Origin: "Debian:12.14/oldstable, Debian-Security:12/oldstable-security", Security: true},
		{Name: "libperl5.36", Current: "5.36.0-7+deb12u2", Available: "5.36.0-7+deb12u3", Arch: "amd64", Origin: "Debian:12.14/oldstable"},
		{Name: "linux-image-6.1.0-30-amd64", Available: "6.1.124-1", Arch: "amd64", Origin: "Debian-Security:12/stable-security", Security: true},
	}
	if diff := cmp.Diff(want, updates); diff != "" {
		t.Errorf("ParseAptSimulate (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"Inst ", "Inst x [1.0", "Inst x [1.0] 2.0", "Inst x (", "Inst x ( amd64)"} {
		_, err := ParseAptSimulate(strings.NewReader("Reading...\n" + bad + "\n"))
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Line != 2 || !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseAptSimulate(%q) = %v, want a *ParseError on line 2", bad, err)
		}
	}
}

func TestParseListErrors(t *testing.T) {
	for _, bad := range []string{"dpkg 1.0 amd64 ii", "\t1.0\tamd64\tii ", "a\tb\tc"} {
		if _, err := ParseList(strings.NewReader(bad + "\n")); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseList(%q) = %v, want ErrMalformed", bad, err)
		}
	}
	long := "a\tb\tc\t" + strings.Repeat("d", MaxLineLen)
	if _, err := ParseList(strings.NewReader(long)); !errors.Is(err, bufio.ErrTooLong) {
		t.Errorf("ParseList(long line) = %v, want bufio.ErrTooLong", err)
	}
}

func fuzzSeeds(f *testing.F) {
	modtest.AddSeeds(f, "testdata/apt-upgrade.txt", "testdata/dnf-check-update.txt", "testdata/rpm-qa.txt", "testdata/dpkg-query.txt")
}

func FuzzParseList(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, in string) {
		pkgs, err := ParseList(strings.NewReader(in))
		modtest.WantErrorAs[*ParseError](t, err)
		for _, p := range pkgs {
			if p.Name == "" || p.Status == "" || strings.ContainsAny(p.Name+p.Version+p.Arch+p.Status, "\t\n") {
				t.Fatalf("bad package %+v", p)
			}
		}
	})
}

func FuzzParseAptSimulate(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, in string) {
		updates, err := ParseAptSimulate(strings.NewReader(in))
		modtest.WantErrorAs[*ParseError](t, err)
		for _, u := range updates {
			if u.Name == "" || u.Available == "" {
				t.Fatalf("incomplete update %+v", u)
			}
		}
	})
}

func FuzzParseDnfCheckUpdate(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, in string) {
		updates, err := ParseDnfCheckUpdate(strings.NewReader(in))
		modtest.WantErrorAs[*ParseError](t, err)
		for _, u := range updates {
			if u.Name == "" || u.Arch == "" || u.Available == "" || u.Origin == "" {
				t.Fatalf("incomplete update %+v", u)
			}
		}
	})
}

func sortedPackages(pkgs []Package) bool {
	return slices.IsSortedFunc(pkgs, func(a, b Package) int {
		return strings.Compare(a.Name+"\x00"+a.Arch, b.Name+"\x00"+b.Arch)
	})
}

// The reviewer's case with the real dpkg-query.
func TestInventoryStableReal(t *testing.T) {
	requireDpkg(t)
	inv := modtest.CheckStable(t, (&Module{}).Inventory)
	if len(inv) < 50 || !sortedPackages(inv) {
		t.Errorf("Inventory() = %d packages, sorted %v", len(inv), sortedPackages(inv))
	}
}

// rpm lists its database in no particular order: the inventory is sorted
// by name and architecture, so the same packages listed in another order
// give the same inventory.
func TestInventoryOrderRPM(t *testing.T) {
	listing := testdata(t, "rpm-qa.txt")
	lines := strings.Split(strings.TrimSuffix(listing, "\n"), "\n")
	slices.Reverse(lines)
	var invs [][]Package
	for _, out := range []string{listing, strings.Join(lines, "\n") + "\n"} {
		rpm, _ := modtest.FakeTool(t, "rpm", out, 0)
		m := &Module{Manager: RPM, RpmPath: rpm}
		inv, err := m.Inventory(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		invs = append(invs, inv)
	}
	if diff := cmp.Diff(invs[0], invs[1]); diff != "" {
		t.Errorf("Inventory depends on rpm's order (-first +reversed):\n%s", diff)
	}
	want := []Package{
		{Name: "bash", Version: "5.2.26-1.fc40", Arch: "x86_64", Status: "installed"},
		{Name: "glibc", Version: "2.39-15.fc40", Arch: "i686", Status: "installed"},
		{Name: "glibc", Version: "2.39-15.fc40", Arch: "x86_64", Status: "installed"},
		{Name: "kernel-core", Version: "6.9.4-100.fc40", Arch: "x86_64", Status: "installed"},
	}
	if diff := cmp.Diff(want, invs[0]); diff != "" {
		t.Errorf("Inventory (-want +got):\n%s", diff)
	}
}
