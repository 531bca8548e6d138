package mailstore

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Account-wide and per-mailbox control files besides dovecot-uidlist.
const (
	keywordsName      = "dovecot-keywords"
	subscriptionsName = "subscriptions"
	specialUseName    = "postcote-specialuse"
)

// parseSubscriptions reads Dovecot's subscriptions file. Version 2
// (Dovecot 2.3) is a "V\t2" line, an empty line, then one name per line
// with TAB between hierarchy levels. The older format has no header and
// uses the namespace separator, "." for Maildir++ and "/" for fs.
func parseSubscriptions(data []byte, layout string) []string {
	lines := strings.Split(string(data), "\n")
	v2 := len(lines) > 0 && strings.HasPrefix(lines[0], "V\t")
	if v2 {
		lines = lines[1:]
	}
	seen := map[string]bool{}
	var out []string
	for _, l := range lines {
		l = strings.TrimRight(l, "\r")
		if l == "" {
			continue
		}
		var name string
		switch {
		case v2:
			name = strings.ReplaceAll(l, "\t", "/")
		case layout == LayoutMaildirPP:
			name = strings.ReplaceAll(l, ".", "/")
		default:
			name = l
		}
		norm, _, err := normalizeName(name, LayoutFS, "")
		if err != nil || seen[norm] {
			continue
		}
		seen[norm] = true
		out = append(out, norm)
	}
	return out
}

// marshalSubscriptions writes version 2.
func marshalSubscriptions(names []string) []byte {
	var b bytes.Buffer
	b.WriteString("V\t2\n\n")
	for _, n := range names {
		b.WriteString(strings.ReplaceAll(n, "/", "\t"))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func (a *account) subscriptions() ([]string, error) {
	data, err := readFile(filepath.Join(a.loc.controlRoot(), subscriptionsName))
	if err != nil {
		return nil, err
	}
	return parseSubscriptions(data, a.loc.Layout), nil
}

// editSubscriptions changes the subscriptions file under its dotlock.
func (a *account) editSubscriptions(ctx context.Context, edit func([]string) []string) error {
	root := a.loc.controlRoot()
	if err := a.own.mkdirAll(root); err != nil {
		return err
	}
	path := filepath.Join(root, subscriptionsName)
	// Most edits change nothing (auto = subscribe at every login): check
	// before taking the lock.
	if data, err := readFile(path); err == nil {
		cur := parseSubscriptions(data, a.loc.Layout)
		if slices.Equal(edit(slices.Clone(cur)), cur) {
			return nil
		}
	}
	l, err := lockFile(ctx, path, a.own)
	if err != nil {
		return err
	}
	data, err := readFile(path)
	if err != nil {
		l.unlock()
		return err
	}
	names := edit(parseSubscriptions(data, a.loc.Layout))
	return l.replace(marshalSubscriptions(names), true)
}

// specialUse is postcote's record of the special-use attributes
// (RFC 6154) given at CREATE or by the configuration, one
// "<attribute> <name>" per line in postcote-specialuse at the control
// root. Dovecot keeps these in its configuration, which postcote's
// wiring re-applies at login through EnsureMailboxes, so the file can be
// rebuilt.
func parseSpecialUse(data []byte) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(string(data), "\n") {
		attr, name, ok := strings.Cut(l, " ")
		if !ok || !validSpecialUse(attr) || name == "" {
			continue
		}
		m[name] = attr
	}
	return m
}

func marshalSpecialUse(m map[string]string) []byte {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	for _, n := range names {
		b.WriteString(m[n] + " " + n + "\n")
	}
	return b.Bytes()
}

// specialUseAttrs are the RFC 6154 attributes (and \Important, RFC 8457).
var specialUseAttrs = []string{`\All`, `\Archive`, `\Drafts`, `\Flagged`, `\Junk`, `\Sent`, `\Trash`, `\Important`}

// canonicalSpecialUse returns the attribute as RFC 6154 spells it, or "".
func canonicalSpecialUse(attr string) string {
	for _, a := range specialUseAttrs {
		if strings.EqualFold(a, attr) {
			return a
		}
	}
	return ""
}

// validSpecialUse checks the attribute field of postcote-specialuse:
// one or more attributes joined by ",".
func validSpecialUse(attr string) bool {
	for _, a := range strings.Split(attr, ",") {
		if canonicalSpecialUse(a) == "" {
			return false
		}
	}
	return true
}

// canonicalSpecialUses parses a space-separated list of special-use
// attributes, as Dovecot's special_use setting allows, and returns them
// joined by ",", or an error naming one it does not know.
func canonicalSpecialUses(list string) (string, error) {
	var out []string
	for _, a := range strings.Fields(list) {
		c := canonicalSpecialUse(a)
		if c == "" {
			return "", fmt.Errorf("unsupported special-use attribute %q", a)
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return strings.Join(out, ","), nil
}

func (a *account) specialUses() (map[string]string, error) {
	data, err := readFile(filepath.Join(a.loc.controlRoot(), specialUseName))
	if err != nil {
		return nil, err
	}
	return parseSpecialUse(data), nil
}

func (a *account) editSpecialUse(ctx context.Context, edit func(map[string]string) bool) error {
	root := a.loc.controlRoot()
	if err := a.own.mkdirAll(root); err != nil {
		return err
	}
	path := filepath.Join(root, specialUseName)
	if data, err := readFile(path); err == nil && !edit(parseSpecialUse(data)) {
		return nil // nothing to change: no lock needed
	}
	l, err := lockFile(ctx, path, a.own)
	if err != nil {
		return err
	}
	data, err := readFile(path)
	if err != nil {
		l.unlock()
		return err
	}
	m := parseSpecialUse(data)
	if !edit(m) {
		l.unlock()
		return nil
	}
	return l.replace(marshalSpecialUse(m), true)
}
