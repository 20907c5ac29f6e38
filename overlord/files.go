package overlord

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/gofunc/gofunc"
)

// ErrNoSpace: a fetched file would not fit in the free space of its
// destination (see Files).
var ErrNoSpace = errors.New("overlord: not enough free space")

// FileSizeError is a host's file refused for its size, before any of
// it was written: larger than the caller's limit (Err is a
// gofunc.CodeTooLarge fault, so errors.Is(err, gofunc.ErrTooLarge)) or
// than the free space left (Err is ErrNoSpace).
type FileSizeError struct {
	Size  int64 // the size the minion stated for the file
	Limit int64 // the bound it broke, in bytes
	Err   error
}

func (e *FileSizeError) Error() string {
	if errors.Is(e.Err, ErrNoSpace) {
		return fmt.Sprintf("file of %d bytes, more than the free space: %d bytes", e.Size, e.Limit)
	}
	return e.Err.Error()
}

// Unwrap returns the gofunc.CodeTooLarge fault or ErrNoSpace.
func (e *FileSizeError) Unwrap() error { return e.Err }

// tooLarge is the FileSizeError of a file over a limit of the caller's.
func tooLarge(size, limit int64) *FileSizeError {
	return &FileSizeError{Size: size, Limit: limit,
		Err: gofunc.Errorf(gofunc.CodeTooLarge, "file of %d bytes, over the limit of %d bytes", size, limit)}
}

// DefaultMinFree is the free space Files leaves on its file system
// unless told otherwise.
const DefaultMinFree = 64 << 20

// Files stores the files GetFileTo fetches on disk, as Dir/HOST/Name:
// each written to a temporary file (mode 0600) next to its destination
// and renamed into place once its SHA-256 matched. Pass its Open to
// GetFileTo. It is safe for concurrent use, as GetFileTo needs.
//
// A minion states a file's size before sending it, and GetFileTo holds
// it to that size; Open refuses, before a byte is written, a file over
// MaxBytes or one that would leave less than MinFree on Dir's file
// system, counting the files still arriving. So no minion, however
// hostile, makes Files fill the disk or write more than the caller
// allows.
type Files struct {
	// Dir receives one directory per host. Required.
	Dir string
	// Name is the file's name in each host's directory. Required.
	Name string
	// MaxBytes bounds each host's file; zero means no bound but the
	// free space.
	MaxBytes int64
	// MinFree is left free on Dir's file system; zero means
	// DefaultMinFree, negative means none.
	MinFree int64

	mu       sync.Mutex
	reserved int64 // sizes of the files still arriving
}

// Path is where host's copy is stored.
func (f *Files) Path(host string) string { return filepath.Join(f.Dir, host, f.Name) }

// Open reserves room for host's file of size bytes and returns the sink
// it is written to. Errors are *FileSizeError values when the size is
// refused.
func (f *Files) Open(host string, size int64) (FileSink, error) {
	if f.Dir == "" || !oneElement(f.Name) {
		return nil, fmt.Errorf("overlord: Files needs a directory and a plain file name, got %q and %q", f.Dir, f.Name)
	}
	if !oneElement(host) || strings.HasPrefix(host, ".") {
		return nil, fmt.Errorf("overlord: host name %q cannot name a directory", host)
	}
	if f.MaxBytes > 0 && size > f.MaxBytes {
		return nil, tooLarge(size, f.MaxBytes)
	}
	dest := f.Path(host)
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return nil, err
	}
	if err := f.reserve(filepath.Dir(dest), size); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dest), "."+f.Name+".*.part") // mode 0600
	if err != nil {
		f.release(size)
		return nil, err
	}
	return &fileSink{f: tmp, dest: dest, done: func() { f.release(size) }}, nil
}

// reserve counts size against the free space of dir's file system.
func (f *Files) reserve(dir string, size int64) error {
	minFree := f.MinFree
	switch {
	case minFree == 0:
		minFree = DefaultMinFree
	case minFree < 0:
		minFree = 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	free, known, err := freeSpace(dir)
	if err != nil {
		return fmt.Errorf("overlord: free space of %s: %w", dir, err)
	}
	if known {
		if room := free - minFree - f.reserved; size > room {
			return &FileSizeError{Size: size, Limit: max(room, 0), Err: ErrNoSpace}
		}
	}
	f.reserved += size
	return nil
}

func (f *Files) release(size int64) {
	f.mu.Lock()
	f.reserved -= size
	f.mu.Unlock()
}

// oneElement reports whether name is a single, ordinary path element.
func oneElement(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, `/\`+"\x00")
}

// fileSink writes a fetched file to a temporary file next to its
// destination and renames it into place when the transfer succeeded.
type fileSink struct {
	f    *os.File
	dest string
	done func() // releases the reservation
}

func (s *fileSink) Write(p []byte) (int, error) { return s.f.Write(p) }

// Close keeps the file (synced, then renamed over dest) when transfer
// is nil, and removes it otherwise.
func (s *fileSink) Close(transfer error) error {
	defer s.done()
	err := transfer
	if err == nil {
		err = s.f.Sync()
	}
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(s.f.Name(), s.dest)
	}
	if err != nil {
		_ = os.Remove(s.f.Name())
		if transfer != nil {
			return nil // the transfer's error is the host's
		}
	}
	return err
}
