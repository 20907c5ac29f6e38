// Package mountinfo reads the kernel's mount table
// (/proc/self/mountinfo, proc(5)) for the modules that need it: mount
// lists and changes mounts, disk and hardware measure filesystems.
package mountinfo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/lineparse"
	"github.com/gofunc/gofunc/internal/procrun"
)

// Default is the mount table of the calling process.
const Default = "/proc/self/mountinfo"

// Read parses the mount table at path ("" means Default) for a module
// method named op. Its errors are faults: CodeUnavailable when the file
// cannot be read, CodeModule when it does not parse, the context's
// fault when ctx is done.
func Read(ctx context.Context, path, op string) ([]Mount, error) {
	if ctx.Err() != nil {
		return nil, procrun.ContextFault(ctx, op)
	}
	f, err := os.Open(cmp.Or(path, Default))
	if err != nil {
		return nil, gofunc.Errorf(gofunc.CodeUnavailable, "cannot read the mount table: %v", err)
	}
	defer f.Close()
	mounts, err := Parse(f)
	if err != nil {
		return nil, gofunc.Errorf(gofunc.CodeModule, "%s: %v", f.Name(), err)
	}
	if mounts == nil {
		mounts = []Mount{}
	}
	return mounts, nil
}

// Visible keeps, of the mounts stacked on one mountpoint, only the last
// (the one visible there), in table order.
func Visible(all []Mount) []Mount {
	last := make(map[string]int, len(all))
	for i, mt := range all {
		last[mt.Mountpoint] = i
	}
	visible := all[:0:0]
	for i, mt := range all {
		if last[mt.Mountpoint] == i {
			visible = append(visible, mt)
		}
	}
	return visible
}

// MaxLineLen is the longest mountinfo line Parse accepts.
const MaxLineLen = 64 << 10

// MaxMounts is the largest number of entries Parse returns before
// failing with ErrTooMany.
const MaxMounts = 100_000

// ErrMalformed is wrapped by the *ParseError of a line that is not a
// mountinfo entry.
var ErrMalformed = errors.New("malformed mountinfo line")

// ErrTooMany is returned when the input holds more than MaxMounts entries.
var ErrTooMany = fmt.Errorf("more than %d mounts", MaxMounts)

// ParseError reports the line (1-based) where parsing stopped; it wraps
// ErrMalformed, ErrTooMany or bufio.ErrTooLong.
type ParseError = lineparse.Error

// Mount is one entry of /proc/self/mountinfo (see proc(5)). Paths and the
// device are unescaped: "\040" in the file is a space here.
type Mount struct {
	ID         int    `xmlrpc:"id"`
	ParentID   int    `xmlrpc:"parent_id"`
	MajorMinor string `xmlrpc:"major_minor"` // "8:1"
	// Root is the directory of the filesystem mounted here ("/" unless a
	// bind mount of a subdirectory).
	Root       string `xmlrpc:"root"`
	Mountpoint string `xmlrpc:"mountpoint"`
	// Options are the per-mount options ("rw,relatime").
	Options string `xmlrpc:"options"`
	// Propagation holds the optional fields ("shared:1", "master:2").
	Propagation []string `xmlrpc:"propagation"`
	Fstype      string   `xmlrpc:"fstype"`
	// Device is the mount source ("/dev/sda1", "tmpfs", "server:/export").
	Device string `xmlrpc:"device"`
	// SuperOptions are the filesystem's own options ("rw,errors=remount-ro").
	SuperOptions string `xmlrpc:"super_options"`
}

// Parse parses the mountinfo format of proc(5). Blank lines are
// skipped; any other line that is not an entry fails with a *ParseError
// wrapping ErrMalformed. Lines longer than MaxLineLen and inputs with more
// than MaxMounts entries are refused.
func Parse(r io.Reader) ([]Mount, error) {
	var mounts []Mount
	err := lineparse.Lines(r, MaxLineLen, func(text string) error {
		if strings.TrimSpace(text) == "" {
			return nil
		}
		if len(mounts) == MaxMounts {
			return ErrTooMany
		}
		m, err := parseLine(text)
		if err != nil {
			return err
		}
		mounts = append(mounts, m)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return mounts, nil
}

// parseLine parses
// "36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue".
// Fields are separated by single spaces (the kernel escapes spaces inside
// fields), so an empty field is kept as empty rather than merged.
func parseLine(text string) (Mount, error) {
	fields := strings.Split(text, " ")
	sep := -1
	for i := 6; i < len(fields); i++ {
		if fields[i] == "-" {
			sep = i
			break
		}
	}
	if sep < 0 || len(fields)-sep < 3 || len(fields)-sep > 4 {
		return Mount{}, fmt.Errorf("%w: want 6+ fields, \"-\", fstype, source[, options]", ErrMalformed)
	}
	id, err := strconv.Atoi(fields[0])
	if err != nil || id < 0 {
		return Mount{}, fmt.Errorf("%w: mount id %q", ErrMalformed, fields[0])
	}
	parent, err := strconv.Atoi(fields[1])
	if err != nil || parent < 0 {
		return Mount{}, fmt.Errorf("%w: parent id %q", ErrMalformed, fields[1])
	}
	if !validMajorMinor(fields[2]) {
		return Mount{}, fmt.Errorf("%w: major:minor %q", ErrMalformed, fields[2])
	}
	m := Mount{
		ID:         id,
		ParentID:   parent,
		MajorMinor: fields[2],
		Root:       unescape(fields[3]),
		Mountpoint: unescape(fields[4]),
		Options:    unescape(fields[5]),
		Fstype:     unescape(fields[sep+1]),
		Device:     unescape(fields[sep+2]),
		// Never nil: XML-RPC has no nil, so results always carry arrays.
		Propagation: []string{},
	}
	for _, f := range fields[6:sep] {
		if f != "" {
			m.Propagation = append(m.Propagation, unescape(f))
		}
	}
	if sep+3 < len(fields) {
		m.SuperOptions = unescape(fields[sep+3])
	}
	return m, nil
}

func validMajorMinor(s string) bool {
	major, minor, ok := strings.Cut(s, ":")
	if !ok {
		return false
	}
	_, err1 := strconv.ParseUint(major, 10, 32)
	_, err2 := strconv.ParseUint(minor, 10, 32)
	return err1 == nil && err2 == nil
}

// unescape decodes the kernel's octal escapes (\040 space, \011 tab, \012
// newline, \134 backslash). A backslash not followed by three octal digits
// naming a byte is kept as it is.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] <= '3' && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			// \400 and above do not fit a byte, hence s[i+1] <= '3'.
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
