// Package copyfile is the "copyfile" module: it writes files on the minion
// atomically, with checksums.
//
// Small files go in one call, copyfile.copyfile(path, data, options).
// Larger ones are pushed in chunks:
//
//	id := copyfile.open(path, {size: N, sha256: "…", mode: "0644"})
//	copyfile.append(id, 0, chunk0, sha256(chunk0))
//	copyfile.append(id, len(chunk0), chunk1, sha256(chunk1))
//	copyfile.commit(id)  →  {changed, backup_path, sha256, size}
//
// The data go to a temporary file (mode 0600, named .gofunc-copyfile-*.tmp)
// in the target's own directory, which commit renames over the target, so
// readers see the old file or the new one, never a mix. When the new
// content equals the old, commit leaves the file untouched (same inode,
// same mtime) and reports changed: false; only mode or ownership are fixed
// if they differ.
//
// The target must be absent or a regular file: commit refuses to replace a
// symbolic link, a directory or a device (CodeConflict). When AllowDirs is
// set, the target's directory is resolved through symbolic links and must
// lie inside one of them (CodeDenied otherwise).
//
// Everything after that check is done through the directory it judged,
// held open from open to commit (internal/pathguard's Dir): the temporary
// file is created there, the target is opened there without following a
// symbolic link, its mode and owner are changed through that descriptor,
// and the rename and the backup link happen there. A local user who
// swaps a directory or the target for a symbolic link meanwhile gets a
// CodeConflict, never a write, chmod or chown elsewhere.
//
// Uploads live in memory and are bound to the caller that opened them; an
// upload left idle for UploadTTL is aborted and its temporary file removed.
// Uploads lost to a restart are simply gone: their temporary files are
// removed by a later open in the same directory once they are older than
// UploadTTL.
package copyfile

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/pathguard"
)

// Defaults for the zero fields of Module.
const (
	DefaultMaxFileSize  = 1 << 30 // 1 GiB
	DefaultMaxChunkSize = 4 << 20 // 4 MiB
	DefaultUploadTTL    = 10 * time.Minute
	DefaultMaxUploads   = 32
)

// tempPrefix and tempSuffix name the temporary files, so that orphans left
// by a crash can be recognised and removed.
const (
	tempPrefix = ".gofunc-copyfile-"
	tempSuffix = ".tmp"
)

// Module is the copyfile module. Its exported fields are its
// configuration, read when the first call arrives; do not change them
// afterwards. Use it as a pointer; it is safe for concurrent use. Close
// aborts every upload in progress.
type Module struct {
	// AllowDirs, when not empty, limits writes to files below these
	// directories (absolute paths). Empty means any path: restrict it on
	// any minion whose callers are not fully trusted.
	AllowDirs []string
	// MaxFileSize bounds a file's size; zero means DefaultMaxFileSize (1 GiB).
	MaxFileSize int64
	// MaxChunkSize bounds one append, and the one-shot copyfile; zero
	// means DefaultMaxChunkSize (4 MiB).
	MaxChunkSize int64
	// UploadTTL is how long an upload may stay idle before it is aborted;
	// zero means DefaultUploadTTL (10 minutes).
	UploadTTL time.Duration
	// MaxUploads bounds the uploads open at once; zero means
	// DefaultMaxUploads (32).
	MaxUploads int

	once    sync.Once
	cfg     config
	cfgErr  error
	mu      sync.Mutex // guards uploads, janitor, closed
	uploads map[string]*upload
	janitor *time.Timer
	closed  bool
	now     func() time.Time // the clock; tests replace it
}

type config struct {
	guard      *pathguard.Guard
	maxFile    int64
	maxChunk   int64
	ttl        time.Duration
	maxUploads int
}

// Options are the optional knobs of open and copyfile.
type Options struct {
	// Mode is the permission bits: an int (0644 is 420) or an octal
	// string ("0644"); at most 07777. Unset keeps the existing file's
	// mode, or 0644 for a new file.
	Mode any `xmlrpc:"mode"`
	// Owner is a user name or a numeric uid (int or string). Unset keeps
	// the existing file's owner, or the minion's for a new file.
	Owner any `xmlrpc:"owner"`
	// Group is a group name or a numeric gid, like Owner.
	Group any `xmlrpc:"group"`
	// Backup keeps the replaced file as <path>.<UTC time>.bak (a hard
	// link, so the old inode is kept as it was).
	Backup bool `xmlrpc:"backup"`
	// Size is the file's expected size in bytes, checked at commit; zero
	// means not declared.
	Size int64 `xmlrpc:"size"`
	// SHA256 is the file's expected SHA-256, hex, checked at commit;
	// empty means not declared.
	SHA256 string `xmlrpc:"sha256"`
}

