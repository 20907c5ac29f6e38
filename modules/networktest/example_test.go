package networktest_test

import (
	"fmt"

	"github.com/gofunc/gofunc/modules/networktest"
)

func ExampleCheckHost() {
	for _, h := range []string{"db1.example.com", "10.0.0.7", "-rf", "web; reboot"} {
		fmt.Println(h, networktest.CheckHost(h) == nil)
	}
	// Output:
	// db1.example.com true
	// 10.0.0.7 true
	// -rf false
	// web; reboot false
}
