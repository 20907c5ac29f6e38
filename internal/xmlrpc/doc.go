// Package xmlrpc is gofunc's XML-RPC codec. The minion and the
// certmaster decode calls and encode responses with it; every client
// (the overlord, and the enrollment, renewal and CRL clients of package
// identity) takes the same three steps: [EncodeRequest] (encoded by
// github.com/kolo/xmlrpc, which the design requires on the client side),
// [DecodeResponse] (this package's bounded decoder) and [Unmarshal] (one
// conversion into Go values). It interoperates with kolo and with
// Python 3's xmlrpc.client, which is the reference client.
//
// # Decoding
//
// [DecodeCall] and [DecodeResponse] parse with the package's own streaming
// scanner, driven by the XML-RPC grammar: anything the grammar does not
// allow is an error, never silently skipped. The scanner keeps
// encoding/xml's strict-mode rules (which documents are well-formed,
// entities, character checks, namespaces) but reads a window of the body at
// a time and copies text in runs, about ten times faster, with no
// allocation beyond the decoded values; a differential fuzz test holds it
// to the encoding/xml decoder it replaced. [ReadCallHead] reads a call in
// two stages, the method name first. They are bounded by [Limits] (body
// size, nesting depth, number of values) and refuse DOCTYPE and other
// directives, processing instructions after the XML declaration, declared
// encodings other than UTF-8 and US-ASCII, and trailing content after the
// document. Errors are *gofunc.Fault values ready to send back: CodeParse
// for malformed XML, CodeInvalid for well-formed XML that is not valid
// XML-RPC, CodeTooLarge for a body over a limit.
//
// A server that judges calls by their method name reads them in two
// stages with [ReadCallHead]: the name first (within [MaxHeadBytes]),
// then either [CallReader.Params] or, for a call it refuses,
// [CallReader.Skip], which reads the rest in constant memory and counts
// and digests it.
//
// Decoded values use a small fixed model:
//
//	<int>, <i4>, <i8>, <i1>, <i2>, <ex:i8>   int64
//	<boolean> (0 or 1)                       bool
//	<string>, untyped <value>text</value>    string
//	<double>                                 float64 (NaN and infinities refused)
//	<base64>                                 []byte (whitespace ignored)
//	<dateTime.iso8601>                       time.Time in UTC
//	<array>                                  []any
//	<struct>                                 map[string]any (duplicate names refused)
//	<nil/>, <ex:nil/>                        nil
//
// Every integer tag decodes to int64, within its width: <int> and <i4> are
// 32 bits as the spec says, and a bigger value there is refused
// (CodeInvalid, "out of range"); 64-bit values go in <i8>. kolo/xmlrpc
// writes any Go integer as <int>, so [EncodeRequest], the clients'
// encoder, moves those beyond 32 bits into <i8>. A <param> with no <value> (kolo's encoding of a nil
// argument) decodes as nil, but an empty <value/> is the empty string, as
// the spec says (kolo sends nil pointers so). Numbers, booleans and times
// may have white space around them; strings are kept exactly. Times with no
// zone are taken as UTC; times with an offset are converted to UTC;
// fractional seconds are refused.
//
// # Encoding
//
// [EncodeCall], [EncodeResponse] and [EncodeFault] write Go values by
// reflection, with encoders cached per type, into a buffer that reaches the
// writer in one Write only when the whole document encoded: a value that
// cannot be encoded never leaves half a document behind. The mapping:
//
//   - integers: <int> in the int32 range, <i8> beyond (Python reads <i8>);
//     a uint64 above math.MaxInt64 is an error;
//   - floats: <double> in plain decimal notation (no exponent, as the
//     spec asks); NaN and infinities are errors;
//   - strings: <string>, escaped. A string that is not valid UTF-8, or that
//     holds a character XML 1.0 cannot carry (such as \x00 or the \x1b of
//     terminal colours), is sent as <base64> of its bytes instead of
//     failing the whole response: command output is the usual source of
//     such strings, and losing it would be worse than changing its type.
//     [Convert] accepts []byte for string targets, so a Go peer reading
//     into a string gets the original bytes back;
//   - []byte and [N]byte: <base64>; time.Time: <dateTime.iso8601> in UTC,
//     to the second, "20060102T15:04:05";
//   - nil, nil pointers and nil interfaces: <nil/>. Nil slices and maps are
//     sent as an empty <array> or <struct>, since Go code returns nil for
//     "none" and clients should not need allow_none for that;
//   - slices and arrays: <array>; maps with string keys: <struct> with its
//     members in sorted key order;
//   - structs: <struct>, member names from the `xmlrpc:"name"` tag
//     (`xmlrpc:"-"` skips a field, `,omitempty` as in encoding/json, and
//     it also leaves out a zero time.Time), else
//     [SnakeCase] of the field name; unexported fields are skipped and
//     embedded structs are flattened with encoding/json's rules;
//   - values implementing encoding.TextMarshaler (netip.Addr, ...): their
//     text as a <string>;
//   - pointers and interfaces are followed. Values nested deeper than 128
//     levels, and reference cycles, are errors, not stack overflows.
//
// Encoding errors are *[EncodeError] values naming the path of the bad
// part; a server sends them to its caller as CodeInternal.
//
// # Converting
//
// [Convert] turns a decoded value into a Go parameter type, the inverse of
// encoding, strictly: see its documentation for the rules. Its errors are
// CodeBadArgs faults naming the path of the offending part.
package xmlrpc