// CommitResult is what commit and copyfile return.
type CommitResult struct {
	// Changed is false when the file already had this content, mode and
	// ownership.
	Changed bool `xmlrpc:"changed"`
	// BackupPath names the backup of the replaced file, if one was made.
	BackupPath string `xmlrpc:"backup_path"`
	// SHA256 is the file's SHA-256, hex.
	SHA256 string `xmlrpc:"sha256"`
	Size   int64  `xmlrpc:"size"` // the file's size in bytes
}

// upload is one chunked upload in progress.
type upload struct {
	mu      sync.Mutex // guards everything below; held across the file I/O
	caller  string
	asked   string         // the path as the caller gave it
	target  string         // resolved path
	dir     *pathguard.Dir // target's directory, held open
	tmp     *os.File
	tmpName string // tmp's name in dir
	hash    hash.Hash
	size    int64
	meta    meta
	lastUse time.Time
	done    bool
	renamed bool // the temporary file became the target
}

func (m *Module) config() (config, error) {
	m.once.Do(func() {
		g, err := pathguard.New(m.AllowDirs)
		if err != nil {
			m.cfgErr = gofunc.Errorf(gofunc.CodeUnavailable, "copyfile is misconfigured: %v", err)
			return
		}
		m.cfg = config{
			guard:      g,
			maxFile:    orDefault(m.MaxFileSize, DefaultMaxFileSize),
			maxChunk:   orDefault(m.MaxChunkSize, DefaultMaxChunkSize),
			ttl:        orDefault(m.UploadTTL, DefaultUploadTTL),
			maxUploads: orDefault(m.MaxUploads, DefaultMaxUploads),
		}
		if m.now == nil {
			m.now = time.Now
		}
		m.uploads = map[string]*upload{}
	})
	return m.cfg, m.cfgErr
}

func orDefault[T int | int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Open starts a chunked upload to path and returns its id.
func (m *Module) Open(ctx context.Context, path string, options Options) (string, error) {
	cfg, err := m.config()
	if err != nil {
		return "", err
	}
	target, dir, meta, err := m.prepare(cfg, path, options)
	if err != nil {
		return "", err
	}
	m.removeOrphans(dir, cfg.ttl)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		dir.Close()
		return "", gofunc.Errorf(gofunc.CodeUnavailable, "copyfile is closed")
	}
	if len(m.uploads) >= cfg.maxUploads {
		dir.Close()
		return "", gofunc.Errorf(gofunc.CodeBusy, "%d uploads already open", len(m.uploads))
	}
	tmp, tmpName, err := dir.CreateTemp(tempPrefix, tempSuffix)
	if err != nil {
		dir.Close()
		return "", err
	}
	id := rand.Text()
	m.uploads[id] = &upload{
		caller:  callerOf(ctx),
		asked:   path,
		target:  target,
		dir:     dir,
		tmp:     tmp,
		tmpName: tmpName,
		hash:    sha256.New(),
		meta:    meta,
		lastUse: m.now(),
	}
	m.armJanitor(cfg.ttl)
	return id, nil
}

// Append writes data at offset, which must be the number of bytes
// received so far. chunkSHA256 is the SHA-256 (hex) of data. It returns
// the number of bytes received so far.
func (m *Module) Append(ctx context.Context, id string, offset int64, data []byte, chunkSHA256 string) (int64, error) {
	cfg, err := m.config()
	if err != nil {
		return 0, err
	}
	if int64(len(data)) > cfg.maxChunk {
		return 0, gofunc.Errorf(gofunc.CodeTooLarge, "chunk of %d bytes is above the limit of %d", len(data), cfg.maxChunk)
	}
	want, err := parseSHA256("chunk_sha256", chunkSHA256)
	if err != nil {
		return 0, err
	}
	if got := sha256.Sum256(data); hex.EncodeToString(got[:]) != want {
		return 0, gofunc.Errorf(gofunc.CodeBadArgs, "chunk_sha256 does not match the data (got %x)", got)
	}
	u, err := m.lock(ctx, id)
	if err != nil {
		return 0, err
	}
	defer u.mu.Unlock()
	if offset != u.size {
		return u.size, gofunc.Errorf(gofunc.CodeConflict, "offset %d: the upload has %d bytes, append at %d", offset, u.size, u.size)
	}
	end := u.size + int64(len(data))
	if end > cfg.maxFile || (u.meta.size > 0 && end > u.meta.size) {
		return u.size, gofunc.Errorf(gofunc.CodeTooLarge, "the file would grow to %d bytes, beyond its limit", end)
	}
	if err := ctx.Err(); err != nil {
		return u.size, err
	}
	if _, err := u.tmp.Write(data); err != nil {
		return u.size, gofunc.Errorf(gofunc.CodeModule, "write: %v", err)
	}
	u.hash.Write(data)
	u.size = end
	u.lastUse = m.now()
	return u.size, nil
}

