package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/internal/fsutil"
)

// brokerFile is DIR/broker.json: the brokers --broker last named and
// reached, and the CA they were used with. Later runs without --broker
// go through them, as they use the certmaster they remember; --broker
// none goes to the minions' ports and forgets them.
const brokerFile = "broker.json"

// brokerNone is the --broker value that means "no broker".
const brokerNone = "none"

// rememberedBroker is brokerFile's content.
type rememberedBroker struct {
	Brokers       []string `json:"brokers"`
	CAFingerprint string   `json:"ca_fingerprint"` // sha256:<hex>: used only with an identity of this CA
}

// resolveBroker settles e.cli.Broker before the command runs: the
// flag (or GOFUNC_BROKER, or gofunc.toml) wins; "none" means direct
// calls, and forgets the remembered brokers; else the remembered ones,
// when they were used with this identity's CA.
func (e *env) resolveBroker() {
	path := filepath.Join(e.dir(), brokerFile)
	if slices.Contains(e.cli.Broker, brokerNone) {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			e.warn("cannot forget the broker: %v", err)
		}
		e.cli.Broker = nil
		return
	}
	if len(e.cli.Broker) > 0 {
		e.brokerGiven = true
		return
	}
	saved, err := loadBroker(path)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		e.warn("ignoring %s: %v", brokerFile, err)
		return
	}
	id, err := identity.Load(e.dir())
	if err != nil {
		return // the command reports the missing identity
	}
	if saved.CAFingerprint != id.CAFingerprint() {
		e.warn("ignoring %s: it names brokers of another CA", brokerFile)
		return
	}
	e.cli.Broker = saved.Brokers
}

// rememberBroker writes brokerFile after a broker named on this run
// was reached with id.
func (e *env) rememberBroker(id *identity.Identity) {
	if !e.brokerGiven {
		return
	}
	entry := rememberedBroker{Brokers: e.cli.Broker, CAFingerprint: id.CAFingerprint()}
	path := filepath.Join(e.dir(), brokerFile)
	if saved, err := loadBroker(path); err == nil && slices.Equal(saved.Brokers, entry.Brokers) && saved.CAFingerprint == entry.CAFingerprint {
		return
	}
	err := fsutil.WriteJSON(path, entry, 0o644)
	if err != nil {
		e.warn("cannot remember the broker: %v", err)
	}
}

// loadBroker reads a brokerFile.
func loadBroker(path string) (rememberedBroker, error) {
	var r rememberedBroker
	if err := fsutil.ReadJSON(path, fsutil.MaxRememberedBytes, &r); err != nil {
		return r, err
	}
	if len(r.Brokers) == 0 || slices.Contains(r.Brokers, "") {
		return r, fmt.Errorf("no broker URL")
	}
	return r, nil
}
