package users_test

import (
	"fmt"
	"log"
	"strings"

	"github.com/gofunc/gofunc/modules/users"
)

func ExampleParsePasswd() {
	const passwd = `root:x:0:0:root:/root:/bin/bash
# comments and NIS lines are skipped
+@netgroup::::::
alice:x:1000:1000:Alice Liddell:/home/alice:/bin/zsh
`
	accounts, err := users.ParsePasswd(strings.NewReader(passwd))
	if err != nil {
		log.Fatal(err)
	}
	for _, u := range accounts {
		fmt.Println(u.Name, u.UID, u.Home, u.Shell)
	}
	// Output:
	// root 0 /root /bin/bash
	// alice 1000 /home/alice /bin/zsh
}
