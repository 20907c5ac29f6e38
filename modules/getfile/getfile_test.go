package getfile

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/modtest"
)

func TestDoc(t *testing.T) { modtest.CheckDoc(t, &Module{}) }

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func setup(t *testing.T) (*Module, string, []byte) {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("gofunc!"), 1000) // 7000 bytes
	if err := os.WriteFile(filepath.Join(dir, "f"), data, 0o640); err != nil {
		t.Fatal(err)
	}
	return &Module{AllowDirs: []string{dir}, MaxChunkSize: 1000}, dir, data
}

func TestStat(t *testing.T) {
	m, dir, data := setup(t)
	mtime := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	os.Chtimes(filepath.Join(dir, "f"), mtime, mtime)
	st, err := m.Stat(t.Context(), filepath.Join(dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	want := StatResult{Path: filepath.Join(dir, "f"), Type: "file", Size: 7000, Mode: 0o640, ModeOctal: "0640",
		SHA256: hexSum(data), MTime: mtime, UID: 0, GID: 0, Owner: "root", Group: "root"}
	if st != want {
		t.Fatalf("Stat =\n%+v, want\n%+v", st, want)
	}
	st, err = m.Stat(t.Context(), dir)
	if err != nil || st.Type != "dir" || st.SHA256 != "" {
		t.Fatalf("Stat(dir) = %+v, %v", st, err)
	}
}

func TestReadWholeFileInChunks(t *testing.T) {
	m, dir, data := setup(t)
	var got []byte
	for i := 0; ; i++ {
		c, err := m.Read(t.Context(), filepath.Join(dir, "f"), int64(len(got)), 1<<30) // capped to 1000
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Data) > 1000 || c.SHA256 != hexSum(c.Data) || c.Size != 7000 {
			t.Fatalf("chunk %d: %d bytes, sha %s, size %d", i, len(c.Data), c.SHA256, c.Size)
		}
		got = append(got, c.Data...)
		if c.EOF {
			break
		}
		if i > 10 {
			t.Fatal("no eof")
		}
	}
	if !bytes.Equal(got, data) {
		t.Fatal("reassembled file differs")
	}
	c, err := m.Read(t.Context(), filepath.Join(dir, "f"), 6990, 5)
	if err != nil || string(c.Data) != "nc!go" || c.EOF {
		t.Fatalf("Read(6990, 5) = %+v, %v", c, err)
	}
	c, err = m.Read(t.Context(), filepath.Join(dir, "f"), 1<<40, 0)
	if err != nil || len(c.Data) != 0 || !c.EOF {
		t.Fatalf("Read past the end = %+v, %v", c, err)
	}
}

func TestHostileArguments(t *testing.T) {
	m, dir, _ := setup(t)
	ctx := t.Context()
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o600)
	os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "link"))
	syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600)
	for _, tc := range []struct {
		path         string
		offset, size int64
		code         gofunc.Code
	}{
		{"../../etc/shadow", 0, 0, gofunc.CodeBadArgs},
		{dir + "/f\x00", 0, 0, gofunc.CodeBadArgs},
		{"/etc/shadow", 0, 0, gofunc.CodeDenied},
		{dir + "/../../etc/shadow", 0, 0, gofunc.CodeDenied},
		{dir + "/link", 0, 0, gofunc.CodeDenied},
		{dir + "/missing", 0, 0, gofunc.CodeNotFound},
		{dir + "/f", -1, 0, gofunc.CodeBadArgs},
		{dir + "/f", 0, -10 << 30, gofunc.CodeBadArgs},
		{dir + "/fifo", 0, 0, gofunc.CodeBadArgs},
		{dir, 0, 0, gofunc.CodeBadArgs},
	} {
		_, err := m.Read(ctx, tc.path, tc.offset, tc.size)
		modtest.WantCode(t, err, tc.code)
	}
	for path, code := range map[string]gofunc.Code{
		"../../etc/shadow": gofunc.CodeBadArgs,
		dir + "/link":      gofunc.CodeDenied,
		"/etc/passwd":      gofunc.CodeDenied,
	} {
		_, err := m.Stat(ctx, path)
		modtest.WantCode(t, err, code)
	}
	// A 10 GB length is cut to the cap rather than allocated.
	c, err := m.Read(ctx, dir+"/f", 0, 10<<30)
	if err != nil || len(c.Data) != 1000 {
		t.Fatalf("Read(10 GB) = %d bytes, %v", len(c.Data), err)
	}
}

func TestUnrestricted(t *testing.T) {
	m := &Module{}
	st, err := m.Stat(t.Context(), "/etc/hostname")
	if err != nil || st.Type != "file" || len(st.SHA256) != 64 {
		t.Fatalf("Stat = %+v, %v", st, err)
	}
	bad := &Module{AllowDirs: []string{"relative"}}
	_, err = bad.Read(t.Context(), "/etc/hostname", 0, 0)
	modtest.WantCode(t, err, gofunc.CodeUnavailable)
}

func ExampleModule_Read() {
	dir, _ := os.MkdirTemp("", "getfile-example")
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "greeting"), []byte("hello, fleet\n"), 0o644)
	m := &Module{AllowDirs: []string{dir}}
	c, err := m.Read(context.Background(), filepath.Join(dir, "greeting"), 7, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%q eof=%v\n", c.Data, c.EOF)
	// Output: "fleet\n" eof=true
}

// Func's getfile.chunkslen and getchunk answer as Func did: 60000-byte
// chunks, base64 text and the SHA-1 of that text; the pieces put
// together are the file.
func TestFuncChunks(t *testing.T) {
	m, dir, _ := setup(t)
	data := bytes.Repeat([]byte("0123456789"), 13000) // 130000 bytes: 3 chunks
	path := filepath.Join(dir, "big")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := m.Chunkslen(t.Context(), path)
	if err != nil || n != 3 {
		t.Fatalf("Chunkslen = %d, %v; want 3", n, err)
	}
	var got []byte
	for i := range n + 1 {
		pair, err := m.Getchunk(t.Context(), i, path)
		if err != nil || len(pair) != 2 {
			t.Fatalf("Getchunk(%d) = %q, %v", i, pair, err)
		}
		if sum := sha1.Sum([]byte(pair[1])); hex.EncodeToString(sum[:]) != pair[0] {
			t.Errorf("Getchunk(%d) checksum %s is not the SHA-1 of the text", i, pair[0])
		}
		chunk, err := base64.StdEncoding.DecodeString(pair[1])
		if err != nil {
			t.Fatal(err)
		}
		if i == n && len(chunk) != 0 {
			t.Errorf("Getchunk past the end = %d bytes", len(chunk))
		}
		got = append(got, chunk...)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("the chunks make %d bytes, not the file's %d", len(got), len(data))
	}
	if n, err := m.Chunkslen(t.Context(), filepath.Join(dir, "f")); err != nil || n != 1 {
		t.Errorf("Chunkslen(7000 bytes) = %d, %v; want 1", n, err)
	}
	_, err = m.Getchunk(t.Context(), -1, path)
	modtest.WantCode(t, err, gofunc.CodeBadArgs)
	_, err = m.Getchunk(t.Context(), 0, "/etc/hostname")
	modtest.WantCode(t, err, gofunc.CodeDenied)
	_, err = m.Chunkslen(t.Context(), filepath.Join(dir, "missing"))
	modtest.WantCode(t, err, gofunc.CodeNotFound)
}
