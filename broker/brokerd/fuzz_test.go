package brokerd

import (
	"errors"
	"testing"
)

// The address and URL parsers behind Config never panic, and what they
// accept is usable by nats-server: a port in range (-1 for "any"), a
// nats URL with a host and a port and no credentials.
func FuzzConfigAddresses(f *testing.F) {
	for _, s := range []string{":4222", "127.0.0.1:0", "[::1]:6222", "nats://127.0.0.2:6222", "tls://h:1", "x", "nats://u:p@h:1", ":99999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if _, port, err := hostPort("listen", s); err == nil {
			if port != -1 && (port < 1 || port > 65535) {
				t.Fatalf("%q: port %d accepted", s, port)
			}
		} else if !errors.Is(err, ErrConfig) {
			t.Fatalf("%q: %v is not ErrConfig", s, err)
		}
		if us, err := parseURLs("route", []string{s}); err == nil {
			u := us[0]
			if u.Host == "" || u.Port() == "" || u.User != nil || (u.Scheme != "nats" && u.Scheme != "tls") {
				t.Fatalf("%q accepted as %v", s, u)
			}
		} else if !errors.Is(err, ErrConfig) {
			t.Fatalf("%q: %v is not ErrConfig", s, err)
		}
	})
}
