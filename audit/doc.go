// Package audit is gofunc's tamper-evident record of everything done: an
// append-only, hash-chained log of JSON lines. The minion writes a
// record before a call runs (and refuses the call if it cannot) and one
// when it ends; the certmaster records requests, signatures, rejections,
// revocations and token use; the overlord records the calls it issues.
//
//	trail, err := audit.Open("/var/lib/gofunc/audit.log", audit.Config{})
//	if err != nil {
//		return err
//	}
//	defer trail.Close()
//	args, digest := audit.SummarizeArgs(params, methodDoc.Args)
//	if _, err := trail.Append(audit.Record{
//		Kind: audit.KindCallStart, CallID: id, Caller: peer.Name,
//		Method: "command.run", Args: args, ArgsDigest: digest,
//	}); err != nil {
//		return gofunc.Errorf(gofunc.CodeAuditFailed, "call %s not run", id)
//	}
//
// # Format
//
// Each record is one line: the encoding/json.Marshal output of a Record
// (fields in declaration order, Time in UTC, Duration as integer
// nanoseconds, "hash" last) followed by "\n". Seq is 1 for the first
// record of a chain and grows by one per record; Prev is the previous
// record's Hash, and "" (Genesis) for seq 1.
//
// Hash is the lower-case hex SHA-256 of the line (without its newline)
// as it reads with the hash value empty, that is ending in
// ,"hash":""} . The line written is those same bytes with the 64 hex
// digits put between the last two quotes. To check line 5 by hand,
// delete the 64 digits and hash what is left:
//
//	sed -n 5p audit.log | sed -E 's/"hash":"[0-9a-f]{64}"}$/"hash":""}/' | head -c -1 | sha256sum
//
// Because the hash covers the bytes, any edit of a record is detected;
// because each record names its predecessor's hash and seq, a deleted,
// inserted or reordered record breaks the chain after it. The hash is
// not keyed: someone able to write the file can rebuild the chain after
// any change, and records cut off the end leave a shorter valid chain.
// Checkpoints kept elsewhere catch that. The minion sends one with
// every answer (the Gofunc-Audit-Head header) and the overlord keeps
// them in its own log (KindOverlordHeads records); Witnesses reads them
// back and VerifyWitnessed checks a log against them.
//
// # Durability and failures
//
// Append returns only when its record has been written and fsynced.
// Concurrent Appends share writes and fsyncs (group commit): one fsync
// runs at a time, covering every record written before it started, and
// records are written while it runs, for the next one. If a write
// fails, Append returns an error wrapping ErrWrite and the file is
// truncated back to its last complete record, so that no torn line is
// left inside the chain; if even that fails, the Log refuses every
// later Append until it is reopened. If an fsync fails, every Append
// waiting for one returns an error wrapping ErrWrite and the Log
// refuses every later Append until it is reopened: after a failed
// fsync the kernel may have dropped pages it could not write, so no
// later fsync can vouch for the file. A Log made by New over an
// arbitrary writer cannot truncate, so it refuses further Appends
// after any failure that may have left bytes behind.
//
// A crash can still leave a torn final line. Verify reports it as
// ErrTorn, distinct from ErrTampered. Open moves it to path.torn-SEQ,
// cuts it off and appends a "log.recovered" record describing it.
//
// # Rotation
//
// When a batch would take the live file past Config.MaxFileBytes
// (64 MiB by default), the live file is renamed path.000001,
// path.000002, ... (numbered in chain order) and a new live file is
// started; the chain continues across files. Files lists them in
// order; Verify(Files(path)...) checks the whole chain, and VerifyFrom
// checks later files alone against a saved Checkpoint.
//
// Config.KeepRotated bounds the disk a log uses: past that many rotated
// files the oldest are deleted (Prune), after the checkpoint of their
// last record is saved to path.anchor, where Verify starts the chain of
// the files that remain.
//
// # Files and permissions
//
// The log is created 0600, its directory 0700 if Open creates it. Open
// takes an exclusive lock on path.lock so that two writers never fork
// the chain. Records hold summaries of arguments, never secrets: see
// SummarizeArgs.
//
// # Command line
//
// The CLI's "func audit verify FILE..." is Verify (or VerifyLog for a
// single live path), and "func audit query" is Query with a Filter,
// printing each record as a JSON line or with Record.String.
package audit
