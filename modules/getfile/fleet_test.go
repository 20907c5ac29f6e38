package getfile_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/modules/getfile"
)

// TestOverMutualTLS fetches a file in chunks through a real minion.
func TestOverMutualTLS(t *testing.T) {
	f := fleettest.Start(t, fleettest.Config{})
	sel := f.Overlord().Targets("m1.test")
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "f")
	data := bytes.Repeat([]byte("\x00binary\xff"), 100000) // 900 kB
	if err := os.WriteFile(path, data, 0o640); err != nil {
		t.Fatal(err)
	}
	res, err := sel.Call(ctx, "getfile", "stat", path)
	if err != nil {
		t.Fatal(err)
	}
	var st getfile.StatResult
	if err := res["m1.test"].Decode(&st); err != nil || st.Size != int64(len(data)) || st.ModeOctal != "0640" || len(st.SHA256) != 64 {
		t.Fatalf("getfile.stat = %+v, %v", st, err)
	}
	var got []byte
	for {
		res, err := sel.Call(ctx, "getfile", "read", path, len(got), 256<<10)
		if err != nil {
			t.Fatal(err)
		}
		var c getfile.Chunk
		if err := res["m1.test"].Decode(&c); err != nil {
			t.Fatal(err)
		}
		got = append(got, c.Data...)
		if c.EOF {
			break
		}
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("fetched %d bytes, differ from the %d written", len(got), len(data))
	}
	_, err = sel.Call(ctx, "getfile", "read", "../../etc/shadow")
	if !errors.Is(err, gofunc.ErrBadArgs) {
		t.Errorf("read(../../etc/shadow) = %v, want bad args", err)
	}
}
