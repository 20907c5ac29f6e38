package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"golang.org/x/sync/errgroup"

	"github.com/gofunc/gofunc/broker"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/internal/sigmemo"
)

// The broker floor (-transport broker) is what the same fan-out costs
// over a broker with the bare signed protocol and nothing else of
// gofunc: a bare nats-server (TLS 1.3, client certificates from the
// bench's CA required; no gofunc authentication callback, no subject
// permissions, no CRL) in a process of its own; per minion one nats.go
// connection with the minion's certificate, subscribed to its own
// floor subject; the overlord's side (in the floor client's process)
// one nats.go connection with the overlord's certificate. A call is
// signed once per group of targets (the overlord's group size) with
// ECDSA P-256 over the SHA-256 of the request; each minion checks that
// signature with the overlord's key (pinned: no chain, no CRL, no role)
// and the deadline, and answers a fixed ping-sized payload signed by
// its own key over (request hash || answer); the overlord checks every
// answer's signature with the minion's key. No headers, no
// acknowledgement, no XML-RPC, no ACL, no audit log, no replay cache.

// floorBrokerEnv, set in the environment, makes the bench run as the
// floor's bare broker process; its value is the directory of the
// broker's identity (the gofunc broker's, brokerDir), where the file
// "floor-url" says where to listen.
const floorBrokerEnv = "GOFUNC_BENCH_FLOOR_BROKER_DIR"

func init() { runAsProcess(floorBrokerEnv, "bench floor broker", runFloorBroker) }

func floorBrokerURL(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(brokerDir(dir), "floor-url"))
	return strings.TrimSpace(string(b)), err
}

// runFloorBroker is the floor's broker process: a bare nats-server on
// the URL in dir/floor-url with the identity in dir, until SIGTERM.
func runFloorBroker(dir string) error {
	id, listen, stop, err := brokerProcess(dir, "floor-url")
	if err != nil {
		return err
	}
	defer stop()
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return err
	}
	srv, err := server.NewServer(&server.Options{
		Host: host, Port: p, NoSigs: true, NoLog: true,
		TLS: true, TLSVerify: true, TLSTimeout: 10, AuthTimeout: 10,
		TLSConfig: &tls.Config{
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{*id.Certificate()},
			ClientCAs:    id.Roots(),
			ClientAuth:   tls.RequireAndVerifyClientCert,
		},
	})
	if err != nil {
		return err
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return errors.New("not ready after 30s")
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer cancel()
	<-ctx.Done()
	srv.Shutdown()
	srv.WaitForShutdown()
	return nil
}

// floorTLS is a nats.go client's TLS: id's certificate, the broker's
// checked against id's CA (crypto/tls checks the chain and the IP SAN).
func floorTLS(id *identity.Identity) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{*id.Certificate()}, RootCAs: id.Roots()}
}

// dialFloor connects to the floor's broker with id, keeping on trying
// while a loaded broker refuses (every minion dials at once), and
// returns once connected.
func dialFloor(ctx context.Context, url string, id *identity.Identity) (*nats.Conn, error) {
	nc, err := nats.Connect(url, nats.Secure(floorTLS(id)), nats.Name(id.Name()), nats.Timeout(10*time.Second),
		nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(time.Second))
	if err != nil {
		return nil, err
	}
	for !nc.IsConnected() {
		if ctx.Err() != nil {
			nc.Close()
			return nil, ctx.Err()
		}
		time.Sleep(20 * time.Millisecond) // polling nats.go's state; it has no "connected" channel
	}
	return nc, nil
}

func floorSubject(name string) string { return "floor." + strings.ReplaceAll(name, ".", "_") }

// A floor request is floorMagic, a 16-byte call id, the deadline (Unix
// nanoseconds, 8 bytes big-endian), the signature's length (1 byte),
// the overlord's signature and the body. The signature is over the
// SHA-256 of everything but itself (the request hash): the signed head
// and the body. An answer is the minion's signature's length, the
// signature over SHA-256(request hash || answer body), then the body.
const (
	floorMagic    = "gffloor1"
	floorHeadSize = len(floorMagic) + 16 + 8
)

var errFloorFrame = errors.New("floor: malformed frame")

