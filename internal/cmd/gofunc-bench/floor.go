package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gofunc/gofunc/identity"
)

// The floor is what the same fan-out costs with nothing of gofunc in
// it: HTTPS with TLS 1.3 and client certificates (mutual TLS, the chain
// and the server's name checked by crypto/tls), net/http on both ends,
// one small request and answer per host, no XML-RPC, no CRL, no roles,
// no ACL, no audit log. Its client runs in a process of its own (like
// the overlord) and its servers in the minions' process (one per
// minion, on the minion's address, with the minion's certificate), so
// that both share the machine the same way and are measured in the
// same run.

// floorRequest is the floor client's request body: the bytes of a
// test.ping call, so that both move the same bytes.
var floorRequest = []byte(`<?xml version="1.0"?><methodCall><methodName>test.ping</methodName><params></params></methodCall>`)

// newFloorServer serves floorBody over HTTPS to clients with a
// certificate signed by id's CA. With a durable log (-single), a
// request for durablePath first appends a line to it and waits until
// the line is on disk: the durable floor.
func newFloorServer(id *identity.Identity, durable *durableLog) *http.Server {
	return &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			if durable != nil && r.URL.Path == durablePath {
				if err := durable.append(); err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
			}
			w.Header().Set("Content-Type", "text/xml")
			_, _ = w.Write(floorBody)
		}),
		TLSConfig: &tls.Config{
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{*id.Certificate()},
			ClientCAs:    id.Roots(),
			ClientAuth:   tls.RequireAndVerifyClientCert,
		},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          nil,
	}
}

// floorCommand is what the parent asks the floor client to do.
type floorCommand struct {
	Op string `json:"op"` // "cold" or "warm"
}

// phaseResult is one fan-out's figures.
type phaseResult struct {
	Wall  time.Duration   `json:"wall_ns"`
	Hosts []time.Duration `json:"hosts_ns"`
	CPU   time.Duration   `json:"cpu_ns"` // the process's CPU during the fan-out
	IO    ioCount         `json:"io"`     // its read and write system calls during the fan-out
	Err   string          `json:"error,omitempty"`
	// Failed hosts, and the first failure.
	Failed       int    `json:"failed,omitempty"`
	FirstFailure string `json:"first_failure,omitempty"`
}

// runFloorClient is the floor's client process: it reads the fleet
// from dir/fleet.json and the overlord identity from dir/admin, then
// runs the fan-outs its stdin asks for, one JSON result per line on
// stdout. At the end of its input it prints its memory figures.
func runFloorClient(dir string, forks int, mode benchTransport) error {
	var info fleetInfo
	b, err := os.ReadFile(filepath.Join(dir, "fleet.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return err
	}
	admin, err := identity.Load(filepath.Join(dir, "admin"))
	if err != nil {
		return err
	}
	fc := &floorClient{admin: admin, forks: forks, addrs: make(map[string]string, len(info.Floor))}
	for _, m := range info.Floor {
		fc.addrs[m.Name] = m.Addr
		fc.hosts = append(fc.hosts, m.Name)
	}
	if _, ok := mode.(floorServer); ok {
		nfc, err := newNATSFloorClient(dir, admin, fc.hosts, forks)
		if err != nil {
			return err
		}
		return serveFloorRuns(nfc)
	}
	return serveFloorRuns(fc)
}

// A floorRunner runs the floor client's fan-outs: op "cold" on a new
// connection (or connections), "warm" on the kept one.
type floorRunner interface {
	run(op string) phaseResult
	close()
}

// serveFloorRuns runs the fan-outs stdin asks for, one JSON result per
// line on stdout, and at the end of its input prints the process's
// memory figures.
func serveFloorRuns(fr floorRunner) error {
	defer fr.close()
	in := json.NewDecoder(bufio.NewReader(os.Stdin))
	out := json.NewEncoder(os.Stdout)
	for {
		var cmd floorCommand
		if err := in.Decode(&cmd); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return err
		}
		if err := out.Encode(fr.run(cmd.Op)); err != nil {
			return err
		}
	}
	return out.Encode(readMemory())
}

type floorClient struct {
	admin *identity.Identity
	forks int
	hosts []string
	addrs map[string]string // name -> floor server address
	warm  *http.Transport   // made by the first warm run
}

func (fc *floorClient) run(op string) phaseResult {
	switch op {
	case "cold":
		tr := fc.newTransport()
		defer tr.CloseIdleConnections()
		return fc.fanout(tr)
	case "warm":
		if fc.warm == nil {
			fc.warm = fc.newTransport()
		}
		return fc.fanout(fc.warm)
	}
	return phaseResult{Err: fmt.Sprintf("unknown op %q", op)}
}

func (fc *floorClient) close() {
	if fc.warm != nil {
		fc.warm.CloseIdleConnections()
	}
}

// newTransport is a fresh net/http transport, tuned as the overlord's
// was before it had its own: 4 KiB buffers, kept-alive connections, no
// compression, the dial timeout as handshake timeout.
func (fc *floorClient) newTransport() *http.Transport {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, _ := net.SplitHostPort(addr)
			return dialer.DialContext(ctx, network, fc.addrs[host])
		},
		TLSClientConfig: &tls.Config{
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{*fc.admin.Certificate()},
			RootCAs:      fc.admin.Roots(),
		},
		TLSHandshakeTimeout: 5 * time.Second,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		WriteBufferSize:     4 << 10,
		ReadBufferSize:      4 << 10,
	}
}

// fanout posts floorRequest to every floor server, at most forks at a
// time, as the overlord's workers do.
func (fc *floorClient) fanout(tr *http.Transport) phaseResult {
	client := &http.Client{Transport: tr}
	hosts := make([]time.Duration, len(fc.hosts))
	var failed atomic.Int64
	var firstErr atomic.Value
	var next atomic.Int64
	cpu0, io0, start := cpuTime(), procIO("self"), time.Now()
	var g errgroup.Group
	for range min(fc.forks, len(fc.hosts)) {
		g.Go(func() error {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(fc.hosts) {
					return nil
				}
				t0 := time.Now()
				if err := fc.call(client, fc.hosts[i]); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
				hosts[i] = time.Since(t0)
			}
		})
	}
	_ = g.Wait()
	res := phaseResult{Wall: time.Since(start), Hosts: hosts, CPU: cpuTime() - cpu0, IO: procIO("self").sub(io0)}
	if n := failed.Load(); n > 0 {
		res.Failed = int(n)
		res.FirstFailure = fmt.Sprintf("%d of %d hosts failed; first: %v", n, len(fc.hosts), firstErr.Load())
	}
	return res
}

// durablePath is the durable floor's URL path (-single).
const durablePath = "/durable"

func (fc *floorClient) call(client *http.Client, host string) error {
	return fc.callPath(client, host, "/RPC2")
}

// callPath posts floorRequest to the floor server of host at path and
// checks the answer.
func (fc *floorClient) callPath(client *http.Client, host, path string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+host+":51234"+path, bytes.NewReader(floorRequest))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/xml")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var buf [512]byte
	n, err := io.ReadFull(resp.Body, buf[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Equal(buf[:n], floorBody) {
		return fmt.Errorf("%s: unexpected answer %s %q", host, resp.Status, strings.TrimSpace(string(buf[:n])))
	}
	return nil
}
