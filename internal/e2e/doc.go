// Package e2e holds end-to-end tests that run gofunc's real binaries
// (funcd, certmaster, func) as processes on loopback, and drive them
// with clients nobody here wrote (Python's xmlrpc.client, curl).
package e2e
