package rewrite

import (
	"context"
	"fmt"
)

// WithTables adds lookup tables to a domain list: Postfix lets
// virtual_alias_domains (guide 001: ldap:…), virtual_mailbox_domains,
// relay_domains and mydestination name tables whose keys are domains.
// A domain matches when any table has it as a key.
func (l *DomainList) WithTables(tables ...Table) *DomainList {
	if l == nil {
		l = NewDomainList(nil, false)
	}
	l.tables = append(l.tables, tables...)
	return l
}

// MatchContext is Match that also asks the list's tables. err is for a
// table that could not answer.
func (l *DomainList) MatchContext(ctx context.Context, domain string) (bool, error) {
	if l.Match(domain) {
		return true, nil
	}
	if l == nil || len(l.tables) == 0 {
		return false, nil
	}
	d := Canonical(domain)
	if d == "" {
		return false, nil
	}
	for _, t := range l.tables {
		vals, err := t.Lookup(ctx, d)
		if err != nil {
			return false, fmt.Errorf("domain lookup of %s: %w", d, err)
		}
		if len(vals) > 0 {
			return true, nil
		}
	}
	return false, nil
}

// ClassifyContext is Classify with the domain lists' tables consulted;
// err means a table could not answer and the class is unknown for now.
func (d *Domains) ClassifyContext(ctx context.Context, domain string) (Class, error) {
	return d.classify(ctx, domain, true)
}
