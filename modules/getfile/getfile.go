// Package getfile is the "getfile" module: it reads files on the minion,
// in bounded chunks, each with its SHA-256.
//
//	st := getfile.stat(path)              →  {size, mode, sha256, mtime, ...}
//	c  := getfile.read(path, 0, 4194304)  →  {data, sha256, eof, size}
//
// A caller fetches a large file by reading until eof and compares the
// SHA-256 of the whole with stat's. When AllowDirs is set, the path is
// resolved through symbolic links and must land inside one of them.
// Only regular files are read (never a FIFO or a device).
package getfile

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/pathguard"
)

// DefaultMaxChunkSize bounds one read when Module.MaxChunkSize is zero.
const DefaultMaxChunkSize = 4 << 20 // 4 MiB

// Module is the getfile module. Its exported fields are its
// configuration, read at the first call. Use it as a pointer; it is safe
// for concurrent use.
type Module struct {
	// AllowDirs, when not empty, limits reads to files below these
	// directories (absolute paths). Empty means any path: restrict it on
	// any minion whose callers are not fully trusted.
	AllowDirs []string
	// MaxChunkSize caps the length of one read; zero means
	// DefaultMaxChunkSize (4 MiB).
	MaxChunkSize int64

	once     sync.Once
	guard    *pathguard.Guard
	maxChunk int64
	cfgErr   error
}

// StatResult describes a file.
type StatResult struct {
	// Path is the path resolved through symbolic links.
	Path string `xmlrpc:"path"`
	// Type is "file", "dir", "fifo", "socket", "device" or "chardevice".
	Type string `xmlrpc:"type"`
	Size int64  `xmlrpc:"size"` // bytes
	// Mode is the permission bits as an int (0644 is 420), setuid,
	// setgid and sticky included; ModeOctal is the same as "0644".
	Mode      int    `xmlrpc:"mode"`
	ModeOctal string `xmlrpc:"mode_octal"` // Mode in octal: "0644"
	// SHA256 is the content's SHA-256, hex, for regular files only.
	SHA256 string    `xmlrpc:"sha256"`
	MTime  time.Time `xmlrpc:"mtime"` // last modification, UTC
	UID    int       `xmlrpc:"uid"`   // owner's user id
	GID    int       `xmlrpc:"gid"`   // group id
	// Owner and Group are the names of UID and GID, empty when unknown.
	Owner string `xmlrpc:"owner"`
	Group string `xmlrpc:"group"` // name of GID
}

// Chunk is one piece of a file.
type Chunk struct {
	Data []byte `xmlrpc:"data"` // the bytes read (base64 on the wire)
	// SHA256 is the SHA-256 of Data, hex.
	SHA256 string `xmlrpc:"sha256"`
	// EOF reports that Data reaches the end of the file.
	EOF bool `xmlrpc:"eof"`
	// Size is the file's size when it was read.
	Size int64 `xmlrpc:"size"`
}

func (m *Module) config() (*pathguard.Guard, int64, error) {
	m.once.Do(func() {
		g, err := pathguard.New(m.AllowDirs)
		if err != nil {
			m.cfgErr = gofunc.Errorf(gofunc.CodeUnavailable, "getfile is misconfigured: %v", err)
			return
		}
		m.guard = g
		m.maxChunk = m.MaxChunkSize
		if m.maxChunk <= 0 {
			m.maxChunk = DefaultMaxChunkSize
		}
	})
	return m.guard, m.maxChunk, m.cfgErr
}

// Stat describes the file at path (following symbolic links), with the
// SHA-256 of its content when it is a regular file.
func (m *Module) Stat(ctx context.Context, path string) (StatResult, error) {
	guard, _, err := m.config()
	if err != nil {
		return StatResult{}, err
	}
	real, err := guard.ReadPath(path)
	if err != nil {
		return StatResult{}, err
	}
	// real has no symbolic link in it: one found now was swapped in
	// since the check, and is not followed.
	fi, err := pathguard.Lstat(real)
	if err != nil {
		return StatResult{}, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return StatResult{}, gofunc.Errorf(gofunc.CodeConflict, "%s became a symbolic link after it was checked; try again", path)
	}
	if !fi.Mode().IsRegular() {
		return describe(real, fi), nil
	}
	f, fi, err := pathguard.OpenRegular(real)
	if err != nil {
		return StatResult{}, err
	}
	defer f.Close()
	sum, err := pathguard.HashFile(ctx, f)
	if err != nil {
		return StatResult{}, err
	}
	res := describe(real, fi) // the file actually hashed
	res.SHA256 = sum
	return res, nil
}

// Read returns up to length bytes of the file at path from offset. length
// zero means the chunk cap; a larger length is cut to the cap (4 MiB by
// default), so callers loop until eof.
func (m *Module) Read(ctx context.Context, path string, offset, length int64) (Chunk, error) {
	_, maxChunk, err := m.config()
	if err != nil {
		return Chunk{}, err
	}
	if offset < 0 {
		return Chunk{}, gofunc.Errorf(gofunc.CodeBadArgs, "offset %d is negative", offset)
	}
	if length < 0 {
		return Chunk{}, gofunc.Errorf(gofunc.CodeBadArgs, "length %d is negative", length)
	}
	if length == 0 || length > maxChunk {
		length = maxChunk
	}
	f, fi, err := m.open(path)
	if err != nil {
		return Chunk{}, err
	}
	defer f.Close()
	if err := ctx.Err(); err != nil {
		return Chunk{}, gofunc.Errorf(gofunc.CodeCanceled, "read %s: %v", path, err)
	}
	buf := make([]byte, min(length, max(fi.Size()-offset, 0)+1)) // +1: notice growth
	n, err := f.ReadAt(buf, offset)
	if err != nil && !errors.Is(err, io.EOF) {
		return Chunk{}, gofunc.Errorf(gofunc.CodeModule, "read %s: %v", path, err)
	}
	data := buf[:n]
	sum := sha256.Sum256(data)
	return Chunk{
		Data:   data,
		SHA256: hex.EncodeToString(sum[:]),
		EOF:    errors.Is(err, io.EOF) || offset+int64(n) >= fi.Size(),
		Size:   fi.Size(),
	}, nil
}