// floorRequestHead is the signed head of a request.
func floorRequestHead(id [16]byte, deadline time.Time) []byte {
	head := make([]byte, 0, floorHeadSize)
	head = append(head, floorMagic...)
	head = append(head, id[:]...)
	return binary.BigEndian.AppendUint64(head, uint64(deadline.UnixNano()))
}

// floorHash is the request hash: SHA-256 over the head and the body.
func floorHash(head, body []byte) [32]byte {
	h := sha256.New()
	h.Write(head)
	h.Write(body)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// floorAnswerHash is what a minion signs: SHA-256(request hash || body).
func floorAnswerHash(request [32]byte, body []byte) [32]byte {
	h := sha256.New()
	h.Write(request[:])
	h.Write(body)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// encodeFloorRequest lays out a request (see floorMagic).
func encodeFloorRequest(head, sig, body []byte) []byte {
	b := make([]byte, 0, len(head)+1+len(sig)+len(body))
	b = append(b, head...)
	b = append(b, byte(len(sig)))
	b = append(b, sig...)
	return append(b, body...)
}

// parsedFloorRequest is a request read by parseFloorRequest.
type parsedFloorRequest struct {
	hash     [32]byte // the request hash, which the signature covers
	deadline time.Time
	sig      []byte
}

// parseFloorRequest reads a request; a short or foreign frame is
// errFloorFrame.
func parseFloorRequest(b []byte) (parsedFloorRequest, error) {
	var r parsedFloorRequest
	if len(b) < floorHeadSize+1 || string(b[:len(floorMagic)]) != floorMagic {
		return r, errFloorFrame
	}
	n := int(b[floorHeadSize])
	if n == 0 || len(b) < floorHeadSize+1+n {
		return r, errFloorFrame
	}
	r.deadline = time.Unix(0, int64(binary.BigEndian.Uint64(b[len(floorMagic)+16:])))
	r.sig = b[floorHeadSize+1 : floorHeadSize+1+n]
	r.hash = floorHash(b[:floorHeadSize], b[floorHeadSize+1+n:])
	return r, nil
}

// splitFloorAnswer reads an answer: the signature and the body.
func splitFloorAnswer(b []byte) (sig, body []byte, err error) {
	if len(b) < 1 || b[0] == 0 || len(b) < 1+int(b[0]) {
		return nil, nil, errFloorFrame
	}
	return b[1 : 1+int(b[0])], b[1+int(b[0]):], nil
}

// floorShape makes the broker floor's messages more like gofunc's, to
// measure what each difference costs: an acknowledgement frame per
// call, requests and answers padded to gofunc's sizes (-floor-ack,
// -floor-call-bytes, -floor-answer-bytes). Zero: the bare protocol.
type floorShapeFlags struct {
	ack                    bool
	callBytes, answerBytes int
}

var floorShape floorShapeFlags

// floorCall and floorAnswer are the floor's request and answer bodies:
// floorRequest and floorBody, padded as floorShape says.
var floorCall, floorAnswer = floorRequest, floorBody

// floorAck is the acknowledgement frame (-floor-ack): one zero byte,
// which no answer starts with.
var floorAck = []byte{0}

func (f floorShapeFlags) apply() {
	floorCall = padded(floorRequest, f.callBytes-floorHeadSize-1-72)
	floorAnswer = padded(floorBody, f.answerBytes-1-72)
}

// padded is b with spaces up to n bytes (b itself when n is smaller).
func padded(b []byte, n int) []byte {
	if n <= len(b) {
		return b
	}
	return append(append([]byte(nil), b...), bytes.Repeat([]byte{' '}, n-len(b))...)
}

// args passes the shape to the bench's child processes.
func (f floorShapeFlags) args() []string {
	return []string{"-floor-ack=" + strconv.FormatBool(f.ack), "-floor-call-bytes", strconv.Itoa(f.callBytes),
		"-floor-answer-bytes", strconv.Itoa(f.answerBytes)}
}

// String is what the bench's first line says of the shape ("" for the
// bare protocol).
func (f floorShapeFlags) String() string {
	if f == (floorShapeFlags{}) {
		return ""
	}
	return fmt.Sprintf(", floor shaped: ack %v, call %d bytes, answer %d bytes", f.ack, f.callBytes, f.answerBytes)
}

// floorCallMemo is the floor's memo of the overlord's signatures
// verified (-verify-memo), process-wide like gofunc's
// (broker.SetCallVerifyMemo) and of the same kind, so that both sides
// are measured alike.
var floorCallMemo sigmemo.Memo

// floorMinion is one minion's floor responder in a minions' process.
type floorMinion struct {
	id       *identity.Identity
	key      crypto.Signer
	overlord *ecdsa.PublicKey
	spki     []byte // the overlord's key, DER (the memo's key)
	nc       *nats.Conn
}

// answer handles one request: the deadline and the overlord's
// signature checked (cheapest first), the fixed answer signed. A request that fails a
// check gets an empty answer, which the overlord counts as failed.
func (f *floorMinion) answer(m *nats.Msg) {
	if floorShape.ack {
		_ = m.Respond(floorAck)
	}
	r, err := parseFloorRequest(m.Data)
	if err != nil || time.Now().After(r.deadline) || !floorCallMemo.Verify(f.overlord, f.spki, r.hash[:], r.sig) {
		_ = m.Respond(nil)
		return
	}
	sum := floorAnswerHash(r.hash, floorAnswer)
	sig, err := f.key.Sign(rand.Reader, sum[:], crypto.SHA256)
	if err != nil || len(sig) > 255 {
		_ = m.Respond(nil)
		return
	}
	out := make([]byte, 0, 1+len(sig)+len(floorAnswer))
	out = append(append(append(out, byte(len(sig))), sig...), floorAnswer...)
	_ = m.Respond(out)
}

// floorMinions are a minions' process's floor responders.
type floorMinions struct {
	mu       sync.Mutex
	overlord *ecdsa.PublicKey
	spki     []byte
	waiting  []*floorMinion
	conns    []*nats.Conn
}

// add prepares a responder for minion id (the overlord's key read once
// from dir/admin).
func (fm *floorMinions) add(dir string, id *identity.Identity) error {
	fm.mu.Lock()
	defer fm.mu.Unlock()
	if fm.overlord == nil {
		admin, err := identity.Load(filepath.Join(dir, "admin"))
		if err != nil {
			return err
		}
		pub, ok := admin.Leaf().PublicKey.(*ecdsa.PublicKey)
		if !ok {
			return errors.New("floor: the overlord's key is not ECDSA")
		}
		fm.overlord, fm.spki = pub, admin.Leaf().RawSubjectPublicKeyInfo
	}
	key, ok := id.Certificate().PrivateKey.(crypto.Signer)
	if !ok {
		return fmt.Errorf("floor: %s: the key cannot sign", id.Name())
	}
	fm.waiting = append(fm.waiting, &floorMinion{id: id, key: key, overlord: fm.overlord, spki: fm.spki})
	return nil
}

// connectAll dials every waiting responder at once and returns when
// each is connected and its subscription known to the broker.
func (fm *floorMinions) connectAll(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	fm.mu.Lock()
	defer fm.mu.Unlock()
	var g errgroup.Group
	conns := make([]*nats.Conn, len(fm.waiting))
	for i, f := range fm.waiting {
		g.Go(func() error {
			nc, err := dialFloor(ctx, url, f.id)
			if err != nil {
				return fmt.Errorf("floor minion %s: %w", f.id.Name(), err)
			}
			conns[i], f.nc = nc, nc
			if _, err := nc.Subscribe(floorSubject(f.id.Name()), f.answer); err != nil {
				return err
			}
			return nc.FlushTimeout(time.Minute)
		})
	}
	err := g.Wait()
	fm.waiting = nil
	for _, nc := range conns {
		if nc != nil {
			fm.conns = append(fm.conns, nc)
		}
	}
	return err
}

func (fm *floorMinions) close() {
	fm.mu.Lock()
	defer fm.mu.Unlock()
	for _, nc := range fm.conns {
		nc.Close()
	}
	fm.conns = nil
}

// natsFloorClient is the overlord's side of the broker floor, in the
// floor client's process.
type natsFloorClient struct {
	url   string
	admin *identity.Identity
	key   crypto.Signer
	forks int
	hosts []string
	ders  map[string][]byte // each minion's certificate, read at start
	warm  *floorSession     // made by the first warm run
}

func newNATSFloorClient(dir string, admin *identity.Identity, hosts []string, forks int) (*natsFloorClient, error) {
	url, err := floorBrokerURL(dir)
	if err != nil {
		return nil, err
	}
	key, ok := admin.Certificate().PrivateKey.(crypto.Signer)
	if !ok {
		return nil, errors.New("floor: the overlord's key cannot sign")
	}
	fc := &natsFloorClient{url: url, admin: admin, key: key, forks: forks, hosts: hosts, ders: make(map[string][]byte, len(hosts))}
	for _, h := range hosts {
		id, err := identity.Load(filepath.Join(dir, "ids", h))
		if err != nil {
			return nil, err
		}
		fc.ders[h] = id.Leaf().Raw
	}
	return fc, nil
}

// floorSession is one connection of the floor's overlord: a cold run
// makes a new one (its dial not timed, as gofunc's new Client's), a
// warm run reuses one. Each minion's key is parsed from its certificate
// on its first answer and kept.
type floorSession struct {
	fc    *natsFloorClient
	nc    *nats.Conn
	inbox string

	mu      sync.Mutex
	pending map[string]chan *nats.Msg
	keys    map[string]*ecdsa.PublicKey
}

// session dials the floor's broker and subscribes to its answers.
func (fc *natsFloorClient) session(ctx context.Context) (*floorSession, error) {
	nc, err := dialFloor(ctx, fc.url, fc.admin)
	if err != nil {
		return nil, err
	}
	s := &floorSession{fc: fc, nc: nc, inbox: "floorrpl." + nats.NewInbox()[len(nats.InboxPrefix):],
		pending: map[string]chan *nats.Msg{}, keys: map[string]*ecdsa.PublicKey{}}
	sub, err := nc.Subscribe(s.inbox+".>", s.receive)
	if err == nil {
		_ = sub.SetPendingLimits(-1, 512<<20)
		err = nc.FlushTimeout(time.Minute)
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	return s, nil
}

func (s *floorSession) close() { s.nc.Close() }

func (s *floorSession) receive(m *nats.Msg) {
	key, ok := strings.CutPrefix(m.Subject, s.inbox+".")
	if !ok {
		return
	}
	s.mu.Lock()
	ch := s.pending[key]
	s.mu.Unlock()
	if ch != nil {
		select {
		case ch <- m:
		default: // a second answer: the first counts
		}
	}
}

// fanout calls every host, a group at a time per worker as gofunc's
// overlord does through a batch transport: groups of min(256, forks/4)
// hosts, forks/group-size groups in flight, one signature per group,
// each host bounded by the hosts' timeout (30 s).
func (s *floorSession) fanout() phaseResult {
	hosts := s.fc.hosts
	size := max(1, min(broker.MaxAudience, s.fc.forks/4))
	var groups [][]int
	for from := 0; from < len(hosts); from += size {
		var g []int
		for i := from; i < min(from+size, len(hosts)); i++ {
			g = append(g, i)
		}
		groups = append(groups, g)
	}
	times := make([]time.Duration, len(hosts))
	var failed atomic.Int64
	var firstErr atomic.Value
	var next atomic.Int64
	cpu0, io0, start := cpuTime(), procIO("self"), time.Now()
	var g errgroup.Group
	for range min(max(1, s.fc.forks/size), len(groups)) {
		g.Go(func() error {
			for {
				k := int(next.Add(1)) - 1
				if k >= len(groups) {
					return nil
				}
				s.callGroup(groups[k], times, func(err error) {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				})
			}
		})
	}
	_ = g.Wait()
	res := phaseResult{Wall: time.Since(start), Hosts: times, CPU: cpuTime() - cpu0, IO: procIO("self").sub(io0)}
	if n := failed.Load(); n > 0 {
		res.Failed = int(n)
		res.FirstFailure = fmt.Sprintf("%d of %d hosts failed; first: %v", n, len(hosts), firstErr.Load())
	}
	return res
}

// floorHostTimeout bounds each host's call, as the overlord's
// WithHostTimeout in the bench; the minion is given 95% of it.
const floorHostTimeout = 30 * time.Second

// callGroup signs one request for the group's hosts (indexes into
// s.fc.hosts), publishes it to each with its own reply subject, and
// waits for and verifies each answer.
func (s *floorSession) callGroup(group []int, times []time.Duration, fail func(error)) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), floorHostTimeout)
	defer cancel()
	var id [16]byte
	_, _ = rand.Read(id[:])
	head := floorRequestHead(id, start.Add(floorHostTimeout*95/100))
	request := floorHash(head, floorCall)
	sig, err := s.fc.key.Sign(rand.Reader, request[:], crypto.SHA256)
	if err == nil && len(sig) > 255 {
		err = errors.New("signature too long")
	}
	if err != nil {
		for range group {
			fail(fmt.Errorf("sign: %w", err))
		}
		return
	}
	data := encodeFloorRequest(head, sig, floorCall)
	prefix := hex.EncodeToString(id[:]) + "."
	chans := make([]chan *nats.Msg, len(group))
	s.mu.Lock()
	for k := range group {
		chans[k] = make(chan *nats.Msg, 2) // the answer, and the ack before it (-floor-ack)
		s.pending[prefix+strconv.Itoa(k)] = chans[k]
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		for k := range group {
			delete(s.pending, prefix+strconv.Itoa(k))
		}
		s.mu.Unlock()
	}()
	sent := make([]error, len(group))
	for k, i := range group {
		sent[k] = s.nc.PublishMsg(&nats.Msg{Subject: floorSubject(s.fc.hosts[i]), Reply: s.inbox + "." + prefix + strconv.Itoa(k), Data: data})
	}
	for k, i := range group {
		err := sent[k]
		for acked := !floorShape.ack; err == nil; {
			select {
			case m := <-chans[k]:
				if !acked && bytes.Equal(m.Data, floorAck) {
					acked = true
					continue
				}
				err = s.check(s.fc.hosts[i], m, request)
			case <-ctx.Done():
				err = ctx.Err()
			}
			break
		}
		times[i] = time.Since(start)
		if err != nil {
			fail(fmt.Errorf("%s: %w", s.fc.hosts[i], err))
		}
	}
}

