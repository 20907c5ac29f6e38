# @summary One host's answer, as `func --json` prints it.
#
# `ok` is true when the call succeeded; `value` is what the method
# returned (undef on failure), with integers, booleans, doubles, binary
# (Binary), times (Timestamp), arrays and hashes as the minion sent
# them; `error` is undef on success, else the host's failure: `kind`
# (fault, unreachable, timeout, rejected, untrusted, impersonation,
# protocol, skipped, canceled, ...), `code` (the fault code: -32001
# denied, -32601 no such method, 1 the module's own error, ...; undef
# for failures that are not faults) and a one-line `message`.
type Gofunc::Result = Struct[{
  ok    => Boolean,
  value => Any,
  error => Optional[Struct[{
    kind    => String,
    code    => Optional[Integer],
    message => String,
  }]],
}]
