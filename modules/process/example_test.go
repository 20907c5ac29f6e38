package process_test

import (
	"fmt"

	"github.com/gofunc/gofunc/modules/process"
)

func ExampleParseSignal() {
	for _, s := range []any{"TERM", "sigkill", int64(1), "STOP"} {
		sig, err := process.ParseSignal(s)
		fmt.Println(int(sig), err == nil)
	}
	// Output:
	// 15 true
	// 9 true
	// 1 true
	// 0 false
}
