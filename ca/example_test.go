package ca_test

import (
	"crypto/tls"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/identity"
)

func ExampleInit() {
	dir, err := os.MkdirTemp("", "ca")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	authority, err := ca.Init(ca.Config{Dir: dir, Name: "example CA"})
	if err != nil {
		log.Fatal(err)
	}
	fp := authority.Fingerprint() // what minions pin
	fmt.Println(strings.HasPrefix(fp, "sha256:"), len(fp))
	fmt.Println(authority.Certificate().Subject.CommonName)

	_, err = ca.Init(ca.Config{Dir: dir})
	fmt.Println(err != nil)
	// Output:
	// true 71
	// example CA
	// true
}

// Two identities from one CA talk mutual TLS; the server learns who
// called, with the role the CA gave.
func ExampleAuthority_Issue() {
	dir, err := os.MkdirTemp("", "ca")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	authority, err := ca.Init(ca.Config{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	minion, err := authority.Issue(gofunc.RoleMinion, "web1.example", ca.IssueOptions{})
	if err != nil {
		log.Fatal(err)
	}
	admin, err := authority.Issue(gofunc.RoleOverlord, "alice", ca.IssueOptions{})
	if err != nil {
		log.Fatal(err)
	}

	ln, err := tls.Listen("tcp", "127.0.0.1:0", minion.ServerTLSConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	peers := make(chan gofunc.Peer, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			return
		}
		p, _ := identity.PeerFromConnState(tc.ConnectionState())
		peers <- p
	}()
	conn, err := tls.Dial("tcp", ln.Addr().String(), admin.ClientTLSConfig("web1.example"))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	p := <-peers
	fmt.Println(p.Name, p.Role)
	fmt.Println(identity.RoleOf(conn.ConnectionState().PeerCertificates[0]))
	// Output:
	// alice overlord
	// minion
}
