package transport

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// TLSPolicy is the SMTP client's TLS settings from main.cf.
type TLSPolicy struct {
	// Level is smtp_tls_security_level: "none" (or ""), "may" (STARTTLS
	// when offered, no certificate check, a failed handshake falls back
	// to clear text), "encrypt" (STARTTLS required, no check), "verify"
	// (the chain must verify against the CAs and a name of
	// VerifyCertMatch match), "secure" (the same with SecureCertMatch).
	// "dane" is "may" here (no DNSSEC); "dane-only" and "fingerprint"
	// are refused as unsupported, so mail waits rather than leak.
	Level string
	// CAFile and CAPath are smtp_tls_CAfile (a PEM bundle) and
	// smtp_tls_CApath (a directory of PEM files, c_rehash style hashes or
	// any names). With neither, the system's roots are used.
	CAFile, CAPath string
	// VerifyCertMatch is smtp_tls_verify_cert_match (default
	// "hostname"); SecureCertMatch is smtp_tls_secure_cert_match (default
	// "nexthop, dot-nexthop"). Items: "hostname" (the MX host name from
	// DNS), "nexthop" (the next-hop domain), "dot-nexthop" (any name under
	// it), a literal name, or ".domain" (any name under domain).
	VerifyCertMatch, SecureCertMatch []string
	// Protocols is smtp_tls_protocols (used with "may") and
	// MandatoryProtocols smtp_tls_mandatory_protocols (the other
	// levels): ">=TLSv1.2", "!SSLv2, !SSLv3, !TLSv1" and the like.
	Protocols, MandatoryProtocols []string
	LogLevel                      int // smtp_tls_loglevel: 1 and more log each established TLS session
	// ConnectionReuse is smtp_tls_connection_reuse: TLS sessions are put
	// in the connection cache too (Postfix's default is no: only
	// plaintext sessions are cached).
	ConnectionReuse bool
	// ServerName is the SNI name sent: "" or "hostname" (the MX host
	// name), "nexthop" (the next-hop domain) or a literal name; set by a
	// policy table's servername= attribute.
	ServerName string
	// TAFiles are a policy table's tafile= trust anchors (PEM files),
	// used instead of CAFile and CAPath.
	TAFiles []string
}

// tlsPolicy is a TLSPolicy ready to use.
type tlsPolicy struct {
	level      string
	roots      *x509.CertPool
	match      []string
	minV, maxV uint16
	logLevel   int
	reuse      bool   // TLS sessions may be cached
	serverName string // SNI: "hostname", "nexthop" or a literal
	// key names the policy for the connection cache: a TLS session is
	// reused only by a delivery with the same key.
	key string
}

var tlsVersions = []struct {
	name string
	v    uint16
}{{"TLSv1", tls.VersionTLS10}, {"TLSv1.1", tls.VersionTLS11}, {"TLSv1.2", tls.VersionTLS12}, {"TLSv1.3", tls.VersionTLS13}}

func tlsVersionName(v uint16) string {
	for _, t := range tlsVersions {
		if t.v == v {
			return t.name
		}
	}
	return fmt.Sprintf("TLS(0x%04x)", v)
}

