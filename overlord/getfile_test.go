package overlord_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/minion"
	"github.com/gofunc/gofunc/overlord"
)

// lyingGetfile is a hostile minion's getfile module: it states a size
// and sends what it likes.
type lyingGetfile struct {
	size    int64         // the size stat states
	send    int           // bytes each read answers with, whatever was asked
	release chan struct{} // if set, reads wait for it
	reads   atomic.Int64
}

func (g *lyingGetfile) Stat(path string) map[string]any {
	return map[string]any{"type": "file", "size": g.size, "sha256": "00"}
}

func (g *lyingGetfile) Read(ctx context.Context, path string, offset, length int64) (map[string]any, error) {
	g.reads.Add(1)
	if g.release != nil {
		select {
		case <-g.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	data := bytes.Repeat([]byte("x"), g.send)
	sum := sha256.Sum256(data)
	return map[string]any{"data": data, "sha256": hex.EncodeToString(sum[:]), "eof": false}, nil
}

// hostileFleet starts n minions whose getfile module is g.
func hostileFleet(t *testing.T, n int, g *lyingGetfile) *fleettest.Fleet {
	return fleettest.Start(t, fleettest.Config{Minions: n, NoBuiltins: true,
		Modules: func(_ string, srv *minion.Server) error { return srv.Register("getfile", g) }})
}

// countingSink counts what it is handed.
type countingSink struct{ n atomic.Int64 }

func (s *countingSink) Write(p []byte) (int, error) { s.n.Add(int64(len(p))); return len(p), nil }
func (s *countingSink) Close(error) error           { return nil }

// A minion that states 10 bytes and answers every read with 4 MiB gets
// none of them written: the overlord asks for no more than was stated
// and refuses a chunk larger than it asked for.
func TestGetFileHoldsMinionToItsStatedSize(t *testing.T) {
	t.Parallel()
	g := &lyingGetfile{size: 10, send: 4 << 20}
	f := hostileFleet(t, 1, g)
	sink := &countingSink{}
	res, err := f.Overlord().Targets("*").GetFileTo(t.Context(), "/etc/hostname", func(string, int64) (overlord.FileSink, error) {
		return sink, nil
	})
	if err == nil || !errors.Is(res["m1.test"].Err, overlord.ErrChecksum) {
		t.Fatalf("GetFileTo = %v; want ErrChecksum", err)
	}
	if n := sink.n.Load(); n > g.size {
		t.Errorf("the sink took %d bytes from a minion that stated %d", n, g.size)
	}
	if got := g.reads.Load(); got != 1 {
		t.Errorf("%d reads, want 1: the first oversized answer ends the transfer", got)
	}
}

// A size over the caller's limit, or over the free space, is refused
// before a byte is asked for, with a *FileSizeError.
func TestGetFileRefusesSizesThatDoNotFit(t *testing.T) {
	t.Parallel()
	g := &lyingGetfile{size: 1 << 50, send: 1}
	f := hostileFleet(t, 1, g)
	dir := t.TempDir()
	for _, tc := range []struct {
		name  string
		files *overlord.Files
		want  error
	}{
		{"over MaxBytes", &overlord.Files{Dir: dir, Name: "f", MaxBytes: 1 << 20}, gofunc.ErrTooLarge},
		{"over the free space", &overlord.Files{Dir: dir, Name: "f"}, overlord.ErrNoSpace},
	} {
		res, err := f.Overlord().Targets("*").GetFileTo(t.Context(), "/var/log/big", tc.files.Open)
		var se *overlord.FileSizeError
		if err == nil || !errors.As(res["m1.test"].Err, &se) || !errors.Is(err, tc.want) || se.Size != g.size {
			t.Errorf("%s: GetFileTo = %v, want a *FileSizeError matching %v", tc.name, err, tc.want)
		}
	}
	// In memory, the bound is the client's MaxResultBytes.
	g.size = 65 << 20
	res, err := f.Overlord().Targets("*").GetFile(t.Context(), "/var/log/big")
	var se *overlord.FileSizeError
	if err == nil || !errors.As(res["m1.test"].Err, &se) || !errors.Is(err, gofunc.ErrTooLarge) || se.Limit != overlord.DefaultMaxResultBytes {
		t.Errorf("GetFile = %v, want a *FileSizeError over MaxResultBytes", err)
	}
	if n := g.reads.Load(); n != 0 {
		t.Errorf("%d reads of a file refused for its size", n)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "m1.test")); len(entries) != 0 {
		t.Errorf("files left behind: %v", entries)
	}
}

// Files counts the files still arriving against the free space: two
// minions each stating 60% of it cannot both be let in.
func TestFilesReservesFreeSpaceAcrossHosts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	g := &lyingGetfile{size: int64(st.Bavail) * int64(st.Bsize) * 6 / 10, send: 0, release: make(chan struct{})}
	f := hostileFleet(t, 2, g)
	files := &overlord.Files{Dir: dir, Name: "f", MinFree: -1}
	var mu sync.Mutex
	opened := 0
	open := func(host string, size int64) (overlord.FileSink, error) {
		s, err := files.Open(host, size)
		mu.Lock()
		defer mu.Unlock()
		if opened++; opened == 2 {
			close(g.release) // both hosts have been judged: let the admitted one go on
		}
		return s, err
	}
	res, _ := f.Overlord().Targets("*").GetFileTo(t.Context(), "/var/log/big", open)
	var noSpace, other int
	for _, r := range res {
		switch {
		case errors.Is(r.Err, overlord.ErrNoSpace):
			noSpace++
		case errors.Is(r.Err, overlord.ErrChecksum): // the admitted one then sends nothing
			other++
		default:
			t.Errorf("%s: %v", r.Host, r.Err)
		}
	}
	if noSpace != 1 || other != 1 {
		t.Errorf("%d refused for space, %d admitted; want one of each", noSpace, other)
	}
	// The reservation ends with the transfer.
	s, err := files.Open("m1.test", g.size)
	if err != nil {
		t.Fatalf("after the transfers, Open = %v; want the space free again", err)
	}
	_ = s.Close(errors.New("test done"))
}
