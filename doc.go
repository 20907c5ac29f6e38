// Package gofunc holds the vocabulary that both ends of a gofunc call
// share: fault codes, the Fault error type, module documentation types
// and the caller's identity. The working packages are
//
//   - overlord: the fan-out client that sends module.method calls to many minions;
//   - minion: the embeddable server that runs them, with mutual TLS, ACLs and audit;
//   - ca: the certificate authority, the certmaster service and enrollment;
//   - audit: the hash-chained, tamper-evident log every call is written to first;
//   - modules: the built-in modules (test, command, service, facts, ...).
//
// (This package comment is completed as the packages land.)
package gofunc
