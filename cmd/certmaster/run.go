package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/time/rate"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/ca/cametrics"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/internal/cliconf"
	"github.com/gofunc/gofunc/internal/clidoc"
	"github.com/gofunc/gofunc/internal/version"
	"github.com/gofunc/gofunc/metrics"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// cli is the command line. Every flag can also come from DIR/gofunc.toml
// or GOFUNC_<FLAG> (see internal/cliconf); the flag wins.
type cli struct {
	Dir          string       `help:"CA directory." required:"" type:"path"`
	JSON         bool         `name:"json" help:"Print machine-readable JSON."`
	LogLevel     string       `name:"log-level" help:"trace, debug, info, warn, error (default: info for serve, warn otherwise)."`
	Version      version.Flag `help:"Print the version and exit."`
	MaxLive      int          `name:"max-live" help:"Most valid certificates one name may hold in its role (a renewal overlaps its parent)." default:"4"`
	AuditMaxFile cliconf.Size `name:"audit-max-file" help:"Rotate DIR/audit.log at this size." default:"64MiB"`
	AuditKeep    int          `name:"audit-keep" help:"Rotated audit files kept; older ones are deleted (their last record is kept in audit.log.anchor so the rest still verifies). 0 keeps all." default:"0"`

	Completion clidoc.CompletionFlag `help:"Print the shell completion script for SHELL (bash, zsh, fish) and exit." placeholder:"SHELL"`
	Man        clidoc.ManFlag        `help:"Print the man page (roff) and exit: certmaster --man | man -l -."`

	Init          initCmd          `cmd:"" help:"Create a CA and print its fingerprint."`
	Fingerprint   fingerprintCmd   `cmd:"" help:"Print sha256:<hex> of the CA certificate (what minions pin)."`
	Serve         serveCmd         `cmd:"" help:"Serve enrollment, renewal and the CRL over TLS."`
	List          listCmd          `cmd:"" help:"List pending requests: name, address, source, key fingerprint, age, conflicts."`
	ListSigned    listSignedCmd    `cmd:"" name:"list-signed" help:"List signed certificates with expiry."`
	Sign          signCmd          `cmd:"" help:"Sign the pending requests matching the globs."`
	Reject        globCmd          `cmd:"" help:"Reject the pending requests matching the globs."`
	Clean         globCmd          `cmd:"" help:"Forget the requests (pending, rejected, conflicting) matching the globs."`
	Revoke        revokeCmd        `cmd:"" help:"Revoke the certificates of a name (in its role), or one certificate by serial; their renewals with them."`
	Rekey         rekeyCmd         `cmd:"" help:"Let a name's holder renew early, once; that renewal supersedes its other certificates."`
	Issue         issueCmd         `cmd:"" help:"Write credentials for a role (ca.pem, cert.pem, key.pem; NAME.p12 for browser roles) into a directory."`
	IssueOverlord issueOverlordCmd `cmd:"" name:"issue-overlord" help:"Write overlord credentials (ca.pem, cert.pem, key.pem) into a directory: issue --role overlord."`
	Token         tokenCmd         `cmd:"" help:"Manage enrollment tokens."`
	CRL           crlCmd           `cmd:"" name:"crl" help:"Refresh the CRL and print it (PEM), or write it to a file."`
}

type initCmd struct {
	Name string `help:"CA certificate common name." default:"gofunc CA"`
}

type fingerprintCmd struct{}