// protocolRange reads Postfix's protocol list: ">=X", "<=X", "X" (only
// these), "!X" (exclude). SSLv2 and SSLv3 are never spoken.
func protocolRange(items []string) (min, max uint16, err error) {
	allowed := map[uint16]bool{}
	for _, t := range tlsVersions {
		allowed[t.v] = true
	}
	var include map[uint16]bool
	find := func(name string) (uint16, bool, error) {
		if strings.EqualFold(name, "SSLv2") || strings.EqualFold(name, "SSLv3") {
			return 0, false, nil
		}
		for _, t := range tlsVersions {
			if strings.EqualFold(t.name, name) {
				return t.v, true, nil
			}
		}
		return 0, false, fmt.Errorf("unknown TLS protocol %q", name)
	}
	for _, it := range items {
		it = strings.TrimSpace(it)
		switch {
		case it == "":
		case strings.HasPrefix(it, ">="), strings.HasPrefix(it, "<="):
			v, ok, err := find(it[2:])
			if err != nil {
				return 0, 0, err
			}
			for _, t := range tlsVersions {
				if ok && ((it[0] == '>' && t.v < v) || (it[0] == '<' && t.v > v)) {
					allowed[t.v] = false
				}
			}
		case strings.HasPrefix(it, "!"):
			if v, ok, err := find(it[1:]); err != nil {
				return 0, 0, err
			} else if ok {
				allowed[v] = false
			}
		default:
			v, ok, err := find(it)
			if err != nil {
				return 0, 0, err
			}
			if include == nil {
				include = map[uint16]bool{}
			}
			if ok {
				include[v] = true
			}
		}
	}
	for _, t := range tlsVersions {
		if !allowed[t.v] || (include != nil && !include[t.v]) {
			continue
		}
		if min == 0 {
			min = t.v
		}
		max = t.v
	}
	if min == 0 {
		return 0, 0, errors.New("the TLS protocol settings leave no protocol")
	}
	return min, max, nil
}

func (p TLSPolicy) prepare() (*tlsPolicy, error) {
	level := strings.ToLower(strings.TrimSpace(p.Level))
	switch level {
	case "", "none":
		return &tlsPolicy{level: "none", key: "none"}, nil
	case "dane":
		level = "may"
	case "may", "encrypt", "verify", "secure":
	default:
		return nil, fmt.Errorf("smtp_tls_security_level = %s is not supported", p.Level)
	}
	tp := &tlsPolicy{level: level, logLevel: p.LogLevel, reuse: p.ConnectionReuse, serverName: p.ServerName}
	protos := p.MandatoryProtocols
	if level == "may" {
		protos = p.Protocols
	}
	var err error
	if tp.minV, tp.maxV, err = protocolRange(protos); err != nil {
		return nil, err
	}
	switch level {
	case "verify":
		tp.match = p.VerifyCertMatch
		if len(tp.match) == 0 {
			tp.match = []string{"hostname"}
		}
	case "secure":
		tp.match = p.SecureCertMatch
		if len(tp.match) == 0 {
			tp.match = []string{"nexthop", "dot-nexthop"}
		}
	}
	verifying := level == "verify" || level == "secure"
	tp.key = strings.Join([]string{level, strings.Join(tp.match, ","), fmt.Sprint(tp.minV, "-", tp.maxV),
		p.CAFile, p.CAPath, strings.Join(p.TAFiles, ","), p.ServerName}, "|")
	if len(p.TAFiles) > 0 {
		// A policy table's tafile= trust anchors replace the CAs.
		if tp.roots, err = loadCAs(p.TAFiles, ""); err != nil {
			return nil, fmt.Errorf("tafile: %w", err)
		}
	} else if p.CAFile != "" || p.CAPath != "" {
		// Only the verifying levels depend on the CAs; for may and
		// encrypt they only decide between "Trusted" and "Untrusted" in
		// the log, so a broken CA setting does not stop mail there.
		var files []string
		if p.CAFile != "" {
			files = []string{p.CAFile}
		}
		if tp.roots, err = loadCAs(files, p.CAPath); err != nil && verifying {
			return nil, err
		}
	} else if verifying {
		if tp.roots, err = x509.SystemCertPool(); err != nil {
			return nil, fmt.Errorf("system CA certificates: %w", err)
		}
	}
	return tp, nil
}