// Commit checks the upload against the declared size and checksum and
// moves it into place. The upload ends either way.
func (m *Module) Commit(ctx context.Context, id string) (CommitResult, error) {
	cfg, err := m.config()
	if err != nil {
		return CommitResult{}, err
	}
	u, err := m.lock(ctx, id)
	if err != nil {
		return CommitResult{}, err
	}
	defer u.mu.Unlock()
	m.forget(id)
	defer u.discard()
	sum := hex.EncodeToString(u.hash.Sum(nil))
	if err := u.meta.verify(u.size, sum); err != nil {
		return CommitResult{}, err
	}
	return m.install(ctx, cfg, u, sum)
}

// Abort ends an upload and removes its temporary file.
func (m *Module) Abort(ctx context.Context, id string) (bool, error) {
	if _, err := m.config(); err != nil {
		return false, err
	}
	u, err := m.lock(ctx, id)
	if err != nil {
		return false, err
	}
	defer u.mu.Unlock()
	m.forget(id)
	u.discard()
	return true, nil
}

// Copyfile writes a small file (at most MaxChunkSize bytes) in one call.
func (m *Module) Copyfile(ctx context.Context, path string, data []byte, options Options) (CommitResult, error) {
	cfg, err := m.config()
	if err != nil {
		return CommitResult{}, err
	}
	if int64(len(data)) > cfg.maxChunk {
		return CommitResult{}, gofunc.Errorf(gofunc.CodeTooLarge,
			"%d bytes is above the one-call limit of %d; use open, append and commit", len(data), cfg.maxChunk)
	}
	target, dir, meta, err := m.prepare(cfg, path, options)
	if err != nil {
		return CommitResult{}, err
	}
	sum256 := sha256.Sum256(data)
	sum := hex.EncodeToString(sum256[:])
	if err := meta.verify(int64(len(data)), sum); err != nil {
		dir.Close()
		return CommitResult{}, err
	}
	tmp, tmpName, err := dir.CreateTemp(tempPrefix, tempSuffix)
	if err != nil {
		dir.Close()
		return CommitResult{}, err
	}
	u := &upload{asked: path, target: target, dir: dir, tmp: tmp, tmpName: tmpName, meta: meta, size: int64(len(data))}
	defer u.discard()
	if _, err := tmp.Write(data); err != nil {
		return CommitResult{}, gofunc.Errorf(gofunc.CodeModule, "write: %v", err)
	}
	return m.install(ctx, cfg, u, sum)
}

// Checksum returns the SHA-256 (hex) of the file at path.
func (m *Module) Checksum(ctx context.Context, path string) (string, error) {
	cfg, err := m.config()
	if err != nil {
		return "", err
	}
	real, err := cfg.guard.ReadPath(path)
	if err != nil {
		return "", err
	}
	sum, _, err := pathguard.HashRegular(ctx, real)
	return sum, err
}

// Close aborts every upload in progress and removes its temporary file.
// Later calls to open fail with CodeUnavailable. Close is idempotent.
func (m *Module) Close() error {
	m.mu.Lock()
	m.closed = true
	if m.janitor != nil {
		m.janitor.Stop()
	}
	pending := m.uploads
	m.uploads = map[string]*upload{}
	m.mu.Unlock()
	for _, u := range pending {
		u.mu.Lock()
		u.discard()
		u.mu.Unlock()
	}
	return nil
}