type serveCmd struct {
	Listen        string        `help:"Address to listen on." default:":51235"`
	Autosign      string        `help:"Sign valid requests whose names match this glob without waiting for the admin (\"*\": all). Default: none."`
	RateLimit     float64       `name:"rate-limit" help:"Calls per second allowed from one source address." default:"2"`
	RateBurst     int           `name:"rate-burst" help:"Burst of calls allowed from one source address." default:"20"`
	MaxBody       int64         `name:"max-body" help:"Largest request body, in bytes." default:"65536"`
	ServerName    []string      `name:"server-name" help:"DNS names of the certmaster's own certificate (default: host name, localhost)."`
	DrainPeriod   time.Duration `name:"drain" help:"How long SIGTERM waits for calls in flight." default:"30s"`
	Validity      time.Duration `help:"Lifetime of the certificates signed (autosign, tokens) and renewed (default: one year, capped by the CA's own)."`
	MaxStored     int           `name:"max-stored" help:"Most certificate requests kept (pending, rejected, conflicting); new ones over it are refused as busy." default:"10000"`
	MaxConns      int           `name:"max-conns" help:"Most connections open at once; more are closed at once." default:"1024"`
	MaxConnsPer   int           `name:"max-conns-per-source" help:"Most connections from one source (IPv4 address, IPv6 /64)." default:"64"`
	MetricsListen string        `name:"metrics-listen" placeholder:"127.0.0.1:PORT" help:"Also serve /metrics without TLS on this loopback address, for a scraper on this host (default: only on the TLS port, to monitor and overlord certificates)."`
}

type signCmd struct {
	Globs    []string      `arg:"" name:"glob" help:"Minion names or fnmatch globs (case-insensitive)."`
	Validity time.Duration `help:"Lifetime of the certificates signed (default: one year, capped by the CA's own)."`
}

type listCmd struct {
	All bool `help:"Also list rejected requests."`
}

type listSignedCmd struct {
	All bool `help:"Also list revoked and expired certificates."`
}

type globCmd struct {
	Globs []string `arg:"" name:"glob" help:"Minion names or fnmatch globs (case-insensitive)."`
}

type revokeCmd struct {
	Target string `arg:"" name:"name-or-serial" help:"A name (all its certificates of its role) or a serial (hex)."`
	Reason string `help:"RFC 5280 reason: unspecified, keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn." default:"unspecified"`
	Role   string `help:"Only certificates of this role (needed for a name that holds several, issued before one name, one role; default: the name's role)."`
}

type rekeyCmd struct {
	Name   string        `arg:"" help:"Minion or user name."`
	Role   string        `help:"The name's role (default: its only one)."`
	Within time.Duration `help:"How long the holder has to renew." default:"24h"`
}

// issueFlags are the flags of issue and issue-overlord.
type issueFlags struct {
	Out             string        `help:"Directory for ca.pem, cert.pem, key.pem (0600) and NAME.p12 for browser roles." required:"" type:"path"`
	Name            string        `arg:"" help:"User, program or host name."`
	Validity        time.Duration `help:"Certificate lifetime (default: the CA's, one year)."`
	Force           bool          `help:"Replace credentials already in --out."`
	DNS             []string      `name:"dns" help:"Extra DNS names (roles that serve: broker, delegate)."`
	IP              []string      `name:"ip" help:"IP addresses (roles that serve: broker, delegate)."`
	P12PasswordFile string        `name:"p12-password-file" help:"File holding the password of NAME.p12 (default: a random one, printed once)." type:"path"`
}

type issueCmd struct {
	Role string `required:"" enum:"overlord,monitor,broker,viewer,operator,admin,delegate" help:"overlord, monitor, broker, viewer, operator, admin or delegate."`
	issueFlags
}

type issueOverlordCmd struct {
	issueFlags
}

type tokenCmd struct {
	Create tokenCreateCmd `cmd:"" help:"Create a token; it is printed once."`
	List   tokenListCmd   `cmd:"" help:"List tokens (never the secrets)."`
	Revoke tokenRevokeCmd `cmd:"" help:"Disable a token by its ID."`
}

type tokenCreateCmd struct {
	Uses    int           `help:"How many enrollments the token signs." default:"1"`
	TTL     time.Duration `name:"ttl" help:"How long the token is valid." default:"24h"`
	Name    string        `help:"Glob of minion names the token may enroll (default: any)."`
	Comment string        `help:"Note shown by token list."`
}

type tokenRevokeCmd struct {
	ID string `arg:"" help:"Token ID, as token list shows it."`
}

type crlCmd struct {
	Out string `help:"Write the CRL PEM here instead of printing it." type:"path"`
}

