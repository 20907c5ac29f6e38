package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestDurableLog: concurrent appends each return once their line is in
// the file and share fsyncs; after a failed write every append fails.
func TestDurableLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "floor.log")
	d, err := openDurableLog(path)
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, each = 8, 50
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				if err := d.append(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	records, commits := d.counts()
	if records != goroutines*each || commits == 0 || commits > records {
		t.Fatalf("counts = %d records, %d commits; want %d records in 1..%d commits", records, commits, goroutines*each, goroutines*each)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(b, []byte("\n")); n != goroutines*each {
		t.Fatalf("file has %d lines, want %d", n, goroutines*each)
	}
	// A write that fails (the file closed under the log) breaks it.
	if err := d.f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.append(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("append to a closed file = %v, want os.ErrClosed", err)
	}
	if err := d.append(); err == nil {
		t.Fatal("append after a failed write succeeded")
	}
}
