package mountinfo

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gofunc/gofunc/internal/modtest"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestParseMountInfoGolden(t *testing.T) {
	in, err := os.ReadFile("testdata/mountinfo.txt")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(strings.NewReader(string(in)))
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.MarshalIndent(got, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	const golden = "testdata/mountinfo.golden.json"
	if *update {
		if err := os.WriteFile(golden, append(out, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(strings.TrimSpace(string(want)), string(out)); diff != "" {
		t.Errorf("Parse(testdata/mountinfo.txt) differs from %s (-want +got):\n%s", golden, diff)
	}
	// The points the golden file is there for, spelled out.
	byPoint := map[string]Mount{}
	for _, m := range got {
		byPoint[m.Mountpoint] = m
	}
	if m := byPoint["/srv/my docs"]; m.Root != "/home/user/My Docs" || m.Device != "/dev/sda1" {
		t.Errorf("escaped spaces: %+v", m)
	}
	if _, ok := byPoint["/mnt/tab\tand\nnewline\\back"]; !ok {
		t.Errorf("tab, newline and backslash escapes not decoded: %q", keys(byPoint))
	}
	if m := byPoint["/mnt/bad\\777escape\\x"]; m.Fstype != "fuse.sshfs" {
		t.Errorf("invalid escapes must stay literal: %q", keys(byPoint))
	}
	if m := byPoint["/mnt/parent"]; !cmp.Equal(m.Propagation, []string{"master:1", "shared:7"}) || m.SuperOptions != "rw,errors=continue" {
		t.Errorf("optional fields: %+v", m)
	}
	if m := byPoint["/mnt/old"]; m.SuperOptions != "" || m.Device != "/dev/sdb1" {
		t.Errorf("entry without super options: %+v", m)
	}
}

func keys(m map[string]Mount) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func TestParseMountInfoReal(t *testing.T) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Skipf("no /proc/self/mountinfo: %v", err)
	}
	defer f.Close()
	mounts, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	var root, proc bool
	for _, m := range mounts {
		root = root || m.Mountpoint == "/"
		proc = proc || (m.Mountpoint == "/proc" && m.Fstype == "proc")
	}
	if !root || !proc {
		t.Errorf("real mount table lacks / or /proc: %+v", mounts)
	}
}

func TestParseMountInfoErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     error
	}{
		{"no separator", "22 27 0:21 / /proc rw,relatime proc proc rw\n", ErrMalformed},
		{"short", "22 27 0:21 / /proc\n", ErrMalformed},
		{"bad id", "x 27 0:21 / /proc rw - proc proc rw\n", ErrMalformed},
		{"negative parent", "1 -2 0:21 / /proc rw - proc proc rw\n", ErrMalformed},
		{"bad major:minor", "1 2 0;21 / /proc rw - proc proc rw\n", ErrMalformed},
		{"too many after separator", "1 2 0:21 / /proc rw - proc proc rw extra\n", ErrMalformed},
		{"nothing after separator", "1 2 0:21 / /proc rw -\n", ErrMalformed},
		{"line too long", "1 2 0:21 / /" + strings.Repeat("a", MaxLineLen) + " rw - proc proc rw\n", bufio.ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader("22 27 0:21 / /proc rw - proc proc rw\n" + tt.in))
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, tt.want) || pe.Line != 2 {
				t.Errorf("Parse = %v, want a *ParseError on line 2 wrapping %v", err, tt.want)
			}
		})
	}
}

func TestParseMountInfoTooMany(t *testing.T) {
	var b strings.Builder
	for i := range MaxMounts + 1 {
		fmt.Fprintf(&b, "%d 1 0:1 / /m%d rw - tmpfs tmpfs rw\n", i, i)
	}
	if _, err := Parse(strings.NewReader(b.String())); !errors.Is(err, ErrTooMany) {
		t.Errorf("Parse(%d lines) = %v, want ErrTooMany", MaxMounts+1, err)
	}
}

// format writes m back in mountinfo syntax, escaping as the kernel does.
func format(m Mount) string {
	fields := []string{fmt.Sprint(m.ID), fmt.Sprint(m.ParentID), m.MajorMinor,
		escape(m.Root), escape(m.Mountpoint), escape(m.Options)}
	for _, p := range m.Propagation {
		fields = append(fields, escape(p))
	}
	fields = append(fields, "-", escape(m.Fstype), escape(m.Device))
	if m.SuperOptions != "" {
		fields = append(fields, escape(m.SuperOptions))
	}
	return strings.Join(fields, " ")
}

// escape is the inverse of unescape for the bytes the kernel escapes.
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\n', '\\', '\r': // \r too: a line's trailing \r is dropped
			fmt.Fprintf(&b, `\%03o`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func FuzzParseMountInfo(f *testing.F) {
	modtest.AddSeeds(f, "testdata/mountinfo.txt", "/proc/self/mountinfo")
	f.Add("1 2 3:4 / / rw - - - -\n")
	f.Add("1 2 3:4 \\ \\0 \\00 - a b\n")
	f.Fuzz(func(t *testing.T, in string) {
		mounts, err := Parse(strings.NewReader(in))
		modtest.WantErrorAs[*ParseError](t, err)
		// Round trip: what was parsed, formatted the kernel's way, parses
		// to the same entries (unless escaping made a line too long).
		modtest.RoundTrip(t, mounts, Parse, func(m Mount) (string, bool) {
			line := format(m)
			return line, len(line) < MaxLineLen
		})
	})
}

func BenchmarkParseMountInfo(b *testing.B) {
	in, err := os.ReadFile("testdata/mountinfo.txt")
	if err != nil {
		b.Fatal(err)
	}
	s := strings.Repeat(string(in), 100)
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		if _, err := Parse(strings.NewReader(s)); err != nil {
			b.Fatal(err)
		}
	}
}
