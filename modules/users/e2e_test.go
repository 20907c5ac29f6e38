package users_test

import (
	"errors"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/modules/users"
)

func TestOverMTLS(t *testing.T) {
	f := fleettest.Start(t, fleettest.Config{Subnet: "127.0.45"})
	sel := f.Overlord().Targets("*")
	res, err := sel.Call(t.Context(), "users", "info", "root")
	if err != nil {
		t.Fatal(err)
	}
	var info users.UserInfo
	if err := res["m1.test"].Decode(&info); err != nil {
		t.Fatal(err)
	}
	if info.Name != "root" || info.UID != 0 || info.Group != "root" {
		t.Errorf("users.info(root) over the wire = %+v", info)
	}
	res, err = sel.Call(t.Context(), "users", "user_exists", "no-such-user-gofunc")
	if err != nil || res["m1.test"].Value != false {
		t.Errorf("users.user_exists(missing) = %#v, %v", res["m1.test"].Value, err)
	}
	// add_user is Dangerous: denied by the default ACL, before anything runs.
	_, err = sel.Call(t.Context(), "users", "add_user", "gofunc-e2e", map[string]any{"shell": "/bin/sh"})
	if !errors.Is(err, gofunc.ErrDenied) {
		t.Errorf("users.add_user under the default ACL = %v, want denied", err)
	}
}
