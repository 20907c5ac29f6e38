package broker

import (
	"strings"
	"testing"
)

func TestJobSubjects(t *testing.T) {
	job := strings.Repeat("0f", 16)
	for _, tc := range []struct {
		f    func(string) (string, error)
		want string
	}{
		{JobSubject, "gf.v1.job.web1_example_org"},
		{BellSubject, "gf.v1.bell.web1_example_org"},
		{func(n string) (string, error) { return ResultSubject(job, n) }, "gf.v1.res." + job + ".web1_example_org"},
	} {
		got, err := tc.f("web1.example.org")
		if err != nil || got != tc.want {
			t.Errorf("got %q, %v; want %q", got, err, tc.want)
		}
		if _, err := tc.f("bad_name"); err == nil {
			t.Errorf("%s: a name with _ accepted", tc.want)
		}
	}
	if j, n, err := ResultOf("gf.v1.res." + job + ".web1_example_org"); err != nil || j != job || n != "web1.example.org" {
		t.Errorf("ResultOf: %q %q %v", j, n, err)
	}
	for _, bad := range []string{"", "gf.v1.res.", "gf.v1.res.x.web1", "gf.v1.rpl." + job + ".web1", "gf.v1.res." + job} {
		if _, _, err := ResultOf(bad); err == nil {
			t.Errorf("ResultOf(%q) accepted", bad)
		}
	}
	if _, err := ResultSubject("nothex", "web1"); err == nil {
		t.Error("ResultSubject with a bad job id accepted")
	}
	if s, err := JobRecordSubject(job); err != nil || s != JobRecordPrefix+job {
		t.Errorf("JobRecordSubject: %q %v", s, err)
	}
}

// FuzzResultOf: a result subject is read back into the job and name it
// was made of, or refused; never a panic.
func FuzzResultOf(f *testing.F) {
	f.Add("gf.v1.res." + strings.Repeat("ab", 16) + ".web1_example_org")
	f.Add("gf.v1.res..")
	f.Fuzz(func(t *testing.T, s string) {
		job, name, err := ResultOf(s)
		if err != nil {
			return
		}
		back, err := ResultSubject(job, name)
		if err != nil || !strings.EqualFold(back, s) {
			t.Fatalf("%q read as %q %q, made back %q (%v)", s, job, name, back, err)
		}
	})
}

// FuzzParseRequest: signed bytes read back are the call they were made
// of, byte for byte, or refused.
func FuzzParseRequest(f *testing.F) {
	c := goldenCall
	f.Add(c.SignedBytes())
	f.Add([]byte(callPrefix + "\n\n\n\n\n\n\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseRequest(b)
		if err != nil {
			return
		}
		if got := c.SignedBytes(); string(got) != string(b) {
			t.Fatalf("%q read back as %q", b, got)
		}
	})
}
