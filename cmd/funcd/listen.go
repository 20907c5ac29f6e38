package main

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/gofunc/gofunc/internal/fsutil"
	"github.com/gofunc/gofunc/minion"
)

// listenFile, in the identity directory, remembers the address funcd
// was told to listen on, so that a restart with only --dir listens
// there again instead of on every address. Like certmaster.json, it is
// state funcd keeps, not configuration an admin writes.
const listenFile = "funcd.json"

// Where the listen address came from, as --info shows it.
const (
	listenFromConfig  = "config" // --listen, GOFUNC_LISTEN or a config file
	listenFromFile    = listenFile
	listenFromDefault = "default"
)

type savedListen struct {
	Listen string `json:"listen"`
}

// resolveListen fills in d.Listen when no flag, variable or config file
// set it: the remembered address, else ":51234". It says where the
// address came from.
func (d *daemon) resolveListen() string {
	if d.Listen != "" {
		return listenFromConfig
	}
	s, err := loadListen(d.Dir)
	switch {
	case err == nil:
		d.Listen = s.Listen
		return listenFromFile
	case !errors.Is(err, fs.ErrNotExist):
		d.log.Warn("ignoring the remembered listen address", "error", err)
	}
	d.Listen = minion.DefaultAddr
	return listenFromDefault
}

// rememberListen saves an address given by configuration, when it is
// not the one remembered already; failing is loud but not fatal.
func (d *daemon) rememberListen() {
	if d.listenSource != listenFromConfig {
		return
	}
	if s, err := loadListen(d.Dir); err == nil && s.Listen == d.Listen {
		return
	}
	if err := fsutil.WriteJSON(filepath.Join(d.Dir, listenFile), savedListen{Listen: d.Listen}, 0o644); err != nil {
		d.log.Warn("could not remember the listen address; pass --listen on every start", "error", err)
	}
}

// loadListen reads DIR/funcd.json; the error matches fs.ErrNotExist
// when there is none.
func loadListen(dir string) (savedListen, error) {
	var s savedListen
	path := filepath.Join(dir, listenFile)
	if err := fsutil.ReadJSON(path, fsutil.MaxRememberedBytes, &s); err != nil {
		return s, err
	}
	if s.Listen == "" {
		return s, fmt.Errorf("%s: no listen address", path)
	}
	return s, nil
}
