package main

import "strings"

// The examples each command's --help (and the man page) shows.

func examples(lines ...string) string {
	return "Examples:\n\n    " + strings.Join(lines, "\n    ")
}

func (cli) Help() string {
	return "Every command takes the CA directory (--dir, or GOFUNC_DIR); serve runs the certmaster, the others administer it " +
		"and may run while it serves. Exit status: 0 on success, 1 on failure, 2 on a usage error.\n\n" +
		examples("certmaster init --dir /var/lib/gofunc-ca --name 'example.org fleet CA'",
			"certmaster serve --dir /var/lib/gofunc-ca", "certmaster list --dir /var/lib/gofunc-ca", "certmaster sign --dir /var/lib/gofunc-ca 'web*'")
}

func (initCmd) Help() string {
	return examples("certmaster init --dir /var/lib/gofunc-ca --name 'example.org fleet CA'   # prints sha256:<fingerprint>")
}

func (fingerprintCmd) Help() string {
	return examples("certmaster fingerprint --dir /var/lib/gofunc-ca   # give it to funcd --ca-fingerprint")
}

func (serveCmd) Help() string {
	return examples("certmaster serve --dir /var/lib/gofunc-ca --listen :51235",
		"certmaster serve --dir /var/lib/gofunc-ca --autosign 'lab-*'   # sign lab-* requests without waiting")
}

func (listCmd) Help() string {
	return examples("certmaster list --dir /var/lib/gofunc-ca   # compare the key fingerprint with funcd's before signing",
		"certmaster list --dir /var/lib/gofunc-ca --all --json")
}

func (listSignedCmd) Help() string {
	return examples("certmaster list-signed --dir /var/lib/gofunc-ca", "certmaster list-signed --dir /var/lib/gofunc-ca --all   # revoked and expired too")
}

func (signCmd) Help() string {
	return examples("certmaster sign --dir /var/lib/gofunc-ca web1.example.org", "certmaster sign --dir /var/lib/gofunc-ca 'web*' --validity 2160h")
}

func (globCmd) Help() string {
	return examples("certmaster reject --dir /var/lib/gofunc-ca 'unknown-*'", "certmaster clean --dir /var/lib/gofunc-ca '*'")
}

func (revokeCmd) Help() string {
	return examples("certmaster revoke --dir /var/lib/gofunc-ca web7.example.org --reason keyCompromise",
		"certmaster revoke --dir /var/lib/gofunc-ca 3f9a1c...   # one certificate, by serial, and its renewals",
		"certmaster revoke --dir /var/lib/gofunc-ca --role overlord alice")
}

func (issueOverlordCmd) Help() string {
	return examples("certmaster issue-overlord --dir /var/lib/gofunc-ca --out ~alice/.gofunc alice",
		"certmaster issue-overlord --dir /var/lib/gofunc-ca --out ~alice/.gofunc --force alice   # replace her credentials")
}

func (issueCmd) Help() string {
	return examples("certmaster issue --dir /var/lib/gofunc-ca --role monitor --out /etc/prometheus/gofunc prometheus",
		"certmaster issue --dir /var/lib/gofunc-ca --role viewer --out ./bob bob   # also ./bob/bob.p12 for the browser",
		"certmaster issue --dir /var/lib/gofunc-ca --role broker --out /var/lib/funcbroker --dns broker1.example.org broker1")
}

func (rekeyCmd) Help() string {
	return examples("certmaster rekey --dir /var/lib/gofunc-ca web7.example.org   # then on web7: funcd --dir /var/lib/gofunc --renew",
		"certmaster rekey --dir /var/lib/gofunc-ca --role overlord --within 2h alice")
}

func (tokenCmd) Help() string {
	return examples("certmaster token create --dir /var/lib/gofunc-ca --uses 50 --ttl 2h --name 'web*'   # printed once",
		"certmaster token list --dir /var/lib/gofunc-ca", "certmaster token revoke --dir /var/lib/gofunc-ca TOKEN-ID")
}

func (tokenCreateCmd) Help() string {
	return examples("certmaster token create --dir /var/lib/gofunc-ca --uses 50 --ttl 2h --name 'web*' --comment 'rack 12'",
		"funcd --dir /var/lib/gofunc --certmaster cm:51235 --ca-fingerprint sha256:... --token TOKEN   # on each minion")
}

func (tokenRevokeCmd) Help() string {
	return examples("certmaster token revoke --dir /var/lib/gofunc-ca 7f3e2a91")
}

func (crlCmd) Help() string {
	return examples("certmaster crl --dir /var/lib/gofunc-ca | openssl crl -noout -text", "certmaster crl --dir /var/lib/gofunc-ca --out /srv/www/gofunc.crl")
}

type tokenListCmd struct{}

func (tokenListCmd) Help() string {
	return examples("certmaster token list --dir /var/lib/gofunc-ca", "certmaster token list --dir /var/lib/gofunc-ca --json")
}
