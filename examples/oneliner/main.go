// Oneliner is the smallest overlord program: the README's first line and
// nothing else. It pings every minion the overlord knows, using the
// identity in $GOFUNC_DIR or ~/.gofunc (see `func --help`).
//
//	go run ./examples/oneliner
//
// The repository's boundary test checks what this program links: not the
// certificate authority, not the job store's SQLite, not the
// certmaster's rate limiter. A program that only makes calls pays only
// for calls.
package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"slices"

	"github.com/gofunc/gofunc/overlord"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := overlord.New().Targets("*").Call(ctx, "test", "ping")
	for _, host := range slices.Sorted(maps.Keys(res)) {
		fmt.Println(host, res[host].Value, res[host].Err)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
