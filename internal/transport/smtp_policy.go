package transport

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// PolicyTable is one table of smtp_tls_policy_maps (an internal/lookup
// table): Lookup returns the values for key, nil when absent, an error
// when the table cannot answer.
type PolicyTable interface {
	Lookup(ctx context.Context, key string) ([]string, error)
}

// errPolicyLookup marks a failed or malformed smtp_tls_policy_maps
// lookup: Postfix defers the mail ("TLS policy lookup error") rather
// than guess a weaker policy.
var errPolicyLookup = errors.New("TLS policy lookup error")

// policyFor returns the TLS policy for nexthop: the first
// smtp_tls_policy_maps entry found, else the main.cf policy (TLS).
//
// The lookup key is the next hop as given, brackets and a port suffix
// included ("example.com", "[relay.example]:587"), in lower case. When
// it is a bare domain and no table has it, the parent domains are tried
// as ".parent.example", ".example" (TLS_README, "TLS policy table").
// Prepared policies are kept per table value, so a CA file is read once.
func (s *SMTP) policyFor(ctx context.Context, nexthop string) (*tlsPolicy, error) {
	base, err := s.tlsPolicy()
	if len(s.TLSPolicyMaps) == 0 {
		return base, err
	}
	key := strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(nexthop), "inet:"), "."))
	keys := []string{key}
	if !strings.ContainsAny(key, "[]:") {
		for d := key; ; {
			_, parent, ok := strings.Cut(d, ".")
			if !ok || parent == "" {
				break
			}
			keys = append(keys, "."+parent)
			d = parent
		}
	}
	for _, k := range keys {
		for _, t := range s.TLSPolicyMaps {
			vals, lerr := t.Lookup(ctx, k)
			if lerr != nil {
				return nil, fmt.Errorf("%w for %s: %v", errPolicyLookup, key, lerr)
			}
			if len(vals) == 0 {
				continue
			}
			value := strings.Join(vals, " ")
			return s.preparedPolicy(value)
		}
	}
	return base, err
}

// preparedPolicy parses and prepares one policy table value, once.
func (s *SMTP) preparedPolicy(value string) (*tlsPolicy, error) {
	if p, ok := s.policies.Load(value); ok {
		pe := p.(policyEntry)
		return pe.p, pe.err
	}
	tp, err := s.TLS.withTableValue(value)
	var p *tlsPolicy
	if err == nil {
		p, err = tp.prepare()
	}
	if err != nil {
		err = fmt.Errorf("%w: policy %q: %v", errPolicyLookup, value, err)
	}
	s.policies.Store(value, policyEntry{p, err})
	return p, err
}

type policyEntry struct {
	p   *tlsPolicy
	err error
}

// policyCache holds prepared table policies by value.
type policyCache = sync.Map

// withTableValue returns the main.cf policy p overridden by one
// smtp_tls_policy_maps value: "LEVEL [name=value ...]" (Postfix's
// smtp_tls_policy_maps, TLS_README). Levels: none, may, encrypt, dane
// (taken as may: postcote does no DNSSEC), verify, secure; dane-only and
// fingerprint are refused, so the mail waits rather than go out with
// less than asked. Attributes:
//
//	match=a:b:c      certificate names for verify and secure (overrides
//	                 smtp_tls_verify_cert_match / smtp_tls_secure_cert_match)
//	protocols=x:y    TLS protocols (overrides smtp_tls_mandatory_protocols
//	                 and, at level may, smtp_tls_protocols)
//	ciphers=GRADE    export, low, medium or high: every suite Go offers is
//	                 of the high grade, so all four are met; null is refused
//	tafile=PATH      trust anchors for verify and secure, instead of
//	                 smtp_tls_CAfile and smtp_tls_CApath (may repeat)
//	servername=NAME  the TLS SNI name: hostname, nexthop, or a literal
//	connection_reuse=yes|no  cache this destination's TLS sessions
//	                 (smtp_tls_connection_reuse for this destination)
//
// Anything else is an error, which defers the mail.
func (p TLSPolicy) withTableValue(value string) (TLSPolicy, error) {
	f := strings.Fields(value)
	if len(f) == 0 {
		return p, errors.New("empty policy")
	}
	out := p
	out.Level = strings.ToLower(f[0])
	switch out.Level {
	case "none", "may", "encrypt", "verify", "secure", "dane":
	case "dane-only", "fingerprint":
		return p, fmt.Errorf("security level %s is not supported", out.Level)
	default:
		return p, fmt.Errorf("unknown security level %q", f[0])
	}
	var tafiles []string
	for _, attr := range f[1:] {
		name, val, ok := strings.Cut(attr, "=")
		if !ok || val == "" {
			return p, fmt.Errorf("attribute %q: want name=value", attr)
		}
		list := strings.Split(val, ":")
		switch strings.ToLower(name) {
		case "match":
			switch out.Level {
			case "verify":
				out.VerifyCertMatch = list
			case "secure":
				out.SecureCertMatch = list
			default:
				return p, fmt.Errorf("match= is for levels verify and secure, not %s", out.Level)
			}
		case "protocols":
			out.Protocols, out.MandatoryProtocols = list, list
		case "ciphers":
			switch strings.ToLower(val) {
			case "export", "low", "medium", "high":
			default:
				return p, fmt.Errorf("ciphers=%s is not supported (export, low, medium, high)", val)
			}
		case "tafile":
			tafiles = append(tafiles, val)
		case "servername":
			out.ServerName = val
		case "connection_reuse":
			switch strings.ToLower(val) {
			case "yes":
				out.ConnectionReuse = true
			case "no":
				out.ConnectionReuse = false
			default:
				return p, fmt.Errorf("connection_reuse=%s: want yes or no", val)
			}
		default:
			return p, fmt.Errorf("unknown attribute %q", name)
		}
	}
	if len(tafiles) > 0 {
		if out.Level != "verify" && out.Level != "secure" {
			return p, fmt.Errorf("tafile= is for levels verify and secure, not %s", out.Level)
		}
		out.CAFile, out.CAPath, out.TAFiles = "", "", tafiles
	}
	return out, nil
}
