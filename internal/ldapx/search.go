package ldapx

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// SearchRequest is one search (RFC 4511 4.5.1).
type SearchRequest struct {
	Base       string // DN the search starts at ("" is the root DSE)
	Scope      Scope
	Filter     string   // RFC 4515 string filter; "" means (objectClass=*)
	Attributes []string // attributes to return; nil means all user attributes
	// SizeLimit asks the server for at most this many entries (0: the
	// server's limit). Reaching it is not an error: the entries received
	// are returned.
	SizeLimit int
}

// Entry is one search result entry.
type Entry struct {
	DN         string
	Attributes []Attribute
}

// Attribute is one attribute of an entry with its values.
type Attribute struct {
	Name   string
	Values []string
}

// Values returns the values of the attribute named name, compared
// without regard to case as attribute descriptions are (RFC 4512 2.5).
func (e *Entry) Values(name string) []string {
	for _, a := range e.Attributes {
		if strings.EqualFold(a.Name, name) {
			return a.Values
		}
	}
	return nil
}

// Value returns the first value of the attribute name, "" when absent.
func (e *Entry) Value(name string) string {
	if v := e.Values(name); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (p *Pool) newRequest(r SearchRequest) *ldap.SearchRequest {
	filter := r.Filter
	if filter == "" {
		filter = "(objectClass=*)"
	}
	scope := ldap.ScopeWholeSubtree
	switch r.Scope {
	case ScopeBase:
		scope = ldap.ScopeBaseObject
	case ScopeOneLevel:
		scope = ldap.ScopeSingleLevel
	}
	attrs := r.Attributes
	if attrs == nil {
		attrs = []string{"*"}
	}
	if len(attrs) == 0 {
		// An empty list would ask for all attributes (RFC 4511
		// 4.5.1.8); "1.1" asks for none.
		attrs = []string{"1.1"}
	}
	tl := int(p.cfg.Timeout / time.Second)
	return ldap.NewSearchRequest(r.Base, scope, int(p.cfg.Deref), r.SizeLimit, tl, false, filter, attrs, nil)
}

func convertEntries(in []*ldap.Entry, out []*Entry) []*Entry {
	for _, e := range in {
		ce := &Entry{DN: e.DN, Attributes: make([]Attribute, 0, len(e.Attributes))}
		for _, a := range e.Attributes {
			ce.Attributes = append(ce.Attributes, Attribute{Name: a.Name, Values: a.Values})
		}
		out = append(out, ce)
	}
	return out
}

// Search runs r bound as the service identity. A base that does not
// exist is an error matching ErrNoSuchObject.
func (p *Pool) Search(ctx context.Context, r SearchRequest) ([]*Entry, error) {
	start := time.Now()
	var out []*Entry
	err := p.do(ctx, "search", true, true, nil, func(c *conn) error {
		res, err := c.c.Search(p.newRequest(r))
		if res != nil {
			out = convertEntries(res.Entries, out[:0])
		}
		var le *ldap.Error
		if err != nil && r.SizeLimit > 0 && errors.As(err, &le) && le.ResultCode == ldap.LDAPResultSizeLimitExceeded {
			return nil
		}
		return err
	})
	p.debugf("ldap: search base=%q scope=%s filter=%q attrs=%q: %d entries, err=%v (%v)",
		r.Base, r.Scope, r.Filter, r.Attributes, len(out), err, time.Since(start).Round(time.Microsecond))
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SearchEach runs r with the simple paged results control (RFC 2696),
// pageSize entries at a time, and calls fn with each entry; an error
// from fn stops the search and is returned. The whole search is bounded
// by ctx, each page by Config.Timeout. Servers that do not page send
// everything at once, which works too.
func (p *Pool) SearchEach(ctx context.Context, r SearchRequest, pageSize int, fn func(*Entry) error) error {
	if pageSize <= 0 {
		pageSize = 500
	}
	var fnErr error
	n := 0
	delivered := false
	start := time.Now()
	err := p.do(ctx, "search", true, false, &delivered, func(c *conn) error {
		req := p.newRequest(r)
		req.TimeLimit = 0 // per page, see Config.Timeout
		paging := ldap.NewControlPaging(uint32(pageSize))
		for {
			req.Controls = []ldap.Control{paging}
			res, err := c.c.Search(req)
			if err != nil {
				return err
			}
			for _, e := range convertEntries(res.Entries, nil) {
				n++
				delivered = true
				if fnErr = fn(e); fnErr != nil {
					// Abandon the paged search: tell the server with a
					// zero page size (RFC 2696 3) so it frees its state.
					if pc, ok := ldap.FindControl(res.Controls, ldap.ControlTypePaging).(*ldap.ControlPaging); ok && len(pc.Cookie) > 0 {
						stop := ldap.NewControlPaging(0)
						stop.SetCookie(pc.Cookie)
						req.Controls = []ldap.Control{stop}
						_, _ = c.c.Search(req)
					}
					return nil
				}
			}
			pc, ok := ldap.FindControl(res.Controls, ldap.ControlTypePaging).(*ldap.ControlPaging)
			if !ok || len(pc.Cookie) == 0 {
				return nil
			}
			paging.SetCookie(pc.Cookie)
		}
	})
	p.debugf("ldap: paged search base=%q scope=%s filter=%q attrs=%q: %d entries, err=%v (%v)",
		r.Base, r.Scope, r.Filter, r.Attributes, n, err, time.Since(start).Round(time.Microsecond))
	if err != nil {
		return err
	}
	return fnErr
}