// usageError marks errors that deserve exit status 2.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// env is what every command runs with.
type env struct {
	ctx    context.Context
	cli    *cli
	stdout io.Writer
	stderr io.Writer
	log    hclog.Logger
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c cli
	kctx, exit, code := clidoc.ParseCommand(&c, clidoc.Daemon{Name: "certmaster",
		Description: "gofunc's certificate authority and its enrollment service.",
		SeeAlso:     "func(1), funcd(8)"}, args, stdout, stderr)
	if exit {
		return code
	}
	level := c.LogLevel
	if level == "" {
		level = "warn"
		if kctx.Command() == "serve" {
			level = "info"
		}
	}
	e := &env{ctx: ctx, cli: &c, stdout: stdout, stderr: stderr,
		log: hclog.New(&hclog.LoggerOptions{Name: "certmaster", Level: hclog.LevelFromString(level), Output: stderr})}
	if err := e.dispatch(kctx.Command()); err != nil {
		fmt.Fprintln(stderr, "certmaster:", err)
		if errors.As(err, new(usageError)) {
			return exitUsage
		}
		return exitFailure
	}
	return exitOK
}

func (e *env) dispatch(cmd string) error {
	c := e.cli
	switch cmd {
	case "init":
		return e.init()
	case "fingerprint":
		return e.fingerprint()
	case "serve":
		return e.serve()
	case "list":
		return e.list()
	case "list-signed":
		return e.listSigned()
	case "sign <glob>":
		return e.sign(c.Sign.Globs)
	case "reject <glob>":
		return e.reject(c.Reject.Globs)
	case "clean <glob>":
		return e.clean(c.Clean.Globs)
	case "revoke <name-or-serial>":
		return e.revoke()
	case "rekey <name>":
		return e.rekey()
	case "issue <name>":
		return e.issue(gofunc.Role(c.Issue.Role), c.Issue.issueFlags)
	case "issue-overlord <name>":
		return e.issue(gofunc.RoleOverlord, c.IssueOverlord.issueFlags)
	case "token create":
		return e.tokenCreate()
	case "token list":
		return e.tokenList()
	case "token revoke <id>":
		return e.tokenRevoke()
	case "crl":
		return e.crl()
	}
	return usageError{fmt.Errorf("unknown command %q", cmd)}
}

// open opens the CA with the shared audit log DIR/audit.log: every
// admin command and the daemon record into the same chain.
func (e *env) open() (*ca.Authority, error) {
	return e.openWith(0, 0)
}

// openWith is open with a certificate validity and a cap on stored
// requests (zero: the ca package's defaults). A negative value is a
// usage error.
func (e *env) openWith(validity time.Duration, maxStored int) (*ca.Authority, error) {
	if validity < 0 {
		return nil, usageError{fmt.Errorf("--validity must be positive, got %v", validity)}
	}
	if maxStored < 0 {
		return nil, usageError{fmt.Errorf("--max-stored must be positive, got %d", maxStored)}
	}
	return ca.Open(ca.Config{
		Dir:       e.cli.Dir,
		Audit:     e.auditLog(),
		Logger:    e.log.Named("ca"),
		Validity:  validity,
		MaxStored: maxStored,
		MaxLive:   e.cli.MaxLive,
	})
}

// auditLog is DIR/audit.log, shared by the daemon and every admin
// command, with the rotation and retention the flags set.
func (e *env) auditLog() *audit.Shared {
	return &audit.Shared{Path: filepath.Join(e.cli.Dir, "audit.log"), Config: audit.Config{
		MaxFileBytes: int64(e.cli.AuditMaxFile), KeepRotated: e.cli.AuditKeep, Logger: e.log.Named("audit")}}
}

// print writes v as JSON with --json, else calls human.
func (e *env) print(v any, human func(w io.Writer)) error {
	if e.cli.JSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	human(tw)
	return tw.Flush()
}

func (e *env) init() error {
	a, err := ca.Init(ca.Config{
		Dir:    e.cli.Dir,
		Name:   e.cli.Init.Name,
		Audit:  e.auditLog(),
		Logger: e.log.Named("ca"),
	})
	if err != nil {
		return err
	}
	return e.print(map[string]string{"dir": a.Dir(), "fingerprint": a.Fingerprint()}, func(w io.Writer) {
		fmt.Fprintln(w, a.Fingerprint())
	})
}

