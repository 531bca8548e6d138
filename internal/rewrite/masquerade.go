package rewrite

import (
	"context"
	"fmt"
	"strings"
)

// Masquerade is cleanup's address masquerading (ADDRESS_REWRITING_README
// "Address masquerading", cleanup_masq.c): "user@host.sub.example.com"
// becomes "user@example.com" when example.com is in masquerade_domains.
// The zero value masquerades nothing.
type Masquerade struct {
	// Domains is masquerade_domains in order. The first element that
	// equals the address's domain or is a parent of it decides: a parent
	// replaces the domain, the domain itself leaves it alone, and an
	// element "!name" leaves name and its subdomains alone. So
	// "!sub.example.com, example.com" keeps sub.example.com while
	// "example.com, !sub.example.com" masquerades it anyway.
	Domains []string
	// Classes is masquerade_classes: the address classes (EnvelopeSender,
	// EnvelopeRecipient, HeaderSender, HeaderRecipient) masqueraded; nil
	// means Postfix's default, every class but envelope_recipient.
	Classes map[string]bool
	// Exceptions is masquerade_exceptions: local parts (compared in lower
	// case, extension included) never masqueraded; ExceptionTables are
	// its type:name elements, looked up with the lower-case local part.
	Exceptions      []string
	ExceptionTables []Table
}

// NewMasquerade builds a Masquerade from the settings' elements as main.cf
// gives them; exceptions that name tables are opened with open.
func NewMasquerade(domains, classes, exceptions []string, open Opener) (*Masquerade, error) {
	m := &Masquerade{}
	for _, d := range domains {
		neg := strings.HasPrefix(d, "!")
		d = Canonical(strings.TrimPrefix(d, "!"))
		if d == "" {
			continue
		}
		if neg {
			d = "!" + d
		}
		m.Domains = append(m.Domains, d)
	}
	if classes != nil {
		m.Classes = map[string]bool{}
		for _, c := range classes {
			switch c {
			case EnvelopeSender, EnvelopeRecipient, HeaderSender, HeaderRecipient:
				m.Classes[c] = true
			default:
				return nil, fmt.Errorf("masquerade_classes: unknown class %q (want envelope_sender, envelope_recipient, header_sender, header_recipient)", c)
			}
		}
	}
	for _, e := range exceptions {
		if strings.Contains(e, ":") {
			t, err := OpenMaps(open, "masquerade_exceptions", []string{e})
			if err != nil {
				return nil, err
			}
			m.ExceptionTables = append(m.ExceptionTables, t)
			continue
		}
		m.Exceptions = append(m.Exceptions, strings.ToLower(e))
	}
	return m, nil
}

// Applies tells whether addresses of class are masqueraded.
func (m *Masquerade) Applies(class string) bool {
	if m == nil || len(m.Domains) == 0 {
		return false
	}
	return classOn(m.Classes, class, EnvelopeSender, HeaderSender, HeaderRecipient)
}

// Apply masquerades addr (internal form, "local@domain") for class. An
// address without a domain, of a class not masqueraded, or whose local
// part is an exception is returned unchanged. err is for an exception
// table that could not answer.
func (m *Masquerade) Apply(ctx context.Context, class, addr string) (string, error) {
	if !m.Applies(class) {
		return addr, nil
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return addr, nil
	}
	local, domain := addr[:at], strings.ToLower(addr[at+1:])
	if m.excepted(local) {
		return addr, nil
	}
	if len(m.ExceptionTables) > 0 {
		key := strings.ToLower(local)
		for _, t := range m.ExceptionTables {
			vals, err := t.Lookup(ctx, key)
			if err != nil {
				return addr, lookupError("masquerade_exceptions", addr, err)
			}
			if len(vals) > 0 {
				return addr, nil
			}
		}
	}
	for _, d := range m.Domains {
		keep := strings.HasPrefix(d, "!")
		d = strings.TrimPrefix(d, "!")
		switch {
		case domain == d:
			return addr, nil
		case strings.HasSuffix(domain, "."+d):
			if keep {
				return addr, nil
			}
			return local + "@" + d, nil
		}
	}
	return addr, nil
}

func (m *Masquerade) excepted(local string) bool {
	for _, e := range m.Exceptions {
		if strings.EqualFold(e, local) {
			return true
		}
	}
	return false
}