// check verifies an answer: the fixed body, signed by host's key over
// this request.
func (s *floorSession) check(host string, m *nats.Msg, request [32]byte) error {
	if len(m.Data) == 0 {
		if m.Header.Get("Status") == "503" {
			return nats.ErrNoResponders
		}
		return errors.New("refused")
	}
	sig, body, err := splitFloorAnswer(m.Data)
	if err != nil {
		return err
	}
	pub, err := s.key(host)
	if err != nil {
		return err
	}
	sum := floorAnswerHash(request, body)
	if !ecdsa.VerifyASN1(pub, sum[:], sig) {
		return errors.New("bad answer signature")
	}
	if string(body) != string(floorAnswer) {
		return errors.New("unexpected answer")
	}
	return nil
}

// key is host's public key, parsed from its certificate once per
// session.
func (s *floorSession) key(host string) (*ecdsa.PublicKey, error) {
	s.mu.Lock()
	pub := s.keys[host]
	s.mu.Unlock()
	if pub != nil {
		return pub, nil
	}
	cert, err := x509.ParseCertificate(s.fc.ders[host])
	if err != nil {
		return nil, err
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("not an ECDSA key")
	}
	s.mu.Lock()
	s.keys[host] = pub
	s.mu.Unlock()
	return pub, nil
}

// run is one fan-out of the floor: "cold" on a new connection (dialled
// before the clock starts, as gofunc's cold runs make their Client
// first) whose key cache starts empty, "warm" on the kept one.
func (fc *natsFloorClient) run(op string) phaseResult {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	switch op {
	case "cold":
		s, err := fc.session(ctx)
		if err != nil {
			return phaseResult{Err: err.Error()}
		}
		defer s.close()
		return s.fanout()
	case "warm":
		if fc.warm == nil {
			s, err := fc.session(ctx)
			if err != nil {
				return phaseResult{Err: err.Error()}
			}
			fc.warm = s
		}
		return fc.warm.fanout()
	}
	return phaseResult{Err: fmt.Sprintf("unknown op %q", op)}
}

func (fc *natsFloorClient) close() {
	if fc.warm != nil {
		fc.warm.close()
	}
}
