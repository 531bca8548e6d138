package rewrite

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
)

// AliasKind is what an aliases(5) destination is.
type AliasKind int

// The destinations of aliases(5).
const (
	AliasAddress AliasKind = iota // a mail address or local name to deliver to
	AliasCommand                  // "|command": piped to a shell command
	AliasFile                     // "/file/name": appended to a file
)

// AliasTarget is one destination an alias expands to.
type AliasTarget struct {
	Kind  AliasKind
	Value string // the address, the command (without "|") or the path
}

// AliasOptions are the local(8) settings ExpandAliases follows.
type AliasOptions struct {
	// Delimiter is recipient_delimiter: "user+ext" is looked up, then
	// "user".
	Delimiter string
	// AllowCommands and AllowFiles are allow_mail_to_commands and
	// allow_mail_to_files containing "alias"; IncludeCommands and
	// IncludeFiles the same for "include" (destinations read from
	// :include: files).
	AllowCommands, AllowFiles     bool
	IncludeCommands, IncludeFiles bool
	// MaxDepth bounds nesting (1000 when zero), which also ends loops.
	MaxDepth int
	// MaxSteps bounds the lookups and include files one expansion may
	// use (10000 when zero), so that lists including each other cannot
	// grow without end.
	MaxSteps int
	// ReadFile reads an :include: file; nil means os.ReadFile.
	ReadFile func(path string) ([]byte, error)

	steps *int // lookups so far, shared by one expansion
}

// ErrAliasRefused is wrapped when an alias names a command or file that
// the allow_mail_to_* settings do not allow; local(8) bounces such mail.
var ErrAliasRefused = errors.New("alias destination not allowed")

// ExpandAliases expands the local name through alias_maps (aliases(5)),
// as local(8) does at delivery: a result that is itself an alias is
// expanded again, ":include:/file" destinations are read, "|command" and
// "/file" destinations are returned only when allowed, and a name that
// expands to itself (or "\name") is delivered to its own mailbox. A name
// with no alias gives itself. err wraps ErrAliasRefused for a refused
// destination and ErrAliasExpansion for nesting beyond MaxDepth.
func ExpandAliases(ctx context.Context, aliases Table, name string, o AliasOptions) ([]AliasTarget, error) {
	if o.MaxDepth <= 0 {
		o.MaxDepth = 1000
	}
	if o.ReadFile == nil {
		o.ReadFile = os.ReadFile
	}
	if o.MaxSteps <= 0 {
		o.MaxSteps = 10000
	}
	var out []AliasTarget
	seen := map[string]bool{}
	steps := 0
	o.steps = &steps
	err := expandAlias(ctx, aliases, name, o, 0, false, seen, &out)
	return out, err
}

// step counts one lookup or include file against MaxSteps.
func (o *AliasOptions) step(name string) error {
	*o.steps++
	if *o.steps > o.MaxSteps {
		return fmt.Errorf("%w: more than %d alias lookups for %s", ErrAliasExpansion, o.MaxSteps, name)
	}
	return nil
}

func expandAlias(ctx context.Context, t Table, name string, o AliasOptions, depth int, included bool, seen map[string]bool, out *[]AliasTarget) error {
	if depth > o.MaxDepth {
		return fmt.Errorf("%w: alias_maps nesting beyond %d for %s", ErrAliasExpansion, o.MaxDepth, name)
	}
	if err := o.step(name); err != nil {
		return err
	}
	if strings.HasPrefix(name, "\\") {
		// "\user": the user's own mailbox, never expanded again.
		addTarget(out, seen, AliasTarget{AliasAddress, name[1:]})
		return nil
	}
	local, domain := SplitAddress(name)
	vals, err := lookupAlias(ctx, t, local, domain, o.Delimiter)
	if err != nil {
		return err
	}
	if vals == nil {
		addTarget(out, seen, AliasTarget{AliasAddress, name})
		return nil
	}
	for _, v := range vals {
		if err := expandDest(ctx, t, name, v, o, depth, included, seen, out); err != nil {
			return err
		}
	}
	return nil
}