// loadCAs reads PEM bundles and every PEM file of a directory.
func loadCAs(files []string, dir string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	add := func(path string) error {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("CA certificates: %w", err)
		}
		for {
			var blk *pem.Block
			blk, b = pem.Decode(b)
			if blk == nil {
				return nil
			}
			if blk.Type != "CERTIFICATE" {
				continue
			}
			cert, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return fmt.Errorf("CA certificates: %s: %w", path, err)
			}
			pool.AddCert(cert)
			n++
		}
	}
	for _, file := range files {
		if err := add(file); err != nil {
			return nil, err
		}
	}
	if dir != "" {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("smtp_tls_CApath: %w", err)
		}
		for _, e := range ents {
			if e.IsDir() {
				continue
			}
			// Like OpenSSL's hashed directory lookup, a file that is not
			// a certificate is passed over.
			add(filepath.Join(dir, e.Name()))
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("no CA certificates in %q", strings.TrimSpace(strings.Join(files, " ")+" "+dir))
	}
	return pool, nil
}

// config is the tls.Config for one handshake with the MX host mxName
// for the next-hop domain nexthop. The chain and name are checked after
// the handshake by check, as Postfix decides by level.
func (p *tlsPolicy) config(mxName, nexthop string) *tls.Config {
	sni := mxName
	switch strings.ToLower(p.serverName) {
	case "", "hostname":
	case "nexthop":
		sni = nexthop
	default:
		sni = p.serverName
	}
	return &tls.Config{
		ServerName:         sni,
		InsecureSkipVerify: true, // checked in check(), by level
		MinVersion:         p.minV,
		MaxVersion:         p.maxV,
	}
}

// check says how far the peer is trusted: "Verified" (chain and name),
// "Trusted" (chain only) or "Untrusted"; with verify and secure anything
// short of Verified is an error.
func (p *tlsPolicy) check(st tls.ConnectionState, mxName, nexthop string) (string, error) {
	if len(st.PeerCertificates) == 0 {
		if p.level == "verify" || p.level == "secure" {
			return "", errors.New("no server certificate")
		}
		return "Anonymous", nil
	}
	leaf := st.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range st.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, chainErr := leaf.Verify(x509.VerifyOptions{Roots: p.roots, Intermediates: inter})
	nameErr := error(nil)
	if len(p.match) > 0 {
		nameErr = matchCertName(leaf, p.match, mxName, nexthop)
	}
	switch {
	case chainErr == nil && nameErr == nil && len(p.match) > 0:
		return "Verified", nil
	case p.level == "verify" || p.level == "secure":
		if chainErr != nil {
			return "", fmt.Errorf("untrusted issuer: %v", chainErr)
		}
		return "", nameErr
	case chainErr == nil:
		return "Trusted", nil
	}
	return "Untrusted", nil
}

// matchCertName checks the certificate's DNS names (or its CN when it has
// none) against the match list.
func matchCertName(cert *x509.Certificate, match []string, mxName, nexthop string) error {
	names := cert.DNSNames
	if len(names) == 0 && cert.Subject.CommonName != "" {
		names = []string{cert.Subject.CommonName}
	}
	var wants []string
	for _, m := range match {
		switch strings.ToLower(strings.TrimSpace(m)) {
		case "hostname":
			wants = append(wants, mxName)
		case "nexthop":
			wants = append(wants, nexthop)
		case "dot-nexthop":
			wants = append(wants, "."+nexthop)
		case "":
		default:
			wants = append(wants, m)
		}
	}
	for _, w := range wants {
		w = strings.ToLower(strings.TrimSuffix(w, "."))
		for _, n := range names {
			if nameMatches(strings.ToLower(n), w) {
				return nil
			}
		}
	}
	return fmt.Errorf("name mismatch: certificate names %q match none of %q", names, wants)
}

// nameMatches: want "host" matches name "host" or "*.parent" of it (one
// label, RFC 6125 6.4.3); want ".domain" matches any name under domain.
func nameMatches(name, want string) bool {
	if strings.HasPrefix(want, ".") {
		return len(name) > len(want) && strings.HasSuffix(name, want) && !strings.HasPrefix(name, "*")
	}
	if name == want {
		return true
	}
	if rest, ok := strings.CutPrefix(name, "*."); ok {
		_, parent, found := strings.Cut(want, ".")
		return found && parent == rest && strings.Contains(rest, ".")
	}
	return false
}