func (e *env) fingerprint() error {
	a, err := e.open()
	if err != nil {
		return err
	}
	return e.print(map[string]string{"fingerprint": a.Fingerprint()}, func(w io.Writer) {
		fmt.Fprintln(w, a.Fingerprint())
	})
}

func (e *env) serve() error {
	sc := e.cli.Serve
	a, err := e.openWith(sc.Validity, sc.MaxStored)
	if err != nil {
		return err
	}
	s := &ca.Service{
		Authority:    a,
		Addr:         sc.Listen,
		Autosign:     sc.Autosign,
		Logger:       e.log.Named("service"),
		MaxBodyBytes: sc.MaxBody,
		RateLimit:    rate.Limit(sc.RateLimit),
		RateBurst:    sc.RateBurst,
		MaxConns:     sc.MaxConns,

		MaxConnsPerSource: sc.MaxConnsPer,
		ServerNames:       sc.ServerName,
	}
	reg := metrics.NewRegistry()
	reg.MustRegister(cametrics.New(a, s.CertificateNotAfter))
	s.Metrics = metrics.Handler(reg)
	ln, err := net.Listen("tcp", sc.Listen)
	if err != nil {
		return err
	}
	if sc.MetricsListen != "" {
		mln, err := metrics.Listen(sc.MetricsListen)
		if err != nil {
			ln.Close()
			return usageError{err}
		}
		stop := metrics.Serve(mln, s.Metrics, e.log.Named("metrics"))
		defer stop()
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	for {
		select {
		case err := <-done:
			return err
		case <-hup:
			if err := s.Reload(); err != nil {
				e.log.Error("reload failed; keeping the current certificate", "error", err)
			} else {
				e.log.Info("reloaded")
			}
		case <-e.ctx.Done():
			e.log.Info("shutting down", "drain", sc.DrainPeriod)
			sctx, cancel := context.WithTimeout(context.Background(), sc.DrainPeriod)
			err := s.Shutdown(sctx)
			cancel()
			if serr := <-done; !errors.Is(serr, ca.ErrServerClosed) && err == nil {
				err = serr
			}
			return err
		}
	}
}

func age(t time.Time) string {
	d := time.Since(t).Round(time.Second)
	switch {
	case d < time.Minute:
		return d.String()
	case d < 48*time.Hour:
		return d.Round(time.Minute).String()
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func (e *env) list() error {
	a, err := e.open()
	if err != nil {
		return err
	}
	reqs, err := a.Requests()
	if err != nil {
		return err
	}
	var shown []ca.RequestInfo
	for _, r := range reqs {
		if e.cli.List.All || r.Status == ca.StatusPending {
			shown = append(shown, r)
		}
	}
	if shown == nil {
		shown = []ca.RequestInfo{}
	}
	return e.print(shown, func(w io.Writer) {
		fmt.Fprintln(w, "NAME\tADDRESS\tSOURCE\tKEY\tAGE\tSTATUS")
		for _, r := range shown {
			status := string(r.Status)
			if r.Conflict {
				status += " CONFLICT: " + r.ConflictReason
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Addr, r.Source, r.KeyFingerprint, age(r.Time), status)
		}
	})
}

func (e *env) listSigned() error {
	a, err := e.open()
	if err != nil {
		return err
	}
	certs, err := a.Signed()
	if err != nil {
		return err
	}
	now := time.Now()
	shown := []ca.CertInfo{}
	for _, c := range certs {
		if e.cli.ListSigned.All || (!c.Revoked && !c.Expired(now)) {
			shown = append(shown, c)
		}
	}
	return e.print(shown, func(w io.Writer) {
		fmt.Fprintln(w, "NAME\tROLE\tSERIAL\tNOT AFTER\tSTATUS")
		for _, c := range shown {
			status := "valid"
			switch {
			case c.Revoked:
				status = "revoked (" + c.Reason.String() + ")"
			case c.Expired(now):
				status = "expired"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", c.Name, c.Role, c.Serial, c.NotAfter.Format(time.RFC3339), status)
		}
	})
}

func (e *env) sign(globs []string) error {
	a, err := e.openWith(e.cli.Sign.Validity, 0)
	if err != nil {
		return err
	}
	signed, serr := a.Sign(globs...)
	if len(signed) > 0 || serr == nil {
		if err := e.print(nonNil(signed), func(w io.Writer) {
			for _, c := range signed {
				fmt.Fprintf(w, "signed %s\tserial %s\tuntil %s\n", c.Name, c.Serial, c.NotAfter.Format(time.RFC3339))
			}
		}); err != nil {
			return err
		}
	}
	return serr
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (e *env) reject(globs []string) error {
	a, err := e.open()
	if err != nil {
		return err
	}
	rejected, err := a.Reject(globs...)
	if err != nil {
		return err
	}
	return e.print(rejected, func(w io.Writer) {
		for _, r := range rejected {
			fmt.Fprintf(w, "rejected %s\tkey %s\n", r.Name, r.KeyFingerprint)
		}
	})
}

func (e *env) clean(globs []string) error {
	a, err := e.open()
	if err != nil {
		return err
	}
	cleaned, err := a.Clean(globs...)
	if err != nil {
		return err
	}
	return e.print(cleaned, func(w io.Writer) {
		for _, r := range cleaned {
			fmt.Fprintf(w, "cleaned %s\t(%s)\n", r.Name, r.Status)
		}
	})
}

func (e *env) revoke() error {
	reason, err := ca.ParseReason(e.cli.Revoke.Reason)
	if err != nil {
		return usageError{err}
	}
	role := gofunc.Role(e.cli.Revoke.Role)
	if role != "" && !role.Valid() {
		return usageError{fmt.Errorf("--role: unknown role %q", role)}
	}
	a, err := e.open()
	if err != nil {
		return err
	}
	revoked, err := a.RevokeRole(e.cli.Revoke.Target, role, reason)
	if err != nil {
		return err
	}
	return e.print(revoked, func(w io.Writer) {
		for _, c := range revoked {
			fmt.Fprintf(w, "revoked %s	%s	serial %s	(%s)\n", c.Name, c.Role, c.Serial, c.Reason)
		}
	})
}

func (e *env) rekey() error {
	rc := e.cli.Rekey
	role := gofunc.Role(rc.Role)
	if role != "" && !role.Valid() {
		return usageError{fmt.Errorf("--role: unknown role %q", role)}
	}
	if rc.Within <= 0 {
		return usageError{errors.New("--within must be positive")}
	}
	a, err := e.open()
	if err != nil {
		return err
	}
	if err := a.AllowRekey(rc.Name, role, rc.Within); err != nil {
		return err
	}
	until := time.Now().Add(rc.Within)
	return e.print(map[string]any{"name": rc.Name, "until": until.UTC()}, func(w io.Writer) {
		fmt.Fprintf(w, "%s may renew once until %s; that renewal revokes its other certificates (superseded)\n",
			rc.Name, until.Format(time.RFC3339))
	})
}

// issue writes credentials for role into --out. It refuses to replace
// credentials already there without --force, before issuing anything.
func (e *env) issue(role gofunc.Role, f issueFlags) error {
	if _, err := identity.ValidateName(f.Name); err != nil {
		return usageError{err}
	}
	opts := ca.IssueOptions{Validity: f.Validity, DNSNames: f.DNS}
	for _, s := range f.IP {
		ip := net.ParseIP(s)
		if ip == nil {
			return usageError{fmt.Errorf("--ip: %q is not an IP address", s)}
		}
		opts.IPs = append(opts.IPs, ip)
	}
	var password string
	if f.P12PasswordFile != "" {
		b, err := os.ReadFile(f.P12PasswordFile)
		if err != nil {
			return usageError{err}
		}
		password = strings.TrimRight(string(b), "\r\n")
	}
	if !f.Force {
		if err := ca.CredentialsFree(f.Out, role, strings.ToLower(f.Name)); err != nil {
			return err
		}
	}
	a, err := e.open()
	if err != nil {
		return err
	}
	id, err := a.Issue(role, f.Name, opts)
	if err != nil {
		return err
	}
	crl, err := a.CRL()
	if err != nil {
		return err
	}
	if err := id.SetCRL(crl); err != nil {
		return err
	}
	creds, err := ca.SaveCredentials(id, f.Out, password, true)
	if err != nil {
		return err
	}
	serial := id.Leaf().SerialNumber.Text(16)
	return e.print(map[string]any{"name": id.Name(), "role": role, "serial": serial, "not_after": id.Leaf().NotAfter,
		"dir": f.Out, "p12": creds.P12, "p12_password": creds.P12Password},
		func(w io.Writer) {
			fmt.Fprintf(w, "%s %s\tserial %s\tuntil %s\twritten to %s\n", role, id.Name(), serial,
				id.Leaf().NotAfter.Format(time.RFC3339), f.Out)
			if creds.P12 != "" {
				fmt.Fprintf(w, "browser file %s\n", creds.P12)
			}
			if creds.P12Password != "" {
				fmt.Fprintf(e.stderr, "password of %s: %s (shown only this once)\n", filepath.Base(creds.P12), creds.P12Password)
			}
		})
}

func (e *env) tokenCreate() error {
	a, err := e.open()
	if err != nil {
		return err
	}
	tc := e.cli.Token.Create
	if tc.Uses < 1 || tc.TTL <= 0 {
		return usageError{errors.New("--uses and --ttl must be positive")}
	}
	tok, info, err := a.CreateToken(ca.TokenOptions{Uses: tc.Uses, TTL: tc.TTL, NameGlob: tc.Name, Comment: tc.Comment})
	if err != nil {
		return err
	}
	// The one place the secret is shown.
	return e.print(struct {
		Token string `json:"token"`
		ca.TokenInfo
	}{tok.Reveal(), info}, func(w io.Writer) {
		fmt.Fprintln(w, tok.Reveal())
		fmt.Fprintf(e.stderr, "token %s: %d use(s), expires %s; it is shown only this once\n",
			info.ID, info.MaxUses, info.Expires.Format(time.RFC3339))
	})
}

func (e *env) tokenList() error {
	a, err := e.open()
	if err != nil {
		return err
	}
	toks, err := a.Tokens()
	if err != nil {
		return err
	}
	now := time.Now()
	return e.print(nonNil(toks), func(w io.Writer) {
		fmt.Fprintln(w, "ID\tUSES\tEXPIRES\tNAMES\tSTATUS\tCOMMENT")
		for _, t := range toks {
			status := "valid"
			switch {
			case t.Revoked:
				status = "revoked"
			case !now.Before(t.Expires):
				status = "expired"
			case t.Used >= t.MaxUses:
				status = "used up"
			}
			names := t.NameGlob
			if names == "" {
				names = "*"
			}
			fmt.Fprintf(w, "%s\t%d/%d\t%s\t%s\t%s\t%s\n", t.ID, t.Used, t.MaxUses, t.Expires.Format(time.RFC3339), names, status, t.Comment)
		}
	})
}

func (e *env) tokenRevoke() error {
	a, err := e.open()
	if err != nil {
		return err
	}
	id := strings.TrimSpace(e.cli.Token.Revoke.ID)
	if err := a.RevokeToken(id); err != nil {
		return err
	}
	return e.print(map[string]string{"revoked": id}, func(w io.Writer) { fmt.Fprintf(w, "revoked token %s\n", id) })
}

func (e *env) crl() error {
	a, err := e.open()
	if err != nil {
		return err
	}
	pem, err := a.CRLPEM()
	if err != nil {
		return err
	}
	if out := e.cli.CRL.Out; out != "" {
		if err := os.WriteFile(out, pem, 0o644); err != nil {
			return err
		}
		return e.print(map[string]string{"written": out}, func(w io.Writer) { fmt.Fprintf(w, "CRL written to %s\n", out) })
	}
	if e.cli.JSON {
		return e.print(map[string]string{"crl": string(pem)}, nil)
	}
	_, err = e.stdout.Write(pem)
	return err
}
