package audit

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// logOf writes n records and returns the log's path and what Append
// returned for each.
func logOf(t *testing.T, n int) (string, []Record) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(p, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var recs []Record
	for i := range n {
		r, err := l.Append(Record{Kind: KindCallStart, Method: "test.ping", CallID: strings.Repeat("c", i+1)})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	return p, recs
}

// rechain rewrites the log at p the way someone who can write it would
// hide what they did: record drop is removed (0: none), the records
// after keep is are cut off (0: none), and the chain is rebuilt so that
// Verify passes.
func rechain(t *testing.T, p string, drop, keep uint64) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	var recs []Record
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, MaxRecordBytes+1)
	for sc.Scan() {
		r, err := ParseLine(sc.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if r.Seq != drop && (keep == 0 || r.Seq <= keep) {
			recs = append(recs, r)
		}
	}
	f.Close()
	var out []byte
	prev := Genesis
	for i, r := range recs {
		r.Seq, r.Prev = uint64(i+1), prev
		line, hash, err := encode(r)
		if err != nil {
			t.Fatal(err)
		}
		out, prev = append(out, line...), hash
	}
	if err := os.WriteFile(p, out, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(p); err != nil {
		t.Fatalf("the rebuilt chain does not verify: %v", err)
	}
}

func heads(recs ...Record) []Checkpoint {
	var out []Checkpoint
	for _, r := range recs {
		out = append(out, Checkpoint{Seq: r.Seq, Hash: r.Hash})
	}
	return out
}

func TestVerifyWitnessedFindsARebuiltChain(t *testing.T) {
	t.Run("honest", func(t *testing.T) {
		p, recs := logOf(t, 6)
		ws, err := VerifyWitnessed(heads(recs[1], recs[4]), p)
		if err != nil || ws.Checked != 2 || ws.Records != 6 {
			t.Errorf("VerifyWitnessed of an honest log = %+v, %v", ws, err)
		}
	})
	t.Run("record dropped and chain rebuilt", func(t *testing.T) {
		p, recs := logOf(t, 6)
		rechain(t, p, 3, 0)
		_, err := VerifyWitnessed(heads(recs[1], recs[4]), p)
		var ve *VerifyError
		if !errors.Is(err, ErrWitness) || !errors.Is(err, ErrTampered) || !errors.As(err, &ve) || ve.Seq != 5 {
			t.Errorf("VerifyWitnessed after record 3 was dropped = %v, want a disagreement at seq 5", err)
		}
		// A witness before the change still agrees: the change is after it.
		if _, err := VerifyWitnessed(heads(recs[1]), p); err != nil {
			t.Errorf("witness of record 2 = %v", err)
		}
	})
	t.Run("records cut off the end", func(t *testing.T) {
		p, recs := logOf(t, 6)
		rechain(t, p, 0, 4)
		_, err := VerifyWitnessed(heads(recs[5]), p)
		if !errors.Is(err, ErrWitness) || !strings.Contains(err.Error(), "cut off the end") {
			t.Errorf("VerifyWitnessed after the last two records were cut = %v", err)
		}
	})
	t.Run("witnesses disagree", func(t *testing.T) {
		p, recs := logOf(t, 3)
		other := recs[1]
		other.Hash = recs[2].Hash
		if _, err := VerifyWitnessed(heads(recs[1], other), p); !errors.Is(err, ErrWitness) {
			t.Errorf("two witnesses for seq 2 with different hashes = %v", err)
		}
	})
	t.Run("tampering the chain shows is still reported as such", func(t *testing.T) {
		p, recs := logOf(t, 3)
		data, _ := os.ReadFile(p)
		os.WriteFile(p, []byte(strings.Replace(string(data), "test.ping", "test.pong", 1)), 0o600)
		if _, err := VerifyWitnessed(heads(recs[2]), p); !errors.Is(err, ErrTampered) || errors.Is(err, ErrWitness) {
			t.Errorf("VerifyWitnessed of an edited record = %v, want plain tampering", err)
		}
	})
}

func TestWitnessesReadsOverlordLogs(t *testing.T) {
	minion, recs := logOf(t, 4)
	p := filepath.Join(t.TempDir(), "overlord.log")
	l, err := Open(p, Config{})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range recs[:3] {
		_, err := l.Append(Record{Kind: KindOverlordHeads, CallID: strings.Repeat("o", i+1),
			Details: map[string]string{"web1": Checkpoint{Seq: r.Seq, Hash: r.Hash}.String(), "web2": "7:" + strings.Repeat("a", 64)}})
		if err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	got, err := Witnesses("web1", p)
	if err != nil || len(got) != 3 || got[2].Checkpoint != heads(recs[2])[0] || got[0].CallID != "o" || got[1].Host != "web1" {
		t.Fatalf("Witnesses(web1) = %+v, %v", got, err)
	}
	var cps []Checkpoint
	for _, w := range got {
		cps = append(cps, w.Checkpoint)
	}
	if ws, err := VerifyWitnessed(cps, minion); err != nil || ws.Checked != 3 {
		t.Errorf("VerifyWitnessed = %+v, %v", ws, err)
	}
	if got, err := Witnesses("web3", p); err != nil || len(got) != 0 {
		t.Errorf("Witnesses(web3) = %+v, %v", got, err)
	}
}

func TestParseCheckpoint(t *testing.T) {
	hash := strings.Repeat("0f", 32)
	good, err := ParseCheckpoint("42:" + hash)
	if err != nil || good != (Checkpoint{Seq: 42, Hash: hash}) || good.String() != "42:"+hash {
		t.Errorf("ParseCheckpoint = %+v, %v", good, err)
	}
	for _, bad := range []string{"", "42", ":" + hash, "0:" + hash, "-1:" + hash, "+4:" + hash, "42:" + strings.ToUpper(hash),
		"42:" + hash[:63], "42:" + hash + "0", "4 2:" + hash, "99999999999999999999999:" + hash} {
		if _, err := ParseCheckpoint(bad); err == nil {
			t.Errorf("ParseCheckpoint(%q) succeeded", bad)
		}
	}
}

func FuzzParseCheckpoint(f *testing.F) {
	f.Add("42:" + strings.Repeat("0f", 32))
	f.Add("0:")
	f.Fuzz(func(t *testing.T, s string) {
		cp, err := ParseCheckpoint(s)
		if err != nil {
			return
		}
		if cp.String() != s {
			t.Fatalf("ParseCheckpoint(%q) = %+v, which formats as %q", s, cp, cp.String())
		}
	})
}
