package hashchain

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSealThenCheck(t *testing.T) {
	body := []byte(`{"seq":1,"x":"a;b","hash":""}`)
	line, hash, err := Seal(body)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	if hash != hex.EncodeToString(sum[:]) || string(line) != `{"seq":1,"x":"a;b","hash":"`+hash+"\"}\n" {
		t.Fatalf("Seal = %q, %s", line, hash)
	}
	got, err := Check(bytes.TrimSuffix(line, []byte("\n")))
	if err != nil || got != hash {
		t.Fatalf("Check = %s, %v", got, err)
	}
	edited := bytes.Replace(line, []byte(`"a;b"`), []byte(`"a;c"`), 1)
	if _, err := Check(bytes.TrimSuffix(edited, []byte("\n"))); !errors.Is(err, ErrMismatch) {
		t.Errorf("edited line: %v", err)
	}
	bare := bytes.TrimSuffix(line, []byte("\n"))
	upper := bytes.ToUpper(bare[len(bare)-66 : len(bare)-2])
	bad := append(append(append([]byte{}, bare[:len(bare)-66]...), upper...), `"}`...)
	if _, err := Check(bad); err == nil || err.Error() != "malformed hash field" {
		t.Errorf("upper-case hash: %v", err)
	}
	for _, b := range []string{"", "{}", `{"hash":""}`, `{"hash":"` + strings.Repeat("0", 64) + `"`} {
		if _, err := Check([]byte(b)); err == nil || errors.Is(err, ErrMismatch) {
			t.Errorf("Check(%q) passed", b)
		}
	}
	if _, _, err := Seal([]byte(`{"hash":"","x":1}`)); !errors.Is(err, ErrUnsealed) {
		t.Errorf("Seal of a body not ending in hash: %v", err)
	}
}

// SealAppend seals a body at the end of a buffer in place: the bytes
// before it stay, and the result is what Seal gives for the body alone.
func TestSealAppend(t *testing.T) {
	body := `{"seq":2,"hash":""}`
	want, wantHash, err := Seal([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	b := append(make([]byte, 0, 200), "prefix\n"+body...)
	got, hash, err := SealAppend(b, len("prefix\n"))
	if err != nil || hash != wantHash || string(got) != "prefix\n"+string(want) || &got[0] != &b[0] {
		t.Errorf("SealAppend = %q, %s, %v; want the prefix and %q, in place", got, hash, err, want)
	}
	b = []byte(`prefix{"hash":"","x":1}`)
	if got, _, err := SealAppend(b, 6); !errors.Is(err, ErrUnsealed) || string(got) != string(b) {
		t.Errorf("SealAppend of a body not ending in hash = %q, %v; want it unchanged and ErrUnsealed", got, err)
	}
}

func TestLineReader(t *testing.T) {
	lr := NewLineReader(strings.NewReader("ab\ncde\n"+strings.Repeat("x", 20)+"\ntail"), 10)
	want := []struct {
		line     string
		off      int64
		complete bool
	}{{"ab", 0, true}, {"cde", 3, true}}
	for _, w := range want {
		line, off, complete, err := lr.Next()
		if err != nil || string(line) != w.line || off != w.off || complete != w.complete {
			t.Fatalf("Next = %q %d %v %v, want %+v", line, off, complete, err, w)
		}
	}
	if _, off, _, err := lr.Next(); !errors.Is(err, ErrLineTooLong) || off != 7 || lr.Lines() != 3 {
		t.Fatalf("long line: off %d, err %v, lines %d", off, err, lr.Lines())
	}
	lr = NewLineReader(strings.NewReader("a\ntail"), 10)
	lr.Next()
	if line, off, complete, err := lr.Next(); string(line) != "tail" || off != 2 || complete || err != nil {
		t.Fatalf("torn tail = %q %d %v %v", line, off, complete, err)
	}
	if _, _, _, err := lr.Next(); err != io.EOF {
		t.Fatalf("end = %v", err)
	}
}

func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	f, err := Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(path); !errors.Is(err, ErrLocked) {
		t.Errorf("second Lock = %v, want ErrLocked", err)
	}
	f.Close()
	g, err := Lock(path)
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	g.Close()
	link := filepath.Join(t.TempDir(), "link")
	os.Symlink(path, link)
	if _, err := Lock(link); err == nil {
		t.Error("Lock followed a symbolic link")
	}
}

// FuzzCheck: Check never panics, and a line it accepts reseals to itself.
func FuzzCheck(f *testing.F) {
	line, _, _ := Seal([]byte(`{"a":1,"hash":""}`))
	f.Add(bytes.TrimSuffix(line, []byte("\n")))
	f.Add([]byte(`{"hash":"` + strings.Repeat("a", 64) + `"}`))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, line []byte) {
		hash, err := Check(line)
		if err != nil {
			return
		}
		body := append(append([]byte{}, line[:len(line)-HexLen-2]...), `"}`...)
		again, h2, err := Seal(body)
		if err != nil || h2 != hash || !bytes.Equal(again[:len(again)-1], line) {
			t.Fatalf("accepted %q but reseal gives %q, %v", line, again, err)
		}
	})
}