// prepare validates a target path and the options, and opens the
// target's directory, which the caller closes.
func (m *Module) prepare(cfg config, path string, o Options) (string, *pathguard.Dir, meta, error) {
	target, err := cfg.guard.WritePath(path)
	if err != nil {
		return "", nil, meta{}, err
	}
	if strings.HasPrefix(filepath.Base(target), tempPrefix) {
		return "", nil, meta{}, gofunc.Errorf(gofunc.CodeBadArgs, "path %q uses the name of copyfile's temporary files", path)
	}
	md, err := parseOptions(o)
	if err != nil {
		return "", nil, meta{}, err
	}
	if md.size > cfg.maxFile {
		return "", nil, meta{}, gofunc.Errorf(gofunc.CodeTooLarge, "size %d is above the limit of %d bytes", md.size, cfg.maxFile)
	}
	dir, err := pathguard.OpenDir(filepath.Dir(target))
	if err != nil {
		return "", nil, meta{}, err
	}
	if fi, err := dir.Lstat(filepath.Base(target)); err == nil && !fi.Mode().IsRegular() {
		dir.Close()
		return "", nil, meta{}, gofunc.Errorf(gofunc.CodeConflict, "%s exists and is not a regular file (%s)", path, fi.Mode().Type())
	}
	return target, dir, md, nil
}

// lock finds the caller's upload and returns it locked.
func (m *Module) lock(ctx context.Context, id string) (*upload, error) {
	m.mu.Lock()
	u, ok := m.uploads[id]
	m.mu.Unlock()
	if !ok || u.caller != callerOf(ctx) {
		return nil, gofunc.Errorf(gofunc.CodeNotFound, "no upload %q (never opened, committed, aborted or expired)", id)
	}
	u.mu.Lock()
	if u.done {
		u.mu.Unlock()
		return nil, gofunc.Errorf(gofunc.CodeNotFound, "no upload %q (committed, aborted or expired)", id)
	}
	return u, nil
}

func (m *Module) forget(id string) {
	m.mu.Lock()
	delete(m.uploads, id)
	m.mu.Unlock()
}

// discard closes and removes the temporary file, and closes the
// directory; the caller holds u.mu.
func (u *upload) discard() {
	if u.done {
		return
	}
	u.done = true
	u.tmp.Close()
	if !u.renamed {
		u.dir.Remove(u.tmpName)
	}
	u.dir.Close()
}

// callerOf names the peer that makes a call, so an upload can only be
// continued by the certificate that opened it.
func callerOf(ctx context.Context) string {
	if p, ok := gofunc.PeerFromContext(ctx); ok {
		return string(p.Role) + "/" + p.Name + "/" + p.Serial
	}
	return ""
}

// armJanitor makes sure a sweep is scheduled; m.mu is held.
func (m *Module) armJanitor(ttl time.Duration) {
	if m.janitor == nil {
		m.janitor = time.AfterFunc(ttl, m.sweep)
	} else if len(m.uploads) == 1 {
		m.janitor.Reset(ttl)
	}
}

// sweep aborts the uploads idle for longer than the TTL and reschedules
// itself while uploads remain.
func (m *Module) sweep() {
	ttl := m.cfg.ttl
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	next := ttl
	for id, u := range m.uploads {
		if !u.mu.TryLock() {
			continue // in use right now, so not idle
		}
		if idle := now.Sub(u.lastUse); idle >= ttl {
			delete(m.uploads, id)
			u.discard()
		} else {
			next = min(next, ttl-idle)
		}
		u.mu.Unlock()
	}
	if len(m.uploads) > 0 && m.janitor != nil {
		m.janitor.Reset(next)
	}
}

// removeOrphans deletes temporary files older than ttl that no upload of
// this process owns: leftovers of a crash or a restart.
func (m *Module) removeOrphans(dir *pathguard.Dir, ttl time.Duration) {
	names, err := dir.Names()
	if err != nil {
		return
	}
	m.mu.Lock()
	active := map[string]bool{}
	for _, u := range m.uploads {
		active[u.tmp.Name()] = true
	}
	m.mu.Unlock()
	for _, name := range names {
		if !strings.HasPrefix(name, tempPrefix) || !strings.HasSuffix(name, tempSuffix) ||
			active[filepath.Join(dir.Name(), name)] {
			continue
		}
		if fi, err := dir.Lstat(name); err == nil && fi.Mode().IsRegular() && m.now().Sub(fi.ModTime()) > ttl {
			dir.Remove(name)
		}
	}
}

