package gofunc_test

import (
	"errors"
	"fmt"

	"github.com/gofunc/gofunc"
)

func ExampleFault_Is() {
	// A fault decoded from a minion's answer...
	remote := &gofunc.Fault{Code: gofunc.CodeDenied, Message: "admin (overlord) may not call reboot.reboot"}
	// ...wrapped on its way up...
	err := fmt.Errorf("web1: %w", remote)
	// ...still matches the sentinel for its code.
	fmt.Println(errors.Is(err, gofunc.ErrDenied), errors.Is(err, gofunc.ErrTimeout))
	// Output: true false
}

func ExampleErrorf() {
	err := gofunc.Errorf(gofunc.CodeBadArgs, "argv is empty")
	fmt.Println(err)
	// Output: fault -32602 (bad arguments): argv is empty
}
