package identity_test

import (
	"testing"

	"github.com/gofunc/gofunc/identity"
)

func TestVouchedAddr(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		m    identity.MinionInfo
		want string
		ok   bool
	}{
		{"own name", identity.MinionInfo{Name: "web1", Addr: "WEB1:51234", Seen: "10.0.0.9"}, "WEB1:51234", true},
		{"certificate IP", identity.MinionInfo{Name: "web1", Addr: "10.0.0.1:51234", IPs: []string{"10.0.0.7", "10.0.0.1"}}, "10.0.0.1:51234", true},
		{"seen IP", identity.MinionInfo{Name: "web1", Addr: "10.0.0.9:4000", Seen: "10.0.0.9"}, "10.0.0.9:4000", true},
		{"IPv6 seen", identity.MinionInfo{Name: "web1", Addr: "[fd00::0:9]:4000", Seen: "fd00::9"}, "[fd00::9]:4000", true},
		{"another IP: seen wins", identity.MinionInfo{Name: "web1", Addr: "10.0.0.2:22", IPs: []string{"10.0.0.7"}, Seen: "10.0.0.9"}, "10.0.0.9:22", false},
		{"another IP: certificate's", identity.MinionInfo{Name: "web1", Addr: "10.0.0.2:22", IPs: []string{"10.0.0.7"}}, "10.0.0.7:22", false},
		{"another name", identity.MinionInfo{Name: "web1", Addr: "db1:5432"}, "web1:5432", false},
		{"no port", identity.MinionInfo{Name: "web1", Addr: "db1"}, "web1:51234", false},
	} {
		got, ok := tc.m.VouchedAddr()
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: VouchedAddr = %s, %v; want %s, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}
