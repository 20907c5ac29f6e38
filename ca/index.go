package ca

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/internal/fsutil"
)

// The index: DIR/index.jsonl, an append-only journal of JSON lines.
//
// Why a journal and not index.json rewritten whole or an embedded
// database: rewriting the whole index on every signature cost time
// linear in the certificates issued (5.8 ms at 2,000, so a CA for
// 50,000 minions slowed to a crawl). An append costs the same at 50,000
// as at 1: one write and one fsync of the new lines, shared by every
// signature of a batch. A database (SQLite, bbolt) would do that too but
// adds a large dependency to every program that embeds the CA, a second
// locking scheme beside the directory's flock, and a binary file; the
// journal keeps the directory's one lock and stays readable with jq.
//
// Every line is one change:
//
//	{"op":"header","version":2}
//	{"op":"cert","cert":{serial, name, role, validity, key fingerprint, addr, parent},"der":"<base64 DER>"}
//	{"op":"revoke","serial":"…","at":"…","reason":1}
//	{"op":"crl","number":7,"at":"…"}
//	{"op":"rekey","name":"…","role":"minion","at":"<until>"}   (no "at": the grant was used)
//
// Lines are appended under the exclusive lock, so readers (who hold the
// shared lock) never see a half-written one; a crash can leave a torn
// last line, which readers ignore and the next writer cuts off. Each
// Authority keeps the index in memory and, under the lock, reads only
// the lines appended since it last looked (by itself or another
// process), so an operation costs the same whatever the index's size.
// The certificates themselves are in the journal (the "der" field) and
// are read back by offset when needed.
const (
	fileJournal     = "index.jsonl"
	fileLegacyIndex = "index.json" // version 1: migrated by Open
	journalVersion  = 2
	// maxJournalLine bounds one line; a certificate line is about 1 KB.
	maxJournalLine = 64 << 10
)

// ErrCorruptIndex: DIR/index.jsonl holds a line that is not a valid
// change (not JSON, an unknown operation, a duplicate serial, a
// revocation of an unknown certificate). The CA refuses to act on it.
var ErrCorruptIndex = errors.New("ca: index is corrupt")

// Journal operations.
const (
	opHeader = "header"
	opCert   = "cert"
	opRevoke = "revoke"
	opCRL    = "crl"
	opRekey  = "rekey" // At: until when name@role may re-key; zero: grant used
)

// entry is one line of the journal.
type entry struct {
	Op      string           `json:"op"`
	Version int              `json:"version,omitempty"`
	Cert    *certRecord      `json:"cert,omitempty"`
	DER     []byte           `json:"der,omitempty"`
	Serial  string           `json:"serial,omitempty"`
	At      time.Time        `json:"at,omitzero"`
	Reason  RevocationReason `json:"reason,omitempty"`
	Number  int64            `json:"number,omitempty"`
	Name    string           `json:"name,omitempty"`
	Role    gofunc.Role      `json:"role,omitempty"`
}

// entryHead is entry without the certificate's DER: loading the index
// reads every line but needs no certificate bytes.
type entryHead struct {
	Op      string           `json:"op"`
	Version int              `json:"version"`
	Cert    *certRecord      `json:"cert"`
	Serial  string           `json:"serial"`
	At      time.Time        `json:"at"`
	Reason  RevocationReason `json:"reason"`
	Number  int64            `json:"number"`
	Name    string           `json:"name"`
	Role    gofunc.Role      `json:"role"`
}

// index is the CA's state: every issued certificate, its revocation,
// and the CRL number, with lookups by serial and name.
type index struct {
	CRLNumber int64
	CRLAt     time.Time // ThisUpdate of the current CRL
	Certs     []certRecord

	bySerial map[string]int
	byName   map[string][]int
	children map[string][]int     // renewals by parent serial
	revoked  []int                // indexes of revoked certificates, in revocation order
	rekeys   map[string]time.Time // "name@role" -> re-key allowed until
}

