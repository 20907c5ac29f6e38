package audit_test

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
)

func ExampleLog_Append() {
	dir, err := os.MkdirTemp("", "audit-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	clock := func() time.Time { return time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC) }
	trail, err := audit.Open(filepath.Join(dir, "audit.log"), audit.Config{Clock: clock})
	if err != nil {
		log.Fatal(err)
	}
	defer trail.Close()

	// Written, and synced, before the method runs.
	args, digest := audit.SummarizeArgs([]any{"alice", "hunter2"},
		[]gofunc.ArgDoc{{Name: "user"}, {Name: "password", Secret: true}})
	start, err := trail.Append(audit.Record{
		Kind: audit.KindCallStart, CallID: "c1", Caller: "admin", Method: "users.set_password",
		Args: args, ArgsDigest: digest,
	})
	if err != nil {
		log.Fatal(err) // the minion refuses the call instead
	}
	end, err := trail.Append(audit.Record{
		Kind: audit.KindCallEnd, CallID: "c1", Caller: "admin", Method: "users.set_password",
		Outcome: audit.OutcomeOK, Duration: 42 * time.Millisecond,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(start.Seq, start.Prev == audit.Genesis, start.Args)
	fmt.Println(end.Seq, end.Prev == start.Hash)
	fmt.Println(end)
	// Output:
	// 1 true [alice [redacted]]
	// 2 true
	// #2 2025-01-02T03:04:05Z call.end call="c1" caller="admin" method="users.set_password" outcome="ok" duration=42ms
}

func ExampleVerify() {
	dir, err := os.MkdirTemp("", "audit-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "audit.log")
	trail, err := audit.Open(path, audit.Config{})
	if err != nil {
		log.Fatal(err)
	}
	for _, who := range []string{"alice", "bob", "carol"} {
		if _, err := trail.Append(audit.Record{Kind: "ca.sign", Details: map[string]string{"name": who}}); err != nil {
			log.Fatal(err)
		}
	}
	trail.Close()

	sum, err := audit.Verify(path)
	fmt.Printf("%d records, seq %d to %d, err %v\n", sum.Records, sum.FirstSeq, sum.LastSeq, err)

	// Someone edits the second record.
	data, _ := os.ReadFile(path)
	os.WriteFile(path, bytes.Replace(data, []byte(`"bob"`), []byte(`"eve"`), 1), 0o600)

	_, err = audit.Verify(path)
	var ve *audit.VerifyError
	if errors.As(err, &ve) {
		fmt.Println(errors.Is(err, audit.ErrTampered), filepath.Base(ve.File), ve.Line, ve.Seq, ve.Reason)
	}
	// Output:
	// 3 records, seq 1 to 3, err <nil>
	// true audit.log 2 2 hash mismatch: the record was edited
}
