package ca

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/identity"
)

// The CA's errors are faults: the same errors.Is answer on the
// certmaster as in the client that receives them, with the detail
// wrapped around a sentinel on the wire and nothing of an internal
// error.
func TestErrorsCrossTheWireAsFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err      error
		want     *gofunc.Fault
		wantText string
	}{
		{fmt.Errorf("%w: no pending request matches %q", ErrNotFound, "x*"), gofunc.ErrNotFound, `not found: no pending request matches "x*"`},
		{fmt.Errorf("%w: %w", ErrBadRequest, &identity.NameError{Name: "a/b", Reason: "character '/' not allowed"}), gofunc.ErrBadArgs, `bad request: identity: bad name "a/b"`},
		{fmt.Errorf("%w: %w: m1", errNotAllowed, identity.ErrRevoked), gofunc.ErrDenied, "not allowed: identity: certificate revoked: m1"},
		{errTokenExpired, gofunc.ErrDenied, "enrollment token refused: token expired"},
		{ErrTooManyRequests, gofunc.ErrBusy, "the certmaster holds too many requests; try again later"},
		{gofunc.Errorf(gofunc.CodeParse, "not XML"), gofunc.ErrParse, "not XML"},
		{errors.New("ca: write index: disk full"), gofunc.ErrInternal, "internal error"},
	}
	for _, tt := range tests {
		f := toFault(tt.err)
		if !errors.Is(f, tt.want) || (tt.want != gofunc.ErrInternal && !errors.Is(tt.err, tt.want)) {
			t.Errorf("toFault(%v) = %v, want code %v on both sides", tt.err, f, tt.want.Code)
		}
		if !strings.HasPrefix(f.Message, tt.wantText) || strings.Contains(f.Message, "fault ") {
			t.Errorf("toFault(%v).Message = %q, want %q...", tt.err, f.Message, tt.wantText)
		}
	}
}
