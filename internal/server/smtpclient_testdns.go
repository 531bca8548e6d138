//go:build postcote_testdns

package server

import (
	"os"

	"postcote/internal/dnsx"
)

// testDNS exists only in binaries built with `-tags postcote_testdns`
// (the e2e tests build one; release builds never use the tag). There,
// POSTCOTE_TEST_DNS names a zone-like file (dnsx.ParseStaticResolver:
// "example.org MX 10 mx.example.org", "mx.example.org A 127.0.0.2") that
// replaces DNS for the smtp client and smtpd, and POSTCOTE_TEST_SMTP_PORT replaces
// port 25 for next hops without a port, so two instances on 127.0.0.1 and
// 127.0.0.2 can exchange mail without root or the network.
func testDNS() (dnsx.Resolver, string, error) {
	path := os.Getenv("POSTCOTE_TEST_DNS")
	if path == "" {
		return nil, "", nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	r, err := dnsx.ParseStaticResolver(f)
	if err != nil {
		return nil, "", err
	}
	return r, os.Getenv("POSTCOTE_TEST_SMTP_PORT"), nil
}
