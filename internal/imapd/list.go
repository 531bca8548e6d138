package imapd

import (
	"context"
	"slices"
	"strings"
)

// listOptions are LIST-EXTENDED's selection and return options
// (RFC 5258 3, RFC 6154 5.1, RFC 5819).
type listOptions struct {
	extended       bool
	selSubscribed  bool
	selSpecialUse  bool
	recursiveMatch bool
	retSubscribed  bool
	retChildren    bool
	retSpecialUse  bool
	retStatus      []string
}

// cmdList is LIST (RFC 3501 6.3.8) with LIST-EXTENDED (RFC 5258),
// SPECIAL-USE (RFC 6154) and LIST-STATUS (RFC 5819).
func (s *session) cmdList(c *command, p *parser) (status, error) {
	var o listOptions
	if err := p.sp(); err != nil {
		return status{}, err
	}
	if b, _ := p.peek(); b == '(' {
		o.extended = true
		err := p.list(func() error {
			a, err := p.atom()
			if err != nil {
				return err
			}
			switch strings.ToUpper(a) {
			case "SUBSCRIBED":
				o.selSubscribed = true
			case "REMOTE":
			case "RECURSIVEMATCH":
				o.recursiveMatch = true
			case "SPECIAL-USE":
				o.selSpecialUse = true
			default:
				return badSyntax("Unknown LIST selection option %s", a)
			}
			return nil
		})
		if err != nil {
			return status{}, err
		}
		if o.recursiveMatch && !o.selSubscribed && !o.selSpecialUse {
			// RFC 5258 3: RECURSIVEMATCH needs another selection option.
			return status{}, badSyntax("RECURSIVEMATCH must not occur alone")
		}
		if err := p.sp(); err != nil {
			return status{}, err
		}
	}
	ref, err := p.astring()
	if err != nil {
		return status{}, err
	}
	if err := p.sp(); err != nil {
		return status{}, err
	}
	var patterns []string
	if b, _ := p.peek(); b == '(' {
		o.extended = true
		err = p.list(func() error {
			pat, err := p.listMailbox()
			patterns = append(patterns, pat)
			return err
		})
	} else {
		var pat string
		pat, err = p.listMailbox()
		patterns = append(patterns, pat)
	}
	if err != nil {
		return status{}, err
	}
	if !p.atEOL() {
		if err := p.sp(); err != nil {
			return status{}, err
		}
		a, err := p.atom()
		if err != nil {
			return status{}, err
		}
		if !strings.EqualFold(a, "RETURN") {
			return status{}, badSyntax("Expected RETURN")
		}
		if err := p.sp(); err != nil {
			return status{}, err
		}
		o.extended = true
		err = p.list(func() error {
			a, err := p.atom()
			if err != nil {
				return err
			}
			switch strings.ToUpper(a) {
			case "SUBSCRIBED":
				o.retSubscribed = true
			case "CHILDREN":
				o.retChildren = true
			case "SPECIAL-USE":
				o.retSpecialUse = true
			case "STATUS":
				if err := p.sp(); err != nil {
					return err
				}
				o.retStatus, err = s.statusItemList(p)
				return err
			default:
				return badSyntax("Unknown LIST return option %s", a)
			}
			return nil
		})
		if err != nil {
			return status{}, err
		}
	}
	if err := p.crlf(); err != nil {
		return status{}, err
	}
	if len(patterns) == 1 && patterns[0] == "" && !o.extended {
		// RFC 3501 6.3.8: an empty name asks for the separator and root.
		s.w.WriteString(`* LIST (\Noselect) `)
		s.w.str(s.opts.Separator)
		s.w.WriteString(" \"\"\r\n")
		return ok("List completed."), nil
	}
	return s.listMailboxes(s.ctx, "LIST", ref, patterns, o)
}

