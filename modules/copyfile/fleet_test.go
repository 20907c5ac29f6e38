package copyfile_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/modules/copyfile"
)

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestOverMutualTLS pushes a file in chunks through a real minion.
func TestOverMutualTLS(t *testing.T) {
	f := fleettest.Start(t, fleettest.Config{})
	sel := f.Overlord().Targets("m1.test")
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "pushed")
	data := bytes.Repeat([]byte{0, 1, 2, 0xff}, 3000)

	res, err := sel.Call(ctx, "copyfile", "open", path,
		map[string]any{"mode": "0600", "size": int64(len(data)), "sha256": hexSum(data), "owner": "nobody"})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := res["m1.test"].Value.(string)
	for off := 0; off < len(data); off += 5000 {
		chunk := data[off:min(off+5000, len(data))]
		if _, err := sel.Call(ctx, "copyfile", "append", id, off, chunk, hexSum(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	res, err = sel.Call(ctx, "copyfile", "commit", id)
	if err != nil {
		t.Fatal(err)
	}
	var c copyfile.CommitResult
	if err := res["m1.test"].Decode(&c); err != nil || !c.Changed || c.SHA256 != hexSum(data) || c.Size != int64(len(data)) {
		t.Fatalf("copyfile.commit = %+v, %v", c, err)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("pushed file differs: %v", err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}

	res, err = sel.Call(ctx, "copyfile", "copyfile", path, data[:10], map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	if err := res["m1.test"].Decode(&c); err != nil || !c.Changed || c.Size != 10 {
		t.Errorf("copyfile.copyfile = %+v, %v", c, err)
	}
	_, err = sel.Call(ctx, "copyfile", "open", "../../etc/shadow")
	if !errors.Is(err, gofunc.ErrBadArgs) {
		t.Errorf("open(../../etc/shadow) = %v, want bad args", err)
	}
	_, err = sel.Call(ctx, "copyfile", "open", path, map[string]any{"size": int64(10) << 30})
	if !errors.Is(err, gofunc.ErrTooLarge) {
		t.Errorf("open(10 GB) = %v, want too large", err)
	}
}
