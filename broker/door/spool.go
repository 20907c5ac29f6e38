package door

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gofunc/gofunc/broker"
	"github.com/gofunc/gofunc/broker/internal/jsget"
)

// spool keeps job results on disk until the broker acknowledged them:
// one file per result, written whole (a temporary file, synced, then
// renamed), named so that they sort in the order they were made.
type spool struct {
	dir string
	seq atomic.Uint64
}

// spooled is one result as the spool keeps it: all its frames, sent
// in order; the file goes once the broker acknowledged every one.
type spooled struct {
	Subject string         `json:"subject"`
	Frames  []spooledFrame `json:"frames,omitempty"`
	// MsgID, Header and Data are the one frame of a result spooled
	// before results were chunked (read back as Frames).
	MsgID  string        `json:"msg_id,omitempty"`
	Header broker.Header `json:"header,omitempty"`
	Data   []byte        `json:"data,omitempty"`
}

// spooledFrame is one message of a spooled result.
type spooledFrame struct {
	MsgID  string        `json:"msg_id"`
	Header broker.Header `json:"header"`
	Data   []byte        `json:"data"`
}

const spoolExt = ".result"

// maxSpooled bounds what one spool file may hold when read back: a
// minion's largest answer (64 MiB), base64 in JSON, and its headers.
const maxSpooled = 96 << 20

func (s *spool) put(r spooled) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	name := fmt.Sprintf("%020d-%06d%s", time.Now().UnixNano(), s.seq.Add(1)%1e6, spoolExt)
	return writeFile(filepath.Join(s.dir, name), b)
}

// each hands the spooled results to send, oldest first, and deletes
// each one send took (nil); it stops at the first other error, but for
// jsget.ErrNotStored (the broker will never take it). Such a result, or
// an unreadable file, is renamed *.bad and logged: kept for the
// operator, never sent. It reports whether it went through them all.
func (s *spool) each(log hclog.Logger, send func(spooled) error) bool {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		log.Error("result spool not readable", "dir", s.dir, "error", err)
		return false
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), spoolExt) {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	for _, name := range names {
		path := filepath.Join(s.dir, name)
		r, err := readSpooled(path)
		if err != nil {
			log.Error("spooled result unreadable, kept aside", "file", path+".bad", "error", err)
			_ = os.Rename(path, path+".bad")
			continue
		}
		if err := send(r); errors.Is(err, jsget.ErrNotStored) {
			log.Error("spooled result refused by the broker, kept aside", "file", path+".bad", "error", err)
			_ = os.Rename(path, path+".bad")
			continue
		} else if err != nil {
			return false
		}
		if err := os.Remove(path); err != nil {
			log.Error("sent result not removed from the spool", "file", path, "error", err)
		}
	}
	return true
}

func readSpooled(path string) (spooled, error) {
	var r spooled
	f, err := os.Open(path)
	if err != nil {
		return r, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || st.Size() > maxSpooled {
		return r, errors.New("missing or over " + strconv.Itoa(maxSpooled) + " bytes")
	}
	if err := json.NewDecoder(f).Decode(&r); err != nil {
		return r, err
	}
	if len(r.Frames) == 0 && r.MsgID != "" {
		r.Frames = []spooledFrame{{MsgID: r.MsgID, Header: r.Header, Data: r.Data}}
	}
	if _, _, err := broker.ResultOf(r.Subject); err != nil || len(r.Frames) == 0 ||
		slices.ContainsFunc(r.Frames, func(f spooledFrame) bool { return f.MsgID == "" }) {
		return r, fmt.Errorf("not a result: subject %q, %d frames", r.Subject, len(r.Frames))
	}
	return r, nil
}

// writeFile writes b to path whole or not at all, 0600, synced.
func writeFile(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