// cmdLsub is RFC 3501 6.3.9.
func (s *session) cmdLsub(c *command, p *parser) (status, error) {
	if err := p.sp(); err != nil {
		return status{}, err
	}
	ref, err := p.astring()
	if err != nil {
		return status{}, err
	}
	if err := p.sp(); err != nil {
		return status{}, err
	}
	pat, err := p.listMailbox()
	if err != nil {
		return status{}, err
	}
	if err := p.crlf(); err != nil {
		return status{}, err
	}
	return s.listMailboxes(s.ctx, "LSUB", ref, []string{pat}, listOptions{selSubscribed: true})
}

func (s *session) listMailboxes(ctx context.Context, verb, ref string, patterns []string, o listOptions) (status, error) {
	entries, err := s.listEntries(ctx)
	if err != nil {
		return s.storeError(err, "LIST"), nil
	}
	var matchers []patternMatcher
	for _, pat := range patterns {
		if pat == "" {
			continue
		}
		// RFC 3501 6.3.8: the reference is prefixed to the pattern.
		matchers = append(matchers, newPatternMatcher(ref+pat, s.opts.Separator))
	}
	matches := func(name string) bool {
		for _, m := range matchers {
			if m.match(name) {
				return true
			}
		}
		return false
	}
	for _, e := range entries {
		if !matches(e.name) {
			continue
		}
		attrs := e.attrs
		var childInfo bool
		switch {
		case verb == "LSUB":
			if !e.subscribed {
				// RFC 3501 6.3.9: a "%" match on an unsubscribed
				// parent of a subscribed mailbox is \Noselect; when
				// the subscribed child matches itself ("*"), the
				// parent is not listed.
				if !e.childSub || subscribedChildMatches(entries, e, s.opts.Separator, matches) {
					continue
				}
				attrs = []string{`\Noselect`}
			} else {
				attrs = nil
				if !e.exists || hasAttr(e.attrs, `\Noselect`) {
					attrs = []string{`\Noselect`}
				}
			}
		case o.selSubscribed:
			if !e.subscribed {
				if !o.recursiveMatch || !e.childSub {
					continue
				}
				childInfo = true
			}
		case o.selSpecialUse:
			if !hasSpecialUse(attrs) {
				continue
			}
		}
		if verb == "LIST" {
			attrs = slices.Clone(attrs)
			// RFC 5258 3.4: in extended LIST a made-up parent is
			// \NonExistent.
			if o.extended && !e.exists && !hasAttr(attrs, `\NonExistent`) {
				attrs = append(attrs, `\NonExistent`)
			}
			if (o.retSubscribed || o.selSubscribed) && e.subscribed {
				attrs = append(attrs, `\Subscribed`)
			}
		}
		s.w.WriteString("* " + verb + " ")
		s.w.flags(attrs)
		s.w.WriteByte(' ')
		s.w.str(s.opts.Separator)
		s.w.WriteByte(' ')
		s.writeMailboxName(e.name)
		if childInfo {
			s.w.WriteString(` ("CHILDINFO" ("SUBSCRIBED"))`)
		}
		s.w.WriteString("\r\n")
		if len(o.retStatus) > 0 && e.exists && !hasAttr(attrs, `\Noselect`) {
			st, err := s.account.Status(ctx, e.storeName)
			if err == nil {
				s.writeStatus(e.storeName, o.retStatus, st)
			}
		}
	}
	if verb == "LSUB" {
		return ok("Lsub completed."), nil
	}
	return ok("List completed."), nil
}

func hasSpecialUse(attrs []string) bool {
	for _, a := range attrs {
		if isSpecialUse(a) {
			return true
		}
	}
	return false
}

// subscribedChildMatches reports whether a subscribed descendant of e
// matches the LSUB pattern.
func subscribedChildMatches(entries []*listEntry, e *listEntry, sep string, matches func(string) bool) bool {
	prefix := e.name + sep
	for _, c := range entries {
		if c.subscribed && strings.HasPrefix(c.name, prefix) && matches(c.name) {
			return true
		}
	}
	return false
}
