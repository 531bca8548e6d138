//go:build !postcote_testdns

package server

import "postcote/internal/dnsx"

// testDNS is the hook of smtpclient_testdns.go; in every normal build
// there is no test resolver and the environment is not read.
func testDNS() (dnsx.Resolver, string, error) { return nil, "", nil }
