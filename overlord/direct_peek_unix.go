//go:build unix

package overlord

import (
	"errors"
	"syscall"
)

// canPeek: an idle connection is checked with a non-blocking peek at
// its socket before it is reused.
const canPeek = true

// peek looks at the socket without blocking or consuming anything: an
// idle connection on which the minion has sent something (a TLS alert,
// close_notify) or which it has closed is not reused. It always
// reports done (true) to RawConn.Read, having set mc.peeked.
func (mc *minionConn) peek(fd uintptr) bool {
	var b [1]byte
	n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	switch {
	case errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK) || errors.Is(err, syscall.EINTR):
		mc.peeked = false // nothing to read: alive
	default:
		mc.peeked = err != nil || n >= 0 // data, EOF (n == 0) or an error: done for
	}
	return true
}
