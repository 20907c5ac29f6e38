package watch_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/gofunc/gofunc/events"
	"github.com/gofunc/gofunc/events/watch"
)

// Watchers from a gofunc.toml, run into a minion's journal: the first
// check reports what each finds, later ones only changes.
func ExampleStart() {
	dir, err := os.MkdirTemp("", "watch-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	conf := filepath.Join(dir, "app.conf")
	os.WriteFile(conf, []byte("debug = false\n"), 0o644)

	ws, err := watch.Parse([]byte(`
[[watch]]
type = "file"
name = "app config"
path = "` + conf + `"
every = "1h"
`))
	if err != nil {
		log.Fatal(err)
	}
	j, err := events.Open(filepath.Join(dir, "events"), events.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer j.Close()
	r, err := watch.Start(watch.Options{Sink: j}, ws)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()

	next := func(after uint64) events.Event {
		ctx, cancel := contextFor(time.Minute)
		defer cancel()
		if err := j.Wait(ctx, after); err != nil {
			log.Fatal(err)
		}
		b, _ := j.Since(events.Request{})
		evs, _ := events.Receive("web1.example.org", b.Lines)
		return evs[after]
	}
	first := next(0)
	fmt.Println(first.Seq, first.Source, first.Type)
	os.WriteFile(conf, []byte("debug = true\n"), 0o644) // inotify wakes the watcher
	second := next(1)
	d, _ := second.Decode()
	fmt.Println(second.Seq, second.Source, second.Type, d.(*events.FileChanged).Changed)
	// Output:
	// 1 app config file.changed
	// 2 app config file.changed [content size]
}

func contextFor(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