func newIndex() *index {
	return &index{bySerial: map[string]int{}, byName: map[string][]int{}, children: map[string][]int{}, rekeys: map[string]time.Time{}}
}

// rekeyAllowed reports whether the admin allowed name@role to re-key at t.
func (ix *index) rekeyAllowed(name string, role gofunc.Role, t time.Time) bool {
	until, ok := ix.rekeys[name+"@"+string(role)]
	return ok && t.Before(until)
}

// lineage returns r and every renewal descended from it, r first.
func (ix *index) lineage(r *certRecord) []*certRecord {
	out := []*certRecord{r}
	for k := 0; k < len(out); k++ {
		for _, i := range ix.children[out[k].Serial] {
			out = append(out, &ix.Certs[i])
		}
	}
	return out
}

type certRecord struct {
	Serial    string      `json:"serial"`
	Name      string      `json:"name"`
	Role      gofunc.Role `json:"role"`
	NotBefore time.Time   `json:"not_before"`
	NotAfter  time.Time   `json:"not_after"`
	KeyFP     string      `json:"key_fingerprint"`
	Addr      string      `json:"addr,omitempty"`
	// IPs are the certificate's IP SANs; Seen is the IP address the
	// certmaster saw the request for it come from (none for a
	// certificate the admin issued directly). list_minions serves both
	// so that an overlord dials only addresses the CA vouches for.
	IPs       []string         `json:"ips,omitempty"`
	Seen      string           `json:"seen,omitempty"`
	RevokedAt time.Time        `json:"revoked_at,omitzero"`
	Reason    RevocationReason `json:"reason,omitempty"`
	// Parent is the serial of the certificate this one renewed.
	Parent string `json:"parent,omitempty"`

	// loc is where the certificate's line is in the journal; der holds
	// the certificate until its line is written.
	loc lineLoc
	der []byte
}

type lineLoc struct{ off, n int64 }

func (r certRecord) revoked() bool { return !r.RevokedAt.IsZero() }

// valid reports whether the certificate is usable at t: not revoked, not
// expired.
func (r certRecord) valid(t time.Time) bool { return !r.revoked() && t.Before(r.NotAfter) }

func (r certRecord) info() CertInfo {
	return CertInfo{
		Serial: r.Serial, Name: r.Name, Role: r.Role, NotBefore: r.NotBefore, NotAfter: r.NotAfter,
		KeyFingerprint: r.KeyFP, Addr: r.Addr, Revoked: r.revoked(), RevokedAt: r.RevokedAt, Reason: r.Reason,
	}
}

func (ix *index) find(serial string) *certRecord {
	if i, ok := ix.bySerial[serial]; ok {
		return &ix.Certs[i]
	}
	return nil
}

// named returns the certificates issued for name, oldest first.
func (ix *index) named(name string) []*certRecord {
	is := ix.byName[name]
	out := make([]*certRecord, len(is))
	for k, i := range is {
		out[k] = &ix.Certs[i]
	}
	return out
}

// current returns the newest valid certificate of role for name, or nil.
func (ix *index) current(name string, role gofunc.Role, t time.Time) *certRecord {
	var best *certRecord
	for _, r := range ix.named(name) {
		if r.Role == role && r.valid(t) && (best == nil || !r.NotBefore.Before(best.NotBefore)) {
			best = r
		}
	}
	return best
}

// ErrNameTaken: a certificate for the name was issued for another role.
// A name belongs to one role across every certificate the CA ever
// issued, so that an ACL rule or a revocation naming "alice" can never
// mean a minion that enrolled as "ALICE" beside the overlord alice. The
// certmaster's own server certificate is outside the rule: it is never a
// caller, and its names are the host's.
var ErrNameTaken = &gofunc.Fault{Code: gofunc.CodeConflict, Message: "ca: the name belongs to another role"}

