package copyfile

import (
	"encoding/hex"
	"io/fs"
	"os"
	"os/user"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"github.com/gofunc/gofunc"
)

// DefaultMode is the mode of a new file whose options set none.
const DefaultMode fs.FileMode = 0o644

// meta is the validated form of Options.
type meta struct {
	mode     *fs.FileMode // nil: keep the old file's, or DefaultMode
	uid, gid int          // -1: keep the old file's, or the minion's
	backup   bool
	size     int64  // declared size; 0: not declared
	sha256   string // declared, lower-case hex; "": not declared
}

// attrs are the mode and ownership a file is to get.
type attrs struct {
	mode     fs.FileMode
	uid, gid int // -1: leave as created
}

// namePattern is what useradd and groupadd accept (with Debian's
// relaxations): no shell metacharacters, no leading dash.
var namePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?$`)

func parseOptions(o Options) (meta, error) {
	md := meta{uid: -1, gid: -1, backup: o.Backup, size: o.Size}
	if o.Size < 0 {
		return md, gofunc.Errorf(gofunc.CodeBadArgs, "size %d is negative", o.Size)
	}
	if o.SHA256 != "" {
		sum, err := parseSHA256("sha256", o.SHA256)
		if err != nil {
			return md, err
		}
		md.sha256 = sum
	}
	if o.Mode != nil {
		mode, err := ParseMode(o.Mode)
		if err != nil {
			return md, err
		}
		md.mode = &mode
	}
	var err error
	if md.uid, err = lookupID("owner", o.Owner, func(name string) (string, error) {
		u, err := user.Lookup(name)
		if err != nil {
			return "", err
		}
		return u.Uid, nil
	}); err != nil {
		return md, err
	}
	if md.gid, err = lookupID("group", o.Group, func(name string) (string, error) {
		g, err := user.LookupGroup(name)
		if err != nil {
			return "", err
		}
		return g.Gid, nil
	}); err != nil {
		return md, err
	}
	return md, nil
}

// ParseMode reads a file mode given as an int (0644 is 420) or an octal
// string ("0644", "644", "0o644"); at most 07777, setuid, setgid and sticky
// bits included.
func ParseMode(v any) (fs.FileMode, error) {
	var n int64
	switch m := v.(type) {
	case int:
		n = int64(m)
	case int64:
		n = m
	case int32:
		n = int64(m)
	case string:
		s := strings.TrimPrefix(strings.TrimPrefix(m, "0o"), "0O")
		u, err := strconv.ParseUint(s, 8, 32)
		if err != nil || s == "" {
			return 0, gofunc.Errorf(gofunc.CodeBadArgs, "mode %q is not an octal number", m)
		}
		n = int64(u)
	default:
		return 0, gofunc.Errorf(gofunc.CodeBadArgs, "mode is a %T, want an int or an octal string", v)
	}
	if n < 0 || n > 0o7777 {
		return 0, gofunc.Errorf(gofunc.CodeBadArgs, "mode %#o is out of range (0 to 07777)", n)
	}
	mode := fs.FileMode(n & 0o777)
	if n&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if n&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if n&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	return mode, nil
}

// lookupID resolves an owner or group given as a number (int or decimal
// string) or a name; -1 when v is unset.
func lookupID(what string, v any, lookup func(string) (string, error)) (int, error) {
	var s string
	switch x := v.(type) {
	case nil:
		return -1, nil
	case int:
		s = strconv.Itoa(x)
	case int64:
		s = strconv.FormatInt(x, 10)
	case int32:
		s = strconv.FormatInt(int64(x), 10)
	case string:
		s = x
	default:
		return 0, gofunc.Errorf(gofunc.CodeBadArgs, "%s is a %T, want a name or a number", what, v)
	}
	if s != "" && strings.Trim(s, "0123456789") == "" {
		id, err := strconv.ParseUint(s, 10, 32)
		if err != nil || id == 1<<32-1 { // (uid_t)-1 means "unchanged" to chown
			return 0, gofunc.Errorf(gofunc.CodeBadArgs, "%s %s is out of range", what, s)
		}
		return int(id), nil
	}
	if !namePattern.MatchString(s) {
		return 0, gofunc.Errorf(gofunc.CodeBadArgs, "%s %q is not a valid name or number", what, s)
	}
	idStr, err := lookup(s)
	if err != nil {
		return 0, gofunc.Errorf(gofunc.CodeBadArgs, "%s %q: %v", what, s, err)
	}
	id, err := strconv.Atoi(idStr)
	if err != nil {
		return 0, gofunc.Errorf(gofunc.CodeModule, "%s %q has id %q", what, s, idStr)
	}
	return id, nil
}

func parseSHA256(what, s string) (string, error) {
	s = strings.ToLower(s)
	if b, err := hex.DecodeString(s); err != nil || len(b) != 32 {
		return "", gofunc.Errorf(gofunc.CodeBadArgs, "%s must be 64 hex digits", what)
	}
	return s, nil
}

// verify checks the received data against the declared size and SHA-256.
func (md meta) verify(size int64, sum string) error {
	if md.size > 0 && size != md.size {
		return gofunc.Errorf(gofunc.CodeBadArgs, "received %d bytes, size declared %d", size, md.size)
	}
	if md.sha256 != "" && sum != md.sha256 {
		return gofunc.Errorf(gofunc.CodeBadArgs, "received data have SHA-256 %s, declared %s", sum, md.sha256)
	}
	return nil
}

// resolve chooses the attributes of the new file: the options, else the
// old file's (old may be nil), else the defaults.
func (md meta) resolve(old fs.FileInfo) attrs {
	a := attrs{mode: DefaultMode, uid: md.uid, gid: md.gid}
	if old != nil {
		a.mode = modeBits(old.Mode())
		if st, ok := old.Sys().(*syscall.Stat_t); ok {
			if a.uid < 0 {
				a.uid = int(st.Uid)
			}
			if a.gid < 0 {
				a.gid = int(st.Gid)
			}
		}
	}
	if md.mode != nil {
		a.mode = *md.mode
	}
	return a
}

func modeBits(m fs.FileMode) fs.FileMode {
	return m & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
}

// applyToFile sets the attributes on the temporary file. Ownership goes
// first because chown clears the setuid and setgid bits.
func (a attrs) applyToFile(f *os.File) error {
	if a.uid >= 0 || a.gid >= 0 {
		if err := f.Chown(a.uid, a.gid); err != nil {
			return gofunc.Errorf(gofunc.CodeModule, "chown: %v", err)
		}
	}
	if err := f.Chmod(a.mode); err != nil {
		return gofunc.Errorf(gofunc.CodeModule, "chmod: %v", err)
	}
	return nil
}

// differ reports whether a file described by old lacks the attributes.
func (a attrs) differ(old fs.FileInfo) bool {
	st, ok := old.Sys().(*syscall.Stat_t)
	return modeBits(old.Mode()) != a.mode ||
		ok && ((a.uid >= 0 && uint32(a.uid) != st.Uid) || (a.gid >= 0 && uint32(a.gid) != st.Gid))
}

// applyTo fixes the attributes of an existing regular file whose content
// is already right, through its open descriptor f (so a symbolic link
// swapped in at its path changes nothing elsewhere), reporting whether
// anything changed. old describes f.
func (a attrs) applyTo(f *os.File, old fs.FileInfo) (bool, error) {
	changed := false
	if st, ok := old.Sys().(*syscall.Stat_t); ok && ((a.uid >= 0 && uint32(a.uid) != st.Uid) || (a.gid >= 0 && uint32(a.gid) != st.Gid)) {
		if err := f.Chown(a.uid, a.gid); err != nil {
			return false, gofunc.Errorf(gofunc.CodeModule, "chown: %v", err)
		}
		changed = true
	}
	if changed || modeBits(old.Mode()) != a.mode {
		if err := f.Chmod(a.mode); err != nil {
			return changed, gofunc.Errorf(gofunc.CodeModule, "chmod: %v", err)
		}
		changed = changed || modeBits(old.Mode()) != a.mode
	}
	return changed, nil
}
