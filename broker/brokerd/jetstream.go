package brokerd

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gofunc/gofunc/broker"
)

// Defaults of the JetStream settings of Config.
const (
	// DefaultJobsMaxAge is how long GF_JOBS and GF_RESULTS keep a
	// message: the longest a job may wait for its minion, and its result
	// for a collector.
	DefaultJobsMaxAge = 7 * 24 * time.Hour
	// resultDuplicates is how long GF_RESULTS remembers a result's
	// Nats-Msg-Id, so that a minion re-sending a result whose PubAck it
	// lost stores it once (a later duplicate is harmless: collectors
	// keep one answer per minion).
	resultDuplicates = time.Hour
	// jobDuplicates is the same for job envelopes (an overlord retrying
	// a submission).
	jobDuplicates = 10 * time.Minute
)

// JetStream subjects of the roles (see Permissions).
var (
	// A minion reads its jobs by direct get on GF_JOBS. The direct-get
	// API names the subject wanted in the request's body
	// (next_by_subj), not in the API subject (that form, "$JS.API.DIRECT.
	// GET.<stream>.<subject>", serves only the last message of a
	// subject), so a permission cannot limit a minion to its own job
	// subject: it could read other minions' job envelopes. They are
	// signed for their audience, so reading one can never make it run
	// anywhere else; what leaks is what a job asks (method and
	// arguments) — README "Jobs over the broker".
	minionDirectGet = broker.DirectGetPrefix + broker.JobStream
	// overlordJobSubjects: publish jobs, records and doorbells, read
	// both streams by direct get. Answers come on the overlord's inbox
	// (ReplyInbox(cert).>), which it may already subscribe to.
	overlordJobSubjects = []string{
		broker.JobPrefix + "*", broker.JobRecordPrefix + "*", broker.BellPrefix + "*",
		broker.DirectGetPrefix + broker.JobStream, broker.DirectGetPrefix + broker.ResultStream,
	}
)

// minionJobSubjects are what minion name (holding cert) may publish
// and subscribe to for jobs: read GF_JOBS, publish its own results;
// hear its doorbell, and take answers on its inbox (the door's
// connection uses broker.MinionInbox(name) as its inbox prefix).
func minionJobSubjects(name string) (pub, sub []string, err error) {
	bell, err := broker.BellSubject(name)
	if err != nil {
		return nil, nil, err
	}
	token, err := broker.Token(name)
	if err != nil {
		return nil, nil, err
	}
	return []string{minionDirectGet, broker.ResultPrefix + "*." + token},
		[]string{bell, broker.InboxPrefix + token + ".>"}, nil
}

// jetStreamOptions sets nats-server's JetStream options from c.
func (c *Config) jetStreamOptions(o *server.Options) {
	o.JetStream, o.StoreDir = c.JetStream, c.StoreDir
	if c.JetStreamSync > 0 {
		o.SyncInterval = c.JetStreamSync
	} else {
		// A PubAck then means "on disk": a job acknowledged to its
		// overlord, or a result the minion deleted from its spool, is
		// not lost with the broker's machine.
		o.SyncAlways = true
	}
}

// streams are the streams the broker keeps for jobs.
func (b *Broker) streams() []jetstream.StreamConfig {
	age := b.cfg.JobsMaxAge
	if age <= 0 {
		age = DefaultJobsMaxAge
	}
	common := jetstream.StreamConfig{
		Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage, Discard: jetstream.DiscardOld,
		MaxAge: age, AllowDirect: true, DenyPurge: true, Replicas: 1,
	}
	jobs, results := common, common
	jobs.Name, jobs.Description = broker.JobStream, "gofunc jobs waiting for their minions"
	jobs.Subjects = []string{broker.JobPrefix + "*", broker.JobRecordPrefix + "*"}
	jobs.Duplicates = jobDuplicates
	results.Name, results.Description = broker.ResultStream, "gofunc job results"
	results.Subjects = []string{broker.ResultPrefix + "*.*"}
	results.Duplicates = resultDuplicates
	return []jetstream.StreamConfig{jobs, results}
}

// makeStreams creates (or updates) the job streams through a
// connection inside the process: clients may not create or change
// streams, the broker's operator decides them.
func (b *Broker) makeStreams(ctx context.Context) error {
	var tok [16]byte
	_, _ = rand.Read(tok[:])
	token := hex.EncodeToString(tok[:])
	b.adminToken.Store(&token)
	defer b.adminToken.Store(nil)
	nc, err := nats.Connect("", nats.InProcessServer(b.srv), nats.Token(token), nats.Name("brokerd streams"))
	if err != nil {
		return fmt.Errorf("%w: jetstream: %w", ErrNotReady, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("%w: jetstream: %w", ErrNotReady, err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, cfg := range b.streams() {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("%w: stream %s: %w", ErrNotReady, cfg.Name, err)
		}
	}
	b.log.Info("job streams ready", "streams", broker.JobStream+","+broker.ResultStream, "store_dir", b.cfg.StoreDir)
	return nil
}

// admitStreamMaker recognises the broker's own connection of
// makeStreams: in the process (no TLS, no address) and holding the
// token drawn for it. It may only manage the GF_ streams.
func (b *Broker) admitStreamMaker(c server.ClientAuthentication) bool {
	tok := b.adminToken.Load()
	if tok == nil || c.GetTLSConnectionState() != nil || c.Kind() != server.CLIENT || c.GetOpts() == nil ||
		subtle.ConstantTimeCompare([]byte(c.GetOpts().Token), []byte(*tok)) != 1 {
		return false
	}
	var pub []string
	for _, s := range []string{broker.JobStream, broker.ResultStream} {
		pub = append(pub, "$JS.API.STREAM.CREATE."+s, "$JS.API.STREAM.UPDATE."+s, "$JS.API.STREAM.INFO."+s)
	}
	c.RegisterUser(&server.User{Username: "brokerd", Permissions: perms(append(pub, "$JS.API.INFO"), []string{"_INBOX.>"})})
	return true
}
