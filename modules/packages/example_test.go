package packages_test

import (
	"fmt"
	"log"
	"strings"

	"github.com/gofunc/gofunc/modules/packages"
)

func ExampleParseAptSimulate() {
	const out = `Inst dpkg [1.21.22] (1.21.23 Debian:12.14/oldstable [amd64])
Conf dpkg (1.21.23 Debian:12.14/oldstable [amd64])
Inst login [1:4.13+dfsg1-1] (1:4.13+dfsg1-2 Debian-Security:12/stable-security [amd64])
`
	updates, err := packages.ParseAptSimulate(strings.NewReader(out))
	if err != nil {
		log.Fatal(err)
	}
	for _, u := range updates {
		fmt.Printf("%s %s -> %s security=%v\n", u.Name, u.Current, u.Available, u.Security)
	}
	// Output:
	// dpkg 1.21.22 -> 1.21.23 security=false
	// login 1:4.13+dfsg1-1 -> 1:4.13+dfsg1-2 security=true
}
