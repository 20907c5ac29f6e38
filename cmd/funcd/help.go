package main

// Help is what funcd --help (and its man page) shows below the summary.
func (cli) Help() string {
	return "On first start funcd enrolls with the certmaster (it waits while the request is pending), then serves; " +
		"later starts reuse DIR's certificate and remember the certmaster. SIGHUP reloads the certificate, CRL and ACLs; " +
		"SIGTERM drains the calls in flight. Exit status: 0 after a clean stop, 1 on a failure, 2 on a usage error.\n\n" +
		"Examples:\n\n" +
		"    funcd --dir /var/lib/gofunc --certmaster cm.example.org:51235 --ca-fingerprint sha256:<hex> --name web1.example.org\n" +
		"    funcd --dir /var/lib/gofunc --certmaster cm.example.org:51235 --ca-fingerprint sha256:<hex> --token <token>\n" +
		"    funcd --dir /var/lib/gofunc            # later starts\n" +
		"    funcd --dir /var/lib/gofunc --info     # identity, CA fingerprint, modules, ACL"
}
