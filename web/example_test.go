package web_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/overlord"
	"github.com/gofunc/gofunc/web"
)

// A dashboard served by an ordinary http.Server: it calls the minions
// with its own delegate certificate, and a person (alice, viewer) reads
// the Fleet page's JSON twin with hers.
func ExampleNew() {
	f, err := fleettest.New(fleettest.Config{Minions: 2, Subnet: "127.0.26"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	self, err := f.CA.Issue(gofunc.RoleDelegate, "funcweb", ca.IssueOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		fmt.Println(err)
		return
	}
	var minions overlord.Static
	for _, m := range f.Minions() {
		minions = append(minions, overlord.Minion{Name: m.Name, Addr: m.Addr})
	}
	client := overlord.New(overlord.WithIdentity(self), overlord.WithMinions(minions))
	defer client.Close()

	dash, err := web.New(web.Config{Overlord: client, CA: web.LocalCA(f.CA)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer dash.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := &http.Server{Handler: dash, TLSConfig: self.ServerTLSConfig()}
	go srv.ServeTLS(ln, "", "")
	defer srv.Close()

	alice, err := f.CA.Issue(gofunc.RoleViewer, "alice", ca.IssueOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	browser := &http.Client{Transport: &http.Transport{TLSClientConfig: alice.ClientTLSConfig("127.0.0.1")}}
	req, _ := http.NewRequest("GET", "https://"+ln.Addr().String()+"/fleet", nil)
	req.Header.Set("Accept", "application/json")
	resp, err := browser.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	var page struct {
		Minions []struct {
			Name        string `json:"name"`
			Certificate *struct {
				Serial string `json:"serial"`
			} `json:"certificate"`
		} `json:"minions"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.Status)
	for _, m := range page.Minions {
		fmt.Println(m.Name, m.Certificate != nil && m.Certificate.Serial != "")
	}
	// Output:
	// 200 OK
	// m1.test true
	// m2.test true
}
