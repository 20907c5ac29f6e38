package audit

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkDurableWrite compares ways of making one appended record
// durable, on the file system of the test's temp dir (TMPDIR): why the
// log appends and calls fsync rather than fdatasync or writing into
// preallocated space. An append changes the file's size, so fdatasync
// must commit the same metadata fsync does; writing over preallocated
// (fallocate) space converts an unwritten extent, metadata again; only
// space zeroed in advance spares the journal, at the price of a file
// whose end is not its last record. Each op is one 512-byte write and
// one flush, from one goroutine.
func BenchmarkDurableWrite(b *testing.B) {
	const size = 512
	line := make([]byte, size)
	for i := range line {
		line[i] = 'x'
	}
	line[size-1] = '\n'
	open := func(b *testing.B, flags int) *os.File {
		f, err := os.OpenFile(filepath.Join(b.TempDir(), "a.log"), os.O_RDWR|os.O_CREATE|flags, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { f.Close() })
		return f
	}
	appendThen := func(flush func(*os.File) error) func(*testing.B) {
		return func(b *testing.B) {
			f := open(b, os.O_APPEND)
			for b.Loop() {
				if _, err := f.Write(line); err != nil {
					b.Fatal(err)
				}
				if err := flush(f); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	fdatasync := func(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }
	b.Run("append+fsync", appendThen((*os.File).Sync))
	b.Run("append+fdatasync", appendThen(fdatasync))
	overwrite := func(prepare func(*os.File, int64) error) func(*testing.B) {
		return func(b *testing.B) {
			const chunk = 16 << 20 // prepared ahead, untimed, as a log would
			f := open(b, 0)
			var off, ready int64
			for b.Loop() {
				if off+size > ready {
					b.StopTimer()
					if err := prepare(f, ready); err != nil {
						b.Skipf("cannot prepare space here: %v", err)
					}
					if err := f.Sync(); err != nil {
						b.Fatal(err)
					}
					ready += chunk
					b.StartTimer()
				}
				if _, err := f.WriteAt(line, off); err != nil {
					b.Fatal(err)
				}
				if err := fdatasync(f); err != nil {
					b.Fatal(err)
				}
				off += size
			}
		}
	}
	b.Run("fallocated+fdatasync", overwrite(func(f *os.File, at int64) error {
		return unix.Fallocate(int(f.Fd()), 0, at, 16<<20)
	}))
	b.Run("zeroed+fdatasync", overwrite(func(f *os.File, at int64) error {
		_, err := f.WriteAt(make([]byte, 16<<20), at)
		return err
	}))
}