// install puts the upload's temporary file (whose SHA-256 is sum) at its
// target, or leaves the target alone when it already has that content.
// Everything happens in u.dir, the directory the target's path was
// checked to name, and nothing follows a symbolic link.
func (m *Module) install(ctx context.Context, cfg config, u *upload, sum string) (CommitResult, error) {
	asked, target, md, size := u.asked, u.target, u.meta, u.size
	res := CommitResult{SHA256: sum, Size: size}
	// The directory may have been swapped since open: check again, and
	// make sure the directory held open is still the one the path names.
	if again, err := cfg.guard.WritePath(asked); err != nil {
		return res, err
	} else if again != target {
		return res, gofunc.Errorf(gofunc.CodeConflict, "%s now resolves to %s, not %s", asked, again, target)
	}
	if err := sameDir(u.dir, filepath.Dir(target)); err != nil {
		return res, err
	}
	base := filepath.Base(target)
	old, err := u.dir.Lstat(base)
	switch {
	case errors.Is(err, gofunc.ErrNotFound):
		old = nil
	case err != nil:
		return res, err
	case !old.Mode().IsRegular():
		return res, gofunc.Errorf(gofunc.CodeConflict, "%s is not a regular file (%s)", asked, old.Mode().Type())
	}
	if old != nil && old.Size() == size {
		if same, changed, err := fixIfSame(ctx, u.dir, base, md, sum); same || err != nil {
			res.Changed = changed
			return res, err
		}
	}
	if err := md.resolve(old).applyToFile(u.tmp); err != nil {
		return res, err
	}
	if err := u.tmp.Sync(); err != nil {
		return res, gofunc.Errorf(gofunc.CodeModule, "sync: %v", err)
	}
	if md.backup && old != nil {
		if res.BackupPath, err = backup(u.dir, base, m.now()); err != nil {
			return res, err
		}
	}
	if err := u.dir.Rename(u.tmpName, base); err != nil {
		return res, err
	}
	u.renamed = true
	u.dir.Sync() // best effort: the rename is done either way
	res.Changed = true
	return res, nil
}

// fixIfSame opens the target (never through a symbolic link) and, when
// its content has the SHA-256 sum, fixes its mode and ownership through
// that descriptor: same reports that it had the content, changed that
// its attributes were fixed.
//
// A target with other hard links is not fixed in place (same is false,
// so it is replaced by a new file): a chmod or chown of its inode would
// change every other name of it too, copyfile's own backups (hard
// links of the file they saved) or a foreign file a local user linked
// in where fs.protected_hardlinks is off.
func fixIfSame(ctx context.Context, dir *pathguard.Dir, base string, md meta, sum string) (same, changed bool, err error) {
	f, fi, err := dir.OpenRegular(base)
	if err != nil {
		return false, false, err
	}
	defer f.Close()
	oldSum, err := pathguard.HashFile(ctx, f)
	if err != nil || oldSum != sum {
		return false, false, err
	}
	a := md.resolve(fi)
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 && a.differ(fi) {
		return false, false, nil
	}
	changed, err = a.applyTo(f, fi)
	return true, changed, err
}

// sameDir makes sure that d, held open since the upload began, is the
// directory at path now.
func sameDir(d *pathguard.Dir, path string) error {
	now, err := pathguard.OpenDir(path)
	if err != nil {
		return err
	}
	defer now.Close()
	a, errA := d.Stat()
	b, errB := now.Stat()
	if errA != nil || errB != nil || !os.SameFile(a, b) {
		return gofunc.Errorf(gofunc.CodeConflict, "directory %s was replaced during the upload", path)
	}
	return nil
}

// backup hard-links the current target to a new name beside it and
// returns the backup's path.
func backup(dir *pathguard.Dir, base string, now time.Time) (string, error) {
	stamp := base + "." + now.UTC().Format("20060102T150405Z")
	for i := 0; i < 100; i++ {
		name := stamp + ".bak"
		if i > 0 {
			name = fmt.Sprintf("%s-%d.bak", stamp, i)
		}
		err := dir.Link(base, name)
		if err == nil {
			return filepath.Join(dir.Name(), name), nil
		}
		if !errors.Is(err, gofunc.ErrConflict) {
			return "", err
		}
	}
	return "", gofunc.Errorf(gofunc.CodeConflict, "backup: too many backups named %s*", stamp)
}