// roles returns the roles of the certificates ever issued for name, the
// certmaster's own excepted, in the order first issued.
func (ix *index) roles(name string) []gofunc.Role {
	var out []gofunc.Role
	for _, r := range ix.named(name) {
		if r.Role != gofunc.RoleCertmaster && !slices.Contains(out, r.Role) {
			out = append(out, r.Role)
		}
	}
	return out
}

// checkNameRole refuses a new certificate of role for name when the name
// belongs to another role (ErrNameTaken).
func (ix *index) checkNameRole(name string, role gofunc.Role) error {
	if role == gofunc.RoleCertmaster {
		return nil
	}
	for _, r := range ix.roles(name) {
		if r != role {
			return fmt.Errorf("%w: %s is a %s name, not a %s one; choose another name", ErrNameTaken, name, r, role)
		}
	}
	return nil
}

// apply changes the index by one journal entry. An entry that does not
// fit (a duplicate serial, an unknown certificate) is ErrCorruptIndex:
// the index is only ever changed through apply, so that cannot happen
// unless the file was damaged.
func (ix *index) apply(e entryHead) error {
	switch e.Op {
	case opHeader:
		if e.Version != journalVersion {
			return fmt.Errorf("%w: version %d, this program reads %d", ErrCorruptIndex, e.Version, journalVersion)
		}
	case opCert:
		if e.Cert == nil || e.Cert.Serial == "" || e.Cert.Name == "" {
			return fmt.Errorf("%w: certificate entry without serial or name", ErrCorruptIndex)
		}
		if _, dup := ix.bySerial[e.Cert.Serial]; dup {
			return fmt.Errorf("%w: serial %s issued twice", ErrCorruptIndex, e.Cert.Serial)
		}
		i := len(ix.Certs)
		ix.Certs = append(ix.Certs, *e.Cert)
		ix.bySerial[e.Cert.Serial] = i
		ix.byName[e.Cert.Name] = append(ix.byName[e.Cert.Name], i)
		if p := e.Cert.Parent; p != "" {
			ix.children[p] = append(ix.children[p], i)
		}
		if e.Cert.revoked() {
			ix.revoked = append(ix.revoked, i)
		}
	case opRevoke:
		i, ok := ix.bySerial[e.Serial]
		if !ok {
			return fmt.Errorf("%w: revocation of unknown serial %s", ErrCorruptIndex, e.Serial)
		}
		if r := &ix.Certs[i]; !r.revoked() {
			r.RevokedAt, r.Reason = e.At, e.Reason
			ix.revoked = append(ix.revoked, i)
		}
	case opCRL:
		ix.CRLNumber, ix.CRLAt = e.Number, e.At
	case opRekey:
		if e.Name == "" || e.Role == "" {
			return fmt.Errorf("%w: re-key entry without name or role", ErrCorruptIndex)
		}
		if e.At.IsZero() {
			delete(ix.rekeys, e.Name+"@"+string(e.Role))
		} else {
			ix.rekeys[e.Name+"@"+string(e.Role)] = e.At
		}
	default:
		return fmt.Errorf("%w: unknown operation %q (written by a newer version?)", ErrCorruptIndex, e.Op)
	}
	return nil
}

func (e entry) head() entryHead {
	return entryHead{Op: e.Op, Version: e.Version, Cert: e.Cert, Serial: e.Serial, At: e.At, Reason: e.Reason,
		Number: e.Number, Name: e.Name, Role: e.Role}
}

// store is an Authority's cached copy of the journal. It is used only
// under the directory lock (dirLock.mu serializes this process).
type store struct {
	path string
	ix   *index      // nil: read the whole journal at the next refresh
	read int64       // bytes of complete lines applied to ix
	fi   fs.FileInfo // the file read, to notice a replaced one
}

