package overlord_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/overlord"
	"github.com/gofunc/gofunc/overlord/sqlitejobs"
)

func ExampleSelection_Stream() {
	f, err := fleettest.New(fleettest.Config{Minions: 3})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	var lines []string
	for r, err := range f.Overlord().Targets("*").Stream(context.Background(), "test", "add", 1, 2) {
		if err != nil {
			fmt.Println(r.Host, "failed:", err)
			continue
		}
		lines = append(lines, fmt.Sprint(r.Host, " ", r.Value)) // in arrival order
	}
	slices.Sort(lines)
	fmt.Println(strings.Join(lines, "\n"))
	// Output:
	// m1.test 3
	// m2.test 3
	// m3.test 3
}

func ExampleSelection_CallAsync() {
	f, err := fleettest.New(fleettest.Config{Minions: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	dir, err := os.MkdirTemp("", "jobs")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	store := sqlitejobs.New(filepath.Join(dir, sqlitejobs.FileName))
	defer store.Close()
	c := f.Client(overlord.WithJobStore(store))
	ctx := context.Background()
	job, err := c.Targets("*").CallAsync(ctx, "test", "ping")
	if err != nil {
		fmt.Println(err)
		return
	}
	done, err := c.WaitJob(ctx, job.ID)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(done.State, done.Answered, "of", len(done.Hosts), "answered")
	for _, h := range done.Results.Hosts() {
		fmt.Println(h, done.Results[h].Value)
	}
	// Output:
	// done 2 of 2 answered
	// m1.test true
	// m2.test true
}

func ExampleSelection_Batch() {
	f, err := fleettest.New(fleettest.Config{Minions: 4})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	f.Minions()[0].SetFault(fleettest.Fault{Err: fmt.Errorf("nginx did not come back")})
	// Two hosts at a time; stop at the first failure.
	res, _ := f.Overlord().Targets("*").Batch(overlord.Batch{Size: 2}).Call(context.Background(), "test", "ping")
	for _, h := range res.Hosts() {
		if err := res[h].Err; err != nil {
			fmt.Println(h, overlord.ErrorKind(err))
		} else {
			fmt.Println(h, "ok")
		}
	}
	// Output:
	// m1.test fault
	// m2.test ok
	// m3.test skipped
	// m4.test skipped
}

func ExampleParseGroups() {
	groups, err := overlord.ParseGroups(strings.NewReader(`
# web tier
[web]
hosts = web*;cache1.example.com
hosts = @db:db1*
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(groups["web"])
	// Output:
	// web*;cache1.example.com;@db:db1*
}
