package door

import (
	"strconv"
	"testing"
	"time"
)

// FuzzParseCursor: a cursor file is read back as the cursor it was
// written from, or refused with an error; never a panic.
func FuzzParseCursor(f *testing.F) {
	f.Add("12 2026-12-07T20:14:45.123456789Z\n")
	f.Add("0 0001-01-01T00:00:00Z")
	f.Add("x")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseCursor(s)
		if err != nil {
			return
		}
		back, err := parseCursor(strconv.FormatUint(c.seq, 10) + " " + c.stamp.UTC().Format(time.RFC3339Nano))
		if err != nil || back.seq != c.seq || !back.stamp.Equal(c.stamp) {
			t.Fatalf("%q read as %+v, written back and read as %+v (%v)", s, c, back, err)
		}
	})
}
