package lookup

import (
	"errors"
	"fmt"
	"strings"
)

// The %-expansions of Postfix's database tables (db_common.c, described
// in ldap_table(5) and mysql_table(5)):
//
//	%%       a literal "%"
//	%s       the value: the lookup key in a query, the result in result_format
//	%u       the local part of the value when it has an "@", else all of it;
//	         an empty local part suppresses the query (or this result)
//	%d       the domain of the value; no "@" or an empty domain suppresses it
//	%1..%9   the domain's labels from the right (%1 is "com" in
//	         user@mail.example.com); a missing label suppresses it
//	%S %U %D like %s %u %d; in result_format they take the lookup key
//	         instead of the result
//
// Any other character after "%" is an error when the template is
// checked. Every substituted value goes through quote (RFC 4515
// escaping for LDAP filters, RFC 4514 for DNs, parameter binding for
// SQL), so a key's bytes never change the query's meaning.

// errSuppressed means an expansion named a part the value lacks:
// Postfix skips the query (or the result) without an error.
var errSuppressed = errors.New("expansion suppressed")

// checkTemplate rejects unknown % sequences.
func checkTemplate(tmpl string) error {
	for i := 0; i < len(tmpl); i++ {
		if tmpl[i] != '%' {
			continue
		}
		if i+1 >= len(tmpl) {
			return errors.New("\"%\" at the end of the template")
		}
		i++
		if !strings.ContainsRune("%sudSUD123456789", rune(tmpl[i])) {
			return fmt.Errorf("invalid expansion %%%c (known: %%%% %%s %%u %%d %%S %%U %%D %%1-%%9)", tmpl[i])
		}
	}
	return nil
}

// usesKey says whether a template depends on the lookup key at all.
func usesKey(tmpl string) bool {
	for i := 0; i+1 < len(tmpl); i++ {
		if tmpl[i] == '%' {
			if tmpl[i+1] != '%' {
				return true
			}
			i++
		}
	}
	return false
}

// addrParts splits value at its last "@" as db_common does.
func addrParts(value string) (local, domain string, hasAt bool) {
	i := strings.LastIndexByte(value, '@')
	if i < 0 {
		return value, "", false
	}
	return value[:i], value[i+1:], true
}

// expandPart returns what %c stands for in value.
func expandPart(c byte, value string) (string, error) {
	local, domain, hasAt := addrParts(value)
	switch c {
	case 's', 'S':
		return value, nil
	case 'u', 'U':
		if hasAt && local == "" {
			return "", errSuppressed
		}
		return local, nil
	case 'd', 'D':
		if !hasAt || domain == "" {
			return "", errSuppressed
		}
		return domain, nil
	}
	if c >= '1' && c <= '9' {
		if !hasAt || domain == "" {
			return "", errSuppressed
		}
		labels := strings.Split(domain, ".")
		n := int(c - '0')
		if n > len(labels) || labels[len(labels)-n] == "" {
			return "", errSuppressed
		}
		return labels[len(labels)-n], nil
	}
	return "", fmt.Errorf("invalid expansion %%%c", c)
}

// expandTemplate expands tmpl. In a query, key is "" and all
// expansions take value (the lookup key); in result_format, value is
// the result and the upper-case forms and %1..%9 take key. quote
// escapes every substituted value.
func expandTemplate(tmpl, value, key string, isResult bool, quote func(string) string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(tmpl); i++ {
		c := tmpl[i]
		if c != '%' || i+1 >= len(tmpl) {
			b.WriteByte(c)
			continue
		}
		i++
		c = tmpl[i]
		if c == '%' {
			b.WriteByte('%')
			continue
		}
		src := value
		if isResult && (c == 'S' || c == 'U' || c == 'D' || c >= '1' && c <= '9') {
			src = key
		}
		part, err := expandPart(c, src)
		if err != nil {
			return "", err
		}
		b.WriteString(quote(part))
	}
	return b.String(), nil
}

// domainFilter is the "domain" parameter of database tables: when set,
// only keys user@domain with domain in the list are looked up (others
// are not found without a query).
type domainFilter map[string]bool

func newDomainFilter(list []string) (domainFilter, error) {
	if len(list) == 0 {
		return nil, nil
	}
	f := domainFilter{}
	for _, d := range list {
		if strings.Contains(d, ":") {
			return nil, fmt.Errorf("domain: tables (%s) are not supported here; list the domains", d)
		}
		f[strings.ToLower(d)] = true
	}
	return f, nil
}

// allows says whether key may be looked up.
func (f domainFilter) allows(key string) bool {
	if f == nil {
		return true
	}
	local, domain, hasAt := addrParts(key)
	return hasAt && local != "" && f[strings.ToLower(domain)]
}

// resultCollector applies result_format and expansion_limit.
type resultCollector struct {
	format string
	limit  int
	key    string
	out    []string
}

var errExpansionLimit = errors.New("expansion_limit exceeded")

// add formats one raw value; an empty value or a suppressed expansion
// adds nothing.
func (r *resultCollector) add(v string) error {
	if v == "" {
		return nil
	}
	s, err := expandTemplate(r.format, v, r.key, true, func(x string) string { return x })
	if errors.Is(err, errSuppressed) {
		return nil
	}
	if err != nil {
		return err
	}
	if r.limit > 0 && len(r.out) >= r.limit {
		return fmt.Errorf("%w: more than %d results", errExpansionLimit, r.limit)
	}
	r.out = append(r.out, s)
	return nil
}
