package audit

import (
	"cmp"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// rotatedName is the name the live file path takes when it is rotated
// for the index'th time. The index is decimal, so order is numeric and
// unambiguous; zero-padding only makes ls show them in order.
func rotatedName(path string, index uint64) string {
	return fmt.Sprintf("%s.%06d", path, index)
}

// rotatedIndex parses name as a rotated file of live file base.
func rotatedIndex(base, name string) (uint64, bool) {
	suffix, ok := strings.CutPrefix(name, base+".")
	if !ok || suffix == "" {
		return 0, false
	}
	for _, c := range suffix {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(suffix, 10, 64)
	return n, err == nil
}

type rotatedFile struct {
	path  string
	index uint64
}

// rotatedFiles lists path's rotated files, oldest first.
func rotatedFiles(path string) ([]rotatedFile, error) {
	dir, base := filepath.Dir(path), filepath.Base(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	var files []rotatedFile
	for _, e := range entries {
		if idx, ok := rotatedIndex(base, e.Name()); ok && e.Type().IsRegular() {
			files = append(files, rotatedFile{path: filepath.Join(dir, e.Name()), index: idx})
		}
	}
	slices.SortFunc(files, func(a, b rotatedFile) int { return cmp.Compare(a.index, b.index) })
	return files, nil
}

// Files returns the files of the log whose live file is path, in chain
// order: the rotated files (path.000001, path.000002, ..., ordered by
// number) and then path itself if it exists. Side files such as
// path.lock and path.torn-N are not part of the chain and are left out.
// It fails with an error wrapping fs.ErrNotExist when there are none.
func Files(path string) ([]string, error) {
	rotated, err := rotatedFiles(path)
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, r := range rotated {
		paths = append(paths, r.path)
	}
	switch _, err := os.Stat(path); {
	case err == nil:
		paths = append(paths, path)
	case !os.IsNotExist(err):
		return nil, fmt.Errorf("audit: %w", err)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("audit: no log files at %s: %w", path, fs.ErrNotExist)
	}
	return paths, nil
}
