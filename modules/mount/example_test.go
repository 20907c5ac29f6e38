package mount_test

import (
	"fmt"
	"log"
	"strings"

	"github.com/gofunc/gofunc/modules/mount"
)

func ExampleParseMountInfo() {
	const table = `22 27 0:21 / /proc rw,relatime - proc proc rw
40 27 8:1 /home/user/My\040Docs /srv/my\040docs rw,nosuid shared:12 - ext4 /dev/sda1 rw
`
	mounts, err := mount.ParseMountInfo(strings.NewReader(table))
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range mounts {
		fmt.Printf("%s on %q type %s (%s)\n", m.Device, m.Mountpoint, m.Fstype, m.Options)
	}
	// Output:
	// proc on "/proc" type proc (rw,relatime)
	// /dev/sda1 on "/srv/my docs" type ext4 (rw,nosuid)
}
