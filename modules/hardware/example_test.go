package hardware_test

import (
	"context"
	"fmt"
	"log"

	"github.com/gofunc/gofunc/modules/hardware"
)

// Static facts tell the overlord what a host cannot know about itself.
func ExampleFacts_Get() {
	facts := &hardware.Facts{Static: map[string]string{"datacenter": "fra1"}}
	dc, err := facts.Get(context.Background(), "datacenter")
	if err != nil {
		log.Fatal(err)
	}
	system, err := facts.Get(context.Background(), "system")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(dc, system)
	// Output:
	// fra1 linux
}
