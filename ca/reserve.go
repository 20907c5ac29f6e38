package ca

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gofunc/gofunc/internal/fsutil"
)

// The disk reserve: why a revocation works on a full disk.
//
// The CA refuses any action it cannot audit, and a full disk makes the
// audit log, the index and the CRL unwritable. Had that held for
// revocations, whoever filled the disk (or anything else that did) would
// stop the admin from revoking a stolen key. So the CA keeps DIR/reserve,
// a file of Config.ReserveBytes allocated in advance. A revocation that
// finds the disk full deletes it and writes again, its audit record
// first as always; everything else (signing, requests, renewals) is
// refused while the disk is full, and the reserve is made again once
// there is room. We chose the reserve over revoking first and auditing
// later: a revocation stays write-ahead audited like every other action,
// and nothing has to remember an audit record it owes.
const fileReserve = "reserve"

// DefaultReserveBytes is Config.ReserveBytes' default: room for a
// revocation's audit record, index line and a CRL of about 100,000
// entries, several times over.
const DefaultReserveBytes = 8 << 20

// reserveRetry is how often a missing reserve is made again.
const reserveRetry = time.Minute

// ensureReserve makes DIR/reserve when it is missing (at most once per
// reserveRetry), logging loudly when the disk has no room for it.
func (a *Authority) ensureReserve() {
	if a.cfg.ReserveBytes < 0 {
		return
	}
	a.reserveMu.Lock()
	defer a.reserveMu.Unlock()
	now := time.Now()
	if a.reserveOK || now.Sub(a.reserveTried) < reserveRetry {
		return
	}
	a.reserveTried = now
	if err := makeReserve(a.path(fileReserve), a.cfg.ReserveBytes); err != nil {
		a.logger().Error("cannot set aside the disk reserve for revocations: the disk is (nearly) full",
			"path", a.path(fileReserve), "bytes", a.cfg.ReserveBytes, "error", err)
		return
	}
	a.reserveOK = true
}

func makeReserve(path string, size int64) error {
	if st, err := os.Stat(path); err == nil && st.Size() >= size {
		return nil
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	// Blocks really allocated, not a sparse file: deleting it must free
	// them.
	err = unix.Fallocate(int(f.Fd()), 0, 0, size)
	if errors.Is(err, unix.EOPNOTSUPP) {
		err = writeZeros(f, size)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func writeZeros(f *os.File, size int64) error {
	buf := make([]byte, 64<<10)
	for size > 0 {
		n := min(size, int64(len(buf)))
		if _, err := f.Write(buf[:n]); err != nil {
			return err
		}
		size -= n
	}
	return nil
}

// releaseReserve deletes DIR/reserve so that a revocation can be written
// on a full disk, and reports whether there was one to delete.
func (a *Authority) releaseReserve() bool {
	a.reserveMu.Lock()
	defer a.reserveMu.Unlock()
	err := os.Remove(a.path(fileReserve))
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	if err != nil {
		a.logger().Error("cannot free the disk reserve", "error", err)
		return false
	}
	if err := fsutil.SyncDir(a.dir); err != nil {
		a.logger().Warn("sync after freeing the disk reserve", "error", fmt.Errorf("ca: %w", err))
	}
	a.reserveOK, a.reserveTried = false, time.Time{}
	a.logger().Error("disk full: the reserve was used to record a revocation; free some space", "dir", a.dir)
	return true
}