// lookupAlias looks a local name up: "user+ext" then "user", lower case
// as Postfix folds alias keys. Only names of our local domains have
// aliases, so a domain part is ignored by the caller's choice of name.
func lookupAlias(ctx context.Context, t Table, local, domain, delims string) ([]string, error) {
	if t == nil || domain != "" {
		return nil, nil
	}
	keys := []string{strings.ToLower(local)}
	if base, ext := splitExtension(local, delims); ext != "" {
		keys = append(keys, strings.ToLower(base))
	}
	for _, k := range keys {
		vals, err := t.Lookup(ctx, k)
		if err != nil {
			return nil, fmt.Errorf("alias_maps: lookup %s: %w", k, err)
		}
		if res := splitResults(vals); len(res) > 0 {
			return res, nil
		}
	}
	return nil, nil
}

func expandDest(ctx context.Context, t Table, name, v string, o AliasOptions, depth int, included bool, seen map[string]bool, out *[]AliasTarget) error {
	v = strings.TrimSpace(v)
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' && (strings.HasPrefix(v[1:], "|") || strings.HasPrefix(v[1:], "/")) {
		v = v[1 : len(v)-1] // "|command with spaces"
	}
	allowCmd, allowFile := o.AllowCommands, o.AllowFiles
	if included {
		allowCmd, allowFile = o.IncludeCommands, o.IncludeFiles
	}
	switch {
	case strings.HasPrefix(v, "|"):
		if !allowCmd {
			return fmt.Errorf("%w: mail to command is restricted: alias %s -> %s", ErrAliasRefused, name, v)
		}
		addTarget(out, seen, AliasTarget{AliasCommand, strings.TrimSpace(v[1:])})
	case strings.HasPrefix(strings.ToLower(v), ":include:"):
		path := strings.TrimSpace(v[len(":include:"):])
		if depth >= o.MaxDepth {
			return fmt.Errorf("%w: :include: nesting beyond %d for %s", ErrAliasExpansion, o.MaxDepth, name)
		}
		if err := o.step(name); err != nil {
			return err
		}
		data, err := o.ReadFile(path)
		if err != nil {
			return fmt.Errorf("alias %s: cannot read include file %s: %w", name, path, err)
		}
		for _, d := range ParseIncludeFile(string(data)) {
			if err := expandDest(ctx, t, name, d, o, depth+1, true, seen, out); err != nil {
				return err
			}
		}
	case strings.HasPrefix(v, "/"):
		if !allowFile {
			return fmt.Errorf("%w: mail to file is restricted: alias %s -> %s", ErrAliasRefused, name, v)
		}
		addTarget(out, seen, AliasTarget{AliasFile, v})
	case strings.EqualFold(v, name) || strings.HasPrefix(v, "\\"):
		addTarget(out, seen, AliasTarget{AliasAddress, strings.TrimPrefix(v, "\\")})
	default:
		return expandAlias(ctx, t, v, o, depth+1, included, seen, out)
	}
	return nil
}

func addTarget(out *[]AliasTarget, seen map[string]bool, a AliasTarget) {
	k := fmt.Sprintf("%d\x00%s", a.Kind, strings.ToLower(a.Value))
	if !seen[k] {
		seen[k] = true
		*out = append(*out, a)
	}
}

// ParseIncludeFile reads the destinations of an :include: file
// (aliases(5)): comma- or line-separated, "#" comment lines and blank
// lines skipped, lines starting with white space continuing the
// previous one.
func ParseIncludeFile(data string) []string {
	var logical []string
	sc := bufio.NewScanner(strings.NewReader(data))
	sc.Buffer(make([]byte, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if (line[0] == ' ' || line[0] == '\t') && len(logical) > 0 {
			logical[len(logical)-1] += " " + trimmed
			continue
		}
		logical = append(logical, trimmed)
	}
	return splitResults(logical)
}
