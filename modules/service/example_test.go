package service_test

import (
	"fmt"

	"github.com/gofunc/gofunc/modules/service"
)

func ExampleCheckUnitName() {
	for _, name := range []string{"nginx", "getty@tty1.service", "nginx; reboot", "--force"} {
		fmt.Println(name, service.CheckUnitName(name) == nil)
	}
	// Output:
	// nginx true
	// getty@tty1.service true
	// nginx; reboot false
	// --force false
}
