package e2e

import (
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/broker"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/identity"
)

// repoFile reads a file of the repository by its path from the root.
func repoFile(t *testing.T, path string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", filepath.FromSlash(path)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// brokerCA is a CA on disk with its certmaster service running on
// 127.0.0.30 (in this process: the CRL the brokers fetch).
type brokerCA struct {
	*ca.Authority
	addr string
}

func newBrokerCA(t *testing.T) *brokerCA {
	t.Helper()
	a, err := ca.Init(ca.Config{Dir: filepath.Join(t.TempDir(), "ca")})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.30:0")
	if err != nil {
		t.Fatal(err)
	}
	svc := &ca.Service{Authority: a}
	served := make(chan error, 1)
	go func() { served <- svc.Serve(ln) }()
	t.Cleanup(func() {
		svc.Close()
		<-served
	})
	return &brokerCA{Authority: a, addr: ln.Addr().String()}
}

func (c *brokerCA) issue(t *testing.T, role gofunc.Role, name string, ips ...string) *identity.Identity {
	t.Helper()
	var opts ca.IssueOptions
	for _, ip := range ips {
		opts.IPs = append(opts.IPs, net.ParseIP(ip))
	}
	id, err := c.Issue(role, name, opts)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// natsDial connects to url with id's certificate, retrying while the
// broker starts.
func natsDial(t *testing.T, url string, id *identity.Identity) *nats.Conn {
	t.Helper()
	var nc *nats.Conn
	eventually(t, hangTimeout, "connect to "+url, func() error {
		var err error
		nc, err = nats.Connect(url, nats.Secure(id.ClientTLSConfig("")), nats.Timeout(30*time.Second))
		return err
	})
	t.Cleanup(nc.Close)
	return nc
}

// crosses publishes on pub until sub receives: interest crosses routes
// a little after a subscription is made.
func crosses(t *testing.T, pub *nats.Conn, subject string, sub *nats.Subscription) {
	t.Helper()
	eventually(t, hangTimeout, "a message on "+subject+" across brokers", func() error {
		if err := pub.Publish(subject, []byte("x")); err != nil {
			return err
		}
		_, err := sub.NextMsg(200 * time.Millisecond)
		return err
	})
}

// TestClusterExample runs contrib/funcbroker/cluster as documented:
// three funcbroker processes, each configured by its brokerN.toml (host
// names replaced by 127.0.0.31-33, the certmaster by a real one), form
// a cluster; a call published on broker 1 reaches a minion on broker 3
// and the minion's answer comes back.
func TestClusterExample(t *testing.T) {
	t.Parallel()
	c := newBrokerCA(t)
	ipOf := func(i int) string { return "127.0.0.3" + string(rune('0'+i)) }
	for i := 1; i <= 3; i++ {
		ip := ipOf(i)
		dir := filepath.Join(t.TempDir(), "broker")
		if err := c.issue(t, gofunc.RoleBroker, "broker"+ip[len(ip)-1:]+".example.org", ip).Save(dir); err != nil {
			t.Fatal(err)
		}
		conf := repoFile(t, "contrib/funcbroker/cluster/broker"+string(rune('0'+i))+".toml")
		for j := 1; j <= 3; j++ {
			conf = strings.ReplaceAll(conf, "broker"+string(rune('0'+j))+".example.org", ipOf(j))
		}
		conf = strings.ReplaceAll(conf, `":4222"`, `"`+ip+`:4222"`)
		conf = strings.ReplaceAll(conf, `":6222"`, `"`+ip+`:6222"`)
		conf = strings.ReplaceAll(conf, "ca.example.org:51235", c.addr)
		writeFile(t, filepath.Join(dir, "gofunc.toml"), conf)
		daemon(t, "funcbroker", "--dir", dir)
	}
	aliceID := c.issue(t, gofunc.RoleOverlord, "alice")
	alice := natsDial(t, "nats://"+ipOf(1)+":4222", aliceID)
	minion := natsDial(t, "nats://"+ipOf(3)+":4222", c.issue(t, gofunc.RoleMinion, "web1.example.org"))
	callSubject, err := broker.CallSubject("web1.example.org")
	if err != nil {
		t.Fatal(err)
	}
	calls, err := minion.SubscribeSync(callSubject)
	if err != nil {
		t.Fatal(err)
	}
	inbox := broker.ReplyInbox(aliceID.Leaf())
	answers, err := alice.SubscribeSync(inbox + ".>")
	if err != nil {
		t.Fatal(err)
	}
	crosses(t, alice, callSubject, calls)
	crosses(t, minion, inbox+".1", answers)

	// Through broker 2 as well: the mesh is complete.
	bob := natsDial(t, "nats://"+ipOf(2)+":4222", c.issue(t, gofunc.RoleOverlord, "bob"))
	crosses(t, bob, callSubject, calls)

}

// TestSiteExample runs contrib/funcbroker/site as documented: a hub and
// a site broker (funcbroker processes configured by hub.toml and
// site.toml, host names replaced by 127.0.0.35 and .36, a real
// certmaster); an overlord on the hub calls a minion on the site broker
// and gets its answer.
func TestSiteExample(t *testing.T) {
	t.Parallel()
	c := newBrokerCA(t)
	const hubIP, siteIP = "127.0.0.35", "127.0.0.36"
	for _, b := range []struct{ name, ip string }{{"hub", hubIP}, {"site", siteIP}} {
		dir := filepath.Join(t.TempDir(), b.name)
		if err := c.issue(t, gofunc.RoleBroker, b.name+".example.org", b.ip).Save(dir); err != nil {
			t.Fatal(err)
		}
		conf := repoFile(t, "contrib/funcbroker/site/"+b.name+".toml")
		conf = strings.ReplaceAll(conf, "hub.example.org", hubIP)
		conf = strings.ReplaceAll(conf, `":4222"`, `"`+b.ip+`:4222"`)
		conf = strings.ReplaceAll(conf, `":7422"`, `"`+b.ip+`:7422"`)
		conf = strings.ReplaceAll(conf, "ca.example.org:51235", c.addr)
		writeFile(t, filepath.Join(dir, "gofunc.toml"), conf)
		daemon(t, "funcbroker", "--dir", dir)
	}
	aliceID := c.issue(t, gofunc.RoleOverlord, "alice")
	alice := natsDial(t, "nats://"+hubIP+":4222", aliceID)
	minion := natsDial(t, "nats://"+siteIP+":4222", c.issue(t, gofunc.RoleMinion, "pos1.shop.example.org"))
	callSubject, err := broker.CallSubject("pos1.shop.example.org")
	if err != nil {
		t.Fatal(err)
	}
	calls, err := minion.SubscribeSync(callSubject)
	if err != nil {
		t.Fatal(err)
	}
	inbox := broker.ReplyInbox(aliceID.Leaf())
	answers, err := alice.SubscribeSync(inbox + ".>")
	if err != nil {
		t.Fatal(err)
	}
	crosses(t, alice, callSubject, calls)
	crosses(t, minion, inbox+".1", answers)
}
