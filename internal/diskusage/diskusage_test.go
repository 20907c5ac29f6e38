package diskusage

import "testing"

func TestUsageReal(t *testing.T) {
	t.Parallel()
	usages, err := Table{}.Usage(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	var root *Usage
	for i, u := range usages {
		if pseudoFstypes[u.Fstype] || u.Total <= 0 {
			t.Errorf("pseudo or empty filesystem reported by default: %+v", u)
		}
		if u.Used < 0 || u.Free < 0 || u.Free > u.Total || u.UsedPercent < 0 || u.UsedPercent > 100 {
			t.Errorf("inconsistent usage: %+v", u)
		}
		if u.Mountpoint == "/" {
			root = &usages[i]
		}
	}
	if root == nil {
		t.Fatalf("Usage() has no / : %+v", usages)
	}
	all, err := Table{IncludePseudo: true}.Usage(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if !hasFstype(all, "proc") {
		t.Errorf("IncludePseudo: no proc in %+v", all)
	}
	inv, err := Table{}.Inventory(t.Context())
	if err != nil || len(inv) != len(usages) {
		t.Errorf("Inventory() = %d filesystems, %v; Usage had %d", len(inv), err, len(usages))
	}
}

func TestUsageOfPath(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	usages, err := Table{}.Usage(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(usages) != 1 || !within(dir, usages[0].Mountpoint) || usages[0].Total <= 0 {
		t.Errorf("Usage(%s) = %+v, want the one filesystem holding it", dir, usages)
	}
}

func hasFstype(us []Usage, fstype string) bool {
	for _, u := range us {
		if u.Fstype == fstype {
			return true
		}
	}
	return false
}
