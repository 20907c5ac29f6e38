package ca

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/gofunc/gofunc/audit"
)

// txn is one change of the CA's state, made under the exclusive lock.
// Code that changes the state records what it does in the txn instead of
// writing at once, and the txn commits it in the order that keeps the
// CA's promises:
//
//  1. the audit records, as one batch (one fsync): nothing happens that
//     the audit log does not announce first;
//  2. the file changes (stored requests, tokens: a token's use is spent
//     before the certificate it signs exists);
//  3. the journal entries, as one append (one fsync): a certificate
//     exists once its line is durable;
//  4. the clean-ups that must follow a certificate (its request file
//     removed).
//
// Several enrollment requests share one txn (see Authority.Submit), so
// a burst of them costs two fsyncs, not two per signature.
type txn struct {
	a  *Authority
	ix *index

	audits  []txAudit
	effects []func() error // step 2
	entries []entry        // step 3, already applied to ix
	certs   map[int]int    // entry position -> index in ix.Certs
	after   []func() error // step 4
	changes int            // state changes recorded (anything but audits)
	// critical marks a revocation: it may use the disk reserve.
	critical bool

	reqs     map[string]*requestRecord // DIR/requests as this txn leaves it; nil value: removed
	tokens   *tokenFile                // loaded on first use
	tokDirty bool
}

type txAudit struct {
	ev event
	// refusal records are kept when the operation fails: they are the
	// record of the refusal itself.
	refusal bool
}

// audit records ev; it is written before anything else the txn does,
// and dropped if the operation fails.
func (tx *txn) audit(ev event) { tx.audits = append(tx.audits, txAudit{ev: ev}) }

// refusal records ev, an operation refused; it is written even when the
// operation returns an error.
func (tx *txn) refusal(ev event) { tx.audits = append(tx.audits, txAudit{ev: ev, refusal: true}) }

// record applies e to the index now and appends it to the journal at
// commit. der is the certificate of an opCert entry.
func (tx *txn) record(e entry) error {
	if err := tx.ix.apply(e.head()); err != nil {
		return err
	}
	if e.Op == opCert {
		ci := len(tx.ix.Certs) - 1
		tx.ix.Certs[ci].der = e.DER
		if tx.certs == nil {
			tx.certs = map[int]int{}
		}
		tx.certs[len(tx.entries)] = ci
	}
	tx.entries = append(tx.entries, e)
	tx.changes++
	return nil
}

// effect runs fn after the audit records are durable and before the
// journal is written.
func (tx *txn) effect(fn func() error) {
	tx.effects = append(tx.effects, fn)
	tx.changes++
}

// afterJournal runs fn once the journal is written.
func (tx *txn) afterJournal(fn func() error) {
	tx.after = append(tx.after, fn)
	tx.changes++
}

// savepoint is where a txn stood; rollback returns to it.
type savepoint struct{ audits, changes int }

func (tx *txn) savepoint() savepoint { return savepoint{len(tx.audits), tx.changes} }

// rollback drops what was recorded since sp, except refusals. It
// reports false when that is impossible because the state changed (a
// journal entry or a file change was recorded): the caller must then
// fail the whole txn.
func (tx *txn) rollback(sp savepoint) bool {
	if tx.changes != sp.changes {
		return false
	}
	kept := tx.audits[:sp.audits]
	for _, r := range tx.audits[sp.audits:] {
		if r.refusal {
			kept = append(kept, r)
		}
	}
	tx.audits = kept
	return true
}

// update runs fn in a txn under the exclusive lock and commits it. When
// fn fails, only the refusals it recorded are written (when nothing else
// changed; otherwise nothing is) and fn's error is returned. ctx bounds
// the wait for the lock, not the txn: a txn once begun is finished.
func (a *Authority) update(ctx context.Context, fn func(tx *txn) error) error {
	return a.updateTx(ctx, false, fn)
}

// updateTx is update; critical txns (revocations) may use the disk
// reserve.
func (a *Authority) updateTx(ctx context.Context, critical bool, fn func(tx *txn) error) error {
	a.ensureReserve()
	unlock, err := a.lock.lock(ctx, lockExclusive)
	if err != nil {
		return err
	}
	defer unlock()
	// A panic in fn or in the commit (an audit sink's, say) leaves the
	// cached index holding changes that may not be written: drop it
	// before the lock goes, as a failed commit does.
	defer func() {
		if p := recover(); p != nil {
			a.st.ix = nil
			panic(p)
		}
	}()
	ix, err := a.st.refresh(true, a.logger().Warn)
	if err != nil {
		return err
	}
	tx := &txn{a: a, ix: ix, critical: critical}
	if err := fn(tx); err != nil {
		if tx.rollback(savepoint{}) {
			if werr := tx.writeAudits(); werr != nil {
				a.logger().Error("audit of a refused operation failed", "error", werr)
			}
		} else {
			a.st.ix = nil // the cached index holds changes that were not written
		}
		return err
	}
	return tx.commit()
}

