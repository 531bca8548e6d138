package doveconf

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// WriteNonDefault prints what `doveconf -n` prints: every setting whose
// value differs from Dovecot's default, with the sections written in
// the configuration, nested and indented by two spaces, entries sorted
// by name. "key = <path" values are shown as the path, not the file's
// content; values with leading or trailing blanks are quoted.
func (c *Config) WriteNonDefault(w io.Writer) error {
	if _, err := fmt.Fprintf(w, "# postcote doveconf -n: %s\n", c.Path); err != nil {
		return err
	}
	return writeSection(w, c.Root, "")
}

type entry struct {
	sortKey string
	order   int
	setting *Setting
	section *Section
}

func writeSection(w io.Writer, s *Section, indent string) error {
	var entries []entry
	free := sectionRules[s.Type].freeForm
	seen := map[string]bool{}
	for i := len(s.Settings) - 1; i >= 0; i-- { // the last assignment wins
		st := &s.Settings[i]
		if seen[st.Key] {
			continue
		}
		seen[st.Key] = true
		if !free && st.File == "" {
			if _, known := LookupSetting(s.scope(), st.Key); known && s.defaultOf(st.Key) == st.Value {
				continue
			}
		}
		entries = append(entries, entry{sortKey: st.Key, order: i, setting: st})
	}
	for i, sub := range s.Sections {
		entries = append(entries, entry{sortKey: sub.Type, order: len(s.Settings) + i, section: sub})
	}
	sort.SliceStable(entries, func(i, j int) bool {
		if entries[i].sortKey != entries[j].sortKey {
			return entries[i].sortKey < entries[j].sortKey
		}
		return entries[i].order < entries[j].order
	})
	for _, e := range entries {
		if e.setting != nil {
			if _, err := fmt.Fprintf(w, "%s%s = %s\n", indent, e.setting.Key, formatValue(e.setting)); err != nil {
				return err
			}
			continue
		}
		// A section whose settings are all defaults is left out, as
		// doveconf -n leaves out the stock, all-commented service blocks.
		var body strings.Builder
		if err := writeSection(&body, e.section, indent+"  "); err != nil {
			return err
		}
		if body.Len() == 0 {
			continue
		}
		head := e.section.Type
		if e.section.Name != "" {
			head += " " + quoteName(e.section.Name)
		}
		if _, err := fmt.Fprintf(w, "%s%s {\n%s%s}\n", indent, head, body.String(), indent); err != nil {
			return err
		}
	}
	return nil
}

func formatValue(st *Setting) string {
	if st.File != "" {
		return "<" + st.File
	}
	v := strings.ReplaceAll(st.Value, "\n", " ")
	if v != strings.TrimSpace(v) || strings.Contains(v, "#") {
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
	}
	return v
}

func quoteName(n string) string {
	if strings.ContainsAny(n, " \t\"{}#") {
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(n) + `"`
	}
	return n
}

// WriteDefaults prints every known setting with its default, grouped
// by section type, like `doveconf -d`; with docs a comment line with
// the description and postcote's status precedes each.
func WriteDefaults(w io.Writer, docs bool) error {
	for _, s := range KnownSettings() {
		name := s.Name
		if s.Scope != "" {
			name = s.Scope + "/" + s.Name
		}
		if docs {
			if _, err := fmt.Fprintf(w, "# %s (%s)\n", s.Doc, s.Status); err != nil {
				return err
			}
		}
		if _, err := fmt.Fprintf(w, "%s = %s\n", name, s.Default); err != nil {
			return err
		}
	}
	return nil
}
