package ca

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/internal/glob"
)

// tokenPrefix makes tokens recognizable in configs and by secret scanners.
const tokenPrefix = "gft_"

// Token errors. All of them match ErrBadToken, a CodeDenied fault, which
// is what an enrolling minion receives.
var (
	ErrBadToken     = &gofunc.Fault{Code: gofunc.CodeDenied, Message: "ca: enrollment token refused"}
	errTokenUnknown = fmt.Errorf("%w: unknown or revoked token", ErrBadToken)
	errTokenExpired = fmt.Errorf("%w: token expired", ErrBadToken)
	errTokenUsedUp  = fmt.Errorf("%w: token already used", ErrBadToken)
)

// Defaults for TokenOptions.
const (
	DefaultTokenTTL  = 24 * time.Hour
	DefaultTokenUses = 1
)

// TokenOptions shape a new token.
type TokenOptions struct {
	// Uses is how many requests the token can sign; default 1 (one-time).
	Uses int
	// TTL is how long the token is valid; default 24h.
	TTL time.Duration
	// NameGlob restricts the names the token can enroll (fnmatch,
	// case-insensitive); "" means any name.
	NameGlob string
	// Comment is free text shown by `certmaster token list`.
	Comment string
}

// TokenInfo describes a stored token; the secret itself is not stored,
// only its SHA-256.
type TokenInfo struct {
	ID       string    `json:"id"`
	Created  time.Time `json:"created"`
	Expires  time.Time `json:"expires"`
	MaxUses  int       `json:"max_uses"`
	Used     int       `json:"used"`
	NameGlob string    `json:"name_glob,omitempty"`
	Comment  string    `json:"comment,omitempty"`
	Revoked  bool      `json:"revoked,omitempty"`
}

type tokenRecord struct {
	TokenInfo
	Hash string `json:"hash"` // hex SHA-256 of the token
}

type tokenFile struct {
	Tokens []tokenRecord `json:"tokens"`
}

func hashToken(t identity.Token) string {
	sum := sha256.Sum256([]byte(t))
	return hex.EncodeToString(sum[:])
}

// CreateToken makes a new enrollment token from 256 random bits and
// stores its hash in DIR/tokens.json (0600). The token is returned once
// and cannot be recovered later.
func (a *Authority) CreateToken(opts TokenOptions) (identity.Token, TokenInfo, error) {
	if opts.Uses < 0 {
		return "", TokenInfo{}, fmt.Errorf("ca: token uses must be positive, got %d", opts.Uses)
	}
	if opts.Uses == 0 {
		opts.Uses = DefaultTokenUses
	}
	if opts.TTL < 0 {
		return "", TokenInfo{}, fmt.Errorf("ca: token TTL must be positive, got %v", opts.TTL)
	}
	if opts.TTL == 0 {
		opts.TTL = DefaultTokenTTL
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return "", TokenInfo{}, fmt.Errorf("ca: %w", err)
	}
	tok := identity.Token(tokenPrefix + base64.RawURLEncoding.EncodeToString(secret))
	h := hashToken(tok)
	now := a.cfg.Now().UTC()
	info := TokenInfo{
		ID: h[:16], Created: now, Expires: now.Add(opts.TTL), MaxUses: opts.Uses,
		NameGlob: strings.ToLower(opts.NameGlob), Comment: opts.Comment,
	}
	err := a.update(context.Background(), func(tx *txn) error {
		tf, err := tx.tokenFile()
		if err != nil {
			return err
		}
		tx.audit(event{Kind: KindTokenCreate, Details: map[string]string{
			"token_id": info.ID, "uses": fmt.Sprint(info.MaxUses), "expires": info.Expires.Format(time.RFC3339),
			"name_glob": info.NameGlob,
		}})
		tf.Tokens = append(tf.Tokens, tokenRecord{TokenInfo: info, Hash: h})
		tx.tokensChanged()
		return nil
	})
	if err != nil {
		return "", TokenInfo{}, err
	}
	return tok, info, nil
}

// Tokens lists the stored tokens, including expired and used ones.
func (a *Authority) Tokens() ([]TokenInfo, error) {
	unlock, err := a.lock.lock(context.Background(), lockShared)
	if err != nil {
		return nil, err
	}
	defer unlock()
	tf, err := a.readTokens()
	if err != nil {
		return nil, err
	}
	out := make([]TokenInfo, len(tf.Tokens))
	for i, r := range tf.Tokens {
		out[i] = r.TokenInfo
	}
	return out, nil
}

// RevokeToken disables the token with the given ID (as listed by Tokens).
func (a *Authority) RevokeToken(id string) error {
	return a.update(context.Background(), func(tx *txn) error {
		tf, err := tx.tokenFile()
		if err != nil {
			return err
		}
		for i := range tf.Tokens {
			r := &tf.Tokens[i]
			if r.ID == id && !r.Revoked {
				tx.audit(event{Kind: KindTokenRevoke, Details: map[string]string{"token_id": id}})
				r.Revoked = true
				tx.tokensChanged()
				return nil
			}
		}
		return fmt.Errorf("%w: token %q", ErrNotFound, id)
	})
}

// checkToken finds tok in tf and checks it may enroll name now. It does
// not count the use: spendToken does, once the certificate is made.
func checkToken(tf *tokenFile, tok identity.Token, name string, now time.Time) (*tokenRecord, error) {
	h := hashToken(tok)
	for i := range tf.Tokens {
		r := &tf.Tokens[i]
		if subtle.ConstantTimeCompare([]byte(r.Hash), []byte(h)) != 1 {
			continue
		}
		switch {
		case r.Revoked:
			return nil, errTokenUnknown
		case !now.Before(r.Expires):
			return nil, errTokenExpired
		case r.Used >= r.MaxUses:
			return nil, errTokenUsedUp
		case r.NameGlob != "" && !glob.Match(r.NameGlob, name):
			return nil, fmt.Errorf("%w: token is not valid for %q", ErrBadToken, name)
		}
		return r, nil
	}
	return nil, errTokenUnknown
}

func (a *Authority) readTokens() (*tokenFile, error) {
	b, err := os.ReadFile(a.path(fileTokens))
	if errors.Is(err, fs.ErrNotExist) {
		return &tokenFile{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	tf := new(tokenFile)
	if err := json.Unmarshal(b, tf); err != nil {
		return nil, fmt.Errorf("ca: %s: %w", a.path(fileTokens), err)
	}
	return tf, nil
}

func (a *Authority) writeTokens(tf *tokenFile) error {
	b, err := json.MarshalIndent(tf, "", "\t")
	if err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	if err := writeFileAtomic(a.path(fileTokens), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("ca: write tokens: %w", err)
	}
	return nil
}
