package reboot_test

import (
	"fmt"

	"github.com/gofunc/gofunc/modules/reboot"
)

func ExampleCheckMessage() {
	fmt.Println(reboot.CheckMessage("kernel update, back in 5 minutes") == nil)
	fmt.Println(reboot.CheckMessage("line one\nline two") == nil)
	// Output:
	// true
	// false
}