// FuncChunkSize is the chunk size of Func's getfile.getchunk and
// chunkslen.
const FuncChunkSize = 60000

// Chunkslen is Func's getfile.chunkslen: the number of FuncChunkSize
// (60000-byte) chunks in the file at filename. Func answered -1 when it
// could not open the file; this answers a fault, as read does.
func (m *Module) Chunkslen(ctx context.Context, filename string) (int64, error) {
	f, fi, err := m.open(filename)
	if err != nil {
		return 0, err
	}
	f.Close()
	return (fi.Size() + FuncChunkSize - 1) / FuncChunkSize, nil
}

// Getchunk is Func's getfile.getchunk: chunk chunknum (from 0) of the
// file at filename, FuncChunkSize bytes, as Func sent it, [checksum,
// chunk]: the chunk as base64 text, and the SHA-1 (hex) of that text.
// Past the end the chunk is empty. Func answered [-1, ""] when it could
// not open the file; this answers a fault, as read does. New code uses
// read, whose chunks carry a SHA-256.
func (m *Module) Getchunk(ctx context.Context, chunknum int64, filename string) ([]string, error) {
	if chunknum < 0 {
		return nil, gofunc.Errorf(gofunc.CodeBadArgs, "chunknum %d is negative", chunknum)
	}
	f, _, err := m.open(filename)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, FuncChunkSize)
	n, err := f.ReadAt(buf, chunknum*FuncChunkSize)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, gofunc.Errorf(gofunc.CodeModule, "read %s: %v", filename, err)
	}
	chunk := base64.StdEncoding.EncodeToString(buf[:n])
	sum := sha1.Sum([]byte(chunk)) // Func's check, kept for its clients
	return []string{hex.EncodeToString(sum[:]), chunk}, nil
}

// open checks path and opens the regular file it names.
func (m *Module) open(path string) (*os.File, fs.FileInfo, error) {
	guard, _, err := m.config()
	if err != nil {
		return nil, nil, err
	}
	real, err := guard.ReadPath(path)
	if err != nil {
		return nil, nil, err
	}
	return pathguard.OpenRegular(real)
}

func describe(path string, fi fs.FileInfo) StatResult {
	perm := fi.Mode().Perm()
	bits := int(perm)
	if fi.Mode()&fs.ModeSetuid != 0 {
		bits |= 0o4000
	}
	if fi.Mode()&fs.ModeSetgid != 0 {
		bits |= 0o2000
	}
	if fi.Mode()&fs.ModeSticky != 0 {
		bits |= 0o1000
	}
	res := StatResult{
		Path:      path,
		Type:      fileType(fi.Mode()),
		Size:      fi.Size(),
		Mode:      bits,
		ModeOctal: fmt.Sprintf("%04o", bits),
		MTime:     fi.ModTime().UTC(),
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		res.UID, res.GID = int(st.Uid), int(st.Gid)
		if u, err := user.LookupId(strconv.Itoa(res.UID)); err == nil {
			res.Owner = u.Username
		}
		if g, err := user.LookupGroupId(strconv.Itoa(res.GID)); err == nil {
			res.Group = g.Name
		}
	}
	return res
}

func fileType(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "file"
	case m.IsDir():
		return "dir"
	case m&fs.ModeNamedPipe != 0:
		return "fifo"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "chardevice"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "other"
}

// Doc describes the module for introspection.
func (m *Module) Doc() gofunc.ModuleDoc {
	pathArg := gofunc.ArgDoc{Name: "path", Type: "string", Description: "absolute path"}
	return gofunc.ModuleDoc{
		Description: "Read files in bounded chunks with checksums.",
		Version:     "1.0.0",
		Methods: map[string]gofunc.MethodDoc{
			"Stat": {
				Description: "Describe a file: {path, type, size, mode, mode_octal, sha256 (regular files), mtime, uid, gid, owner, group}",
				Args:        []gofunc.ArgDoc{pathArg},
			},
			"Read": {
				Description: "Read a chunk of a regular file: {data, sha256 (of data), eof, size (of the file)}",
				Args: []gofunc.ArgDoc{
					pathArg,
					{Name: "offset", Type: "int", Description: "where to start", Optional: true, Default: 0},
					{Name: "length", Type: "int", Description: "bytes wanted; 0 or above the cap (4 MiB by default) means the cap", Optional: true, Default: 0},
				},
			},
			"Chunkslen": {
				Description: "Func's getfile.chunkslen: the number of 60000-byte chunks in a regular file (new code: stat)",
				Args:        []gofunc.ArgDoc{{Name: "filename", Type: "string", Description: "absolute path"}},
				AliasOf:     "stat",
			},
			"Getchunk": {
				Description: "Func's getfile.getchunk: [sha1 of the chunk's base64 text, the chunk as base64 text], 60000-byte chunks (new code: read)",
				Args: []gofunc.ArgDoc{
					{Name: "chunknum", Type: "int", Description: "chunk number, from 0"},
					{Name: "filename", Type: "string", Description: "absolute path"},
				},
				AliasOf: "read",
			},
		},
	}
}