// view runs fn on the index under the shared lock; ctx bounds the wait
// for the lock. fn must not change the index.
func (a *Authority) view(ctx context.Context, fn func(ix *index) error) error {
	unlock, err := a.lock.lock(ctx, lockShared)
	if err != nil {
		return err
	}
	defer unlock()
	ix, err := a.st.refresh(false, a.logger().Warn)
	if err != nil {
		return err
	}
	return fn(ix)
}

// commit writes what the txn recorded, in the order documented on txn.
// On failure the cached index is dropped, to be read again from the
// journal.
func (tx *txn) commit() error {
	if err := tx.commitSteps(); err != nil {
		tx.a.st.ix = nil
		return err
	}
	return nil
}

func (tx *txn) commitSteps() error {
	if err := tx.step(tx.writeAudits); err != nil {
		return err
	}
	for _, fn := range tx.effects {
		if err := tx.step(fn); err != nil {
			return err
		}
	}
	if tx.tokDirty {
		if err := tx.step(func() error { return tx.a.writeTokens(tx.tokens) }); err != nil {
			return err
		}
	}
	if len(tx.entries) > 0 {
		if err := tx.step(func() error { return tx.a.st.append(tx.entries, tx.certs) }); err != nil {
			return err
		}
	}
	var errs []error
	for _, fn := range tx.after {
		errs = append(errs, tx.step(fn))
	}
	return errors.Join(errs...)
}

// step runs one commit step. Each step either completes or leaves
// nothing behind (the audit log and the journal take back a partial
// write, other files are replaced atomically), so a critical txn
// (a revocation) that finds the disk full frees the reserve and tries
// the step again.
func (tx *txn) step(fn func() error) error {
	err := fn()
	if err != nil && tx.critical && errors.Is(err, syscall.ENOSPC) && tx.a.releaseReserve() {
		err = fn()
	}
	return err
}

// writeAudits writes the recorded audit records as one batch.
func (tx *txn) writeAudits() error {
	if len(tx.audits) == 0 {
		return nil
	}
	evs := make([]event, len(tx.audits))
	for i, r := range tx.audits {
		evs[i] = r.ev
	}
	if err := tx.a.auditBatch(evs); err != nil {
		return err
	}
	tx.audits = nil
	return nil
}

// readRequest returns the stored request for name as this txn sees it.
func (tx *txn) readRequest(name string) (*requestRecord, error) {
	if rr, ok := tx.reqs[name]; ok {
		if rr == nil {
			return nil, nil
		}
		c := *rr
		return &c, nil
	}
	return tx.a.readRequest(name)
}

// writeRequest stores rr (after the audit records).
func (tx *txn) writeRequest(rr requestRecord) {
	tx.setReq(rr.Name, &rr)
	tx.effect(func() error { return tx.a.writeRequest(rr) })
}

// removeRequest drops the stored request for name once the journal is
// written: a crash in between leaves a request for a name that has its
// certificate, which Submit and Sign recognize.
func (tx *txn) removeRequest(name string) {
	tx.setReq(name, nil)
	tx.afterJournal(func() error { return tx.a.removeRequest(name) })
}

func (tx *txn) setReq(name string, rr *requestRecord) {
	if tx.reqs == nil {
		tx.reqs = map[string]*requestRecord{}
	}
	tx.reqs[name] = rr
}

// tokenFile returns the tokens as this txn sees them.
func (tx *txn) tokenFile() (*tokenFile, error) {
	if tx.tokens == nil {
		tf, err := tx.a.readTokens()
		if err != nil {
			return nil, err
		}
		tx.tokens = tf
	}
	return tx.tokens, nil
}

// tokensChanged makes commit write the tokens (after the audit records,
// before the journal).
func (tx *txn) tokensChanged() {
	tx.tokDirty = true
	tx.changes++
}

// auditBatch writes evs to the audit log with one write where the log
// can (audit.BatchAppender).
func (a *Authority) auditBatch(evs []event) error {
	if a.cfg.Audit == nil || len(evs) == 0 {
		return nil
	}
	recs := make([]audit.Record, len(evs))
	for i, ev := range evs {
		recs[i] = ev.record()
	}
	var err error
	if b, ok := a.cfg.Audit.(audit.BatchAppender); ok {
		_, err = b.AppendBatch(recs)
	} else {
		for _, r := range recs {
			if _, err = a.cfg.Audit.Append(r); err != nil {
				break
			}
		}
	}
	if err != nil {
		a.logger().Error("audit write failed", "kind", recs[0].Kind, "records", len(recs), "error", err)
		return fmt.Errorf("ca: audit: %w", err)
	}
	return nil
}