// refresh brings the cached index up to date with the journal and
// returns it. Under the exclusive lock (writer) a torn final line left
// by a crash is cut off; readers skip it.
func (s *store) refresh(writer bool, logf func(msg string, args ...any)) (*index, error) {
	f, err := os.Open(s.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s is missing", ErrCorruptIndex, s.path)
		}
		return nil, fmt.Errorf("ca: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	if s.ix == nil || s.fi == nil || !os.SameFile(fi, s.fi) || fi.Size() < s.read {
		s.ix, s.read, s.fi = newIndex(), 0, fi
	}
	if fi.Size() == s.read {
		return s.ix, nil
	}
	n, err := readJournal(io.NewSectionReader(f, s.read, fi.Size()-s.read), s.read, s.ix)
	s.read += n
	if err != nil {
		s.ix = nil
		return nil, fmt.Errorf("%s: %w", s.path, err)
	}
	if torn := fi.Size() - s.read; torn > 0 && writer {
		logf("index has a torn final line (a crash during a write); cutting it off", "path", s.path, "offset", s.read, "bytes", torn)
		if err := cutJournal(s.path, s.read); err != nil {
			s.ix = nil
			return nil, err
		}
	}
	s.fi = fi
	return s.ix, nil
}

// readJournal applies the complete lines of r (which starts at offset
// base of the file) to ix and returns how many bytes they took. An
// incomplete final line is left unread.
func readJournal(r io.Reader, base int64, ix *index) (int64, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var n int64
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(line) > maxJournalLine {
				return n, fmt.Errorf("%w: line at offset %d is longer than %d bytes", ErrCorruptIndex, base+n, maxJournalLine)
			}
			continue
		}
		if err == io.EOF {
			return n, nil // a torn line, or nothing
		}
		if err != nil {
			return n, fmt.Errorf("ca: read index: %w", err)
		}
		var e entryHead
		if err := json.Unmarshal(line, &e); err != nil {
			return n, fmt.Errorf("%w: line at offset %d: %w", ErrCorruptIndex, base+n, err)
		}
		if n == 0 && base == 0 && e.Op != opHeader {
			return n, fmt.Errorf("%w: no header line", ErrCorruptIndex)
		}
		if err := ix.apply(e); err != nil {
			return n, fmt.Errorf("line at offset %d: %w", base+n, err)
		}
		if e.Op == opCert {
			ix.Certs[len(ix.Certs)-1].loc = lineLoc{off: base + n, n: int64(len(line))}
		}
		n += int64(len(line))
		line = line[:0]
	}
}

func cutJournal(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("ca: cut torn index line: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("ca: cut torn index line: %w", err)
	}
	return nil
}

