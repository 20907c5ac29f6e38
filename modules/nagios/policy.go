package nagios

import (
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"strings"
	"syscall"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/glob"
)

// defaultAllow are the stock monitoring-plugins whose options were read
// and found to run no command and write no file. check_apt is here
// because its options that do run commands are refused (refusedOptions).
var defaultAllow = []string{
	"check_apt", "check_clamd", "check_curl", "check_disk", "check_dns", "check_dummy", "check_file_age",
	"check_ftp", "check_host", "check_http", "check_icmp", "check_imap", "check_jabber", "check_load",
	"check_nntp", "check_nntps", "check_ntp_peer", "check_ntp_time", "check_ping", "check_pop", "check_procs",
	"check_sensors", "check_simap", "check_smtp", "check_spop", "check_ssh", "check_ssmtp", "check_swap",
	"check_tcp", "check_time", "check_udp", "check_uptime", "check_users",
}

// DefaultAllow returns the plugins a Module with no Allow list runs: the
// stock monitoring-plugins whose options run no command and write no
// file (check_disk, check_load, check_procs, check_http, check_tcp and
// its aliases, ...).
func DefaultAllow() []string { return append([]string(nil), defaultAllow...) }

// refusedPlugins run a command, or write a file, that their arguments
// choose; they are never run, whatever Allow says. The value says why.
var refusedPlugins = map[string]string{
	"negate":       "runs the command it is given",
	"urlize":       "runs the command it is given",
	"check_by_ssh": "runs commands over ssh, and its ssh options (-o ProxyCommand) run local ones",
	"check_log":    "copies a file the caller names to a path the caller names",
}

// refusedOption is an option that makes a plugin run a command, or read
// its options or arguments from a file the caller names.
type refusedOption struct {
	short byte   // the one-letter spelling, 0 when none
	long  string // the long spelling, without "--"
	// valued options are refused only with a value attached (-uOPTS,
	// --update=OPTS): a bare --update runs apt-get with its own options.
	valued bool
	why    string
}

// refusedOptions are keyed by plugin name; "" applies to every plugin.
var refusedOptions = map[string][]refusedOption{
	"": {{long: "extra-opts", why: "reads the plugin's options from a file"}},
	"check_apt": {
		{short: 'u', long: "update", valued: true, why: "passes options to apt-get, whose hooks run commands"},
		{short: 'U', long: "upgrade", valued: true, why: "passes options to apt-get, whose hooks run commands"},
		{short: 'd', long: "dist-upgrade", valued: true, why: "passes options to apt-get, whose hooks run commands"},
	},
	"check_dig": {{short: 'A', long: "dig-arguments", why: "passes arguments to dig, which reads any file (-f)"}},
}

// checkArgs bounds the arguments and refuses the options that would make
// the plugin (called as plugin, a file named target) run a command.
// Options are read the way getopt_long reads them: bundled short options
// ("-lu"), values attached ("-uOPTS", "--update=OPTS"), long names cut
// to any unambiguous prefix ("--upd"); "--" ends them. It errs on the
// side of refusing: a value that merely looks like a refused option is
// refused too.
func checkArgs(plugin, target string, args []string) error {
	if len(args) > maxArgs {
		return gofunc.Errorf(gofunc.CodeBadArgs, "%d arguments, at most %d", len(args), maxArgs)
	}
	for i, a := range args {
		if len(a) > maxArgLen || strings.IndexByte(a, 0) >= 0 {
			return gofunc.Errorf(gofunc.CodeBadArgs, "args[%d] is over %d bytes or holds a NUL byte", i, maxArgLen)
		}
	}
	opts := append(append(refusedOptions[""], refusedOptions[plugin]...), refusedOptions[target]...)
	for i, a := range args {
		if a == "--" {
			break
		}
		for _, o := range opts {
			if o.matches(a) {
				return gofunc.Errorf(gofunc.CodeDenied, "args[%d] %.40q: %s's --%s %s; refused", i, a, plugin, o.long, o.why)
			}
		}
	}
	return nil
}

// matches reports whether the argument a uses the option.
func (o refusedOption) matches(a string) bool {
	if name, ok := strings.CutPrefix(a, "--"); ok {
		name, _, hasValue := strings.Cut(name, "=")
		return name != "" && strings.HasPrefix(o.long, name) && (!o.valued || hasValue)
	}
	letters, ok := strings.CutPrefix(a, "-")
	if !ok || o.short == 0 {
		return false
	}
	for i := 0; i < len(letters); i++ {
		if letters[i] == o.short && (!o.valued || i < len(letters)-1) {
			return true
		}
	}
	return false
}

// allowPattern is what an Allow entry may hold: a file name with glob
// characters.
var allowPattern = regexp.MustCompile(`^[A-Za-z0-9_.*?\[\]!-]{1,255}$`)

// ValidateAllow checks an allow-list: each entry a plugin name or a glob
// of one ("check_*"). funcd checks its nagios-allow with it at start.
func ValidateAllow(patterns []string) error {
	for _, p := range patterns {
		if !allowPattern.MatchString(p) {
			return fmt.Errorf("nagios: allow-list entry %q is not a plugin name or a glob of one", p)
		}
	}
	return nil
}

// allowed reports whether the allow-list names the plugin.
func (m *Module) allowed(plugin string) (bool, error) {
	patterns := m.Allow
	if len(patterns) == 0 {
		patterns = defaultAllow
	} else if err := ValidateAllow(patterns); err != nil {
		return false, gofunc.Errorf(gofunc.CodeUnavailable, "nagios is misconfigured: %v", err)
	}
	for _, p := range patterns {
		if glob.Match(p, plugin) {
			return true, nil
		}
	}
	return false, nil
}

// checkOwner refuses a file or directory that someone other than root
// or the minion's user could change: they could make the minion run a
// program of theirs.
func checkOwner(what, path string, fi fs.FileInfo) error {
	if fi.Mode().Perm()&0o022 != 0 {
		return gofunc.Errorf(gofunc.CodeDenied, "plugin %s: %s is writable by its group or others (mode %04o)", what, path, fi.Mode().Perm())
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return gofunc.Errorf(gofunc.CodeDenied, "plugin %s: %s is owned by uid %d, neither root nor the minion's user", what, path, st.Uid)
	}
	return nil
}

func checkDirOwner(what, dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return gofunc.Errorf(gofunc.CodeUnavailable, "plugin directory %s: %v", dir, err)
	}
	return checkOwner(what, dir, fi)
}
