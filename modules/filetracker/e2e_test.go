package filetracker_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/modules/filetracker"
)

func TestOverMTLS(t *testing.T) {
	f := fleettest.Start(t, fleettest.Config{Subnet: "127.0.47"})
	sel := f.Overlord().Targets("*")
	file := filepath.Join(t.TempDir(), "app.conf")
	if err := os.WriteFile(file, []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		method string
		args   []any
	}{{"track", []any{file}}, {"scan", nil}} {
		if _, err := sel.Call(t.Context(), "filetracker", step.method, step.args...); err != nil {
			t.Fatalf("filetracker.%s: %v", step.method, err)
		}
	}
	if err := os.WriteFile(file, []byte("v2 longer"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := sel.Call(t.Context(), "filetracker", "diff")
	if err != nil {
		t.Fatal(err)
	}
	var ch filetracker.Changes
	if err := res["m1.test"].Decode(&ch); err != nil {
		t.Fatal(err)
	}
	if len(ch.Modified) != 1 || ch.Modified[0].Path != file || ch.Modified[0].After.Size != 9 {
		t.Errorf("filetracker.diff over the wire = %+v", ch)
	}
}