// encodeEntries renders entries as journal lines.
func encodeEntries(es []entry) ([]byte, []int, error) {
	var buf bytes.Buffer
	ends := make([]int, len(es))
	for i, e := range es {
		b, err := json.Marshal(e)
		if err != nil {
			return nil, nil, fmt.Errorf("ca: %w", err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
		ends[i] = buf.Len()
	}
	return buf.Bytes(), ends, nil
}

// append writes entries at the end of the journal with one write and one
// fsync, and records where each certificate's line went. The caller holds
// the exclusive lock and has applied the entries to s.ix; certs maps an
// entry's position to its certificate's index in s.ix.Certs.
func (s *store) append(es []entry, certs map[int]int) error {
	data, ends, err := encodeEntries(es)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("ca: write index: %w", err)
	}
	n, err := f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		// Take back what reached the file, so no torn line stays for
		// the next writer to find in the middle of the journal.
		if n > 0 {
			if terr := f.Truncate(s.read); terr == nil {
				f.Sync()
			}
		}
		f.Close()
		return fmt.Errorf("ca: write index: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("ca: write index: %w", err)
	}
	start := 0
	for i, end := range ends {
		if ci, ok := certs[i]; ok {
			r := &s.ix.Certs[ci]
			r.loc, r.der = lineLoc{off: s.read + int64(start), n: int64(end - start)}, nil
		}
		start = end
	}
	s.read += int64(len(data))
	if fi, err := os.Stat(s.path); err == nil {
		s.fi = fi
	}
	return nil
}

// certDER returns the certificate of r: from memory if its line is not
// written yet, else read back from the journal.
func (s *store) certDER(r *certRecord) ([]byte, error) {
	if r.der != nil {
		return r.der, nil
	}
	if r.loc.n == 0 {
		return nil, fmt.Errorf("%w: certificate %s has no stored copy", ErrCorruptIndex, r.Serial)
	}
	f, err := os.Open(s.path)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	defer f.Close()
	line := make([]byte, r.loc.n)
	if _, err := f.ReadAt(line, r.loc.off); err != nil {
		return nil, fmt.Errorf("ca: read certificate %s: %w", r.Serial, err)
	}
	var e entry
	if err := json.Unmarshal(line, &e); err != nil || e.Op != opCert || e.Cert == nil || e.Cert.Serial != r.Serial || len(e.DER) == 0 {
		return nil, fmt.Errorf("%w: certificate %s is not where the index says", ErrCorruptIndex, r.Serial)
	}
	return e.DER, nil
}

// createJournal writes a journal holding a header and es, atomically;
// Init and the migration from index.json use it.
func createJournal(path string, es []entry) error {
	data, _, err := encodeEntries(append([]entry{{Op: opHeader, Version: journalVersion}}, es...))
	if err != nil {
		return err
	}
	if err := writeFileAtomic(path, data, 0o644); err != nil {
		return fmt.Errorf("ca: write index: %w", err)
	}
	return nil
}

// legacyIndex is index.json, version 1: the whole index rewritten on
// every change, certificates in certs/SERIAL.pem.
type legacyIndex struct {
	Version   int          `json:"version"`
	CRLNumber int64        `json:"crl_number"`
	CRLAt     time.Time    `json:"crl_at,omitzero"`
	Certs     []certRecord `json:"certs"`
}

const dirLegacyCerts = "certs"

// migrate turns a version 1 CA directory (index.json and certs/) into
// the journal, once, under the exclusive lock. index.json is kept as
// index.json.v1 for a downgrade; certs/ is left as it is.
func (a *Authority) migrate() error {
	jp := a.path(fileJournal)
	if _, err := os.Lstat(jp); err == nil {
		return nil
	}
	b, err := os.ReadFile(a.path(fileLegacyIndex))
	if errors.Is(err, fs.ErrNotExist) {
		return createJournal(jp, nil)
	}
	if err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	var old legacyIndex
	if err := json.Unmarshal(b, &old); err != nil {
		return fmt.Errorf("ca: %s: %w", a.path(fileLegacyIndex), err)
	}
	if old.Version != 1 {
		return fmt.Errorf("ca: %s: unknown version %d", a.path(fileLegacyIndex), old.Version)
	}
	var es []entry
	for _, r := range old.Certs {
		pemData, err := os.ReadFile(a.path(filepath.Join(dirLegacyCerts, r.Serial+".pem")))
		if err != nil {
			return fmt.Errorf("ca: migrate %s: %w", fileLegacyIndex, err)
		}
		c, err := identity.ParseCertificatePEM(pemData)
		if err != nil {
			return fmt.Errorf("ca: migrate %s: certificate %s: %w", fileLegacyIndex, r.Serial, err)
		}
		rec := r
		es = append(es, entry{Op: opCert, Cert: &rec, DER: c.Raw})
	}
	if old.CRLNumber > 0 {
		es = append(es, entry{Op: opCRL, Number: old.CRLNumber, At: old.CRLAt})
	}
	if err := createJournal(jp, es); err != nil {
		return err
	}
	if err := os.Rename(a.path(fileLegacyIndex), a.path(fileLegacyIndex+".v1")); err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	a.logger().Info("index migrated to the journal", "dir", a.dir, "certificates", len(old.Certs))
	return fsutil.SyncDir(a.dir)
}
