package imapd

import (
	"strconv"
	"strings"
)

// fetchKind is one FETCH data item (RFC 3501 6.4.5).
type fetchKind int

const (
	fetchFlags fetchKind = iota
	fetchInternalDate
	fetchSize
	fetchUID
	fetchEnvelope
	fetchBody          // BODY without section: non-extensible structure
	fetchBodyStructure // BODYSTRUCTURE
	fetchSection       // BODY[section]<partial>, BODY.PEEK[...]
	fetchRFC822        // BODY[] that sets \Seen
	fetchRFC822Header  // BODY.PEEK[HEADER]
	fetchRFC822Text    // BODY[TEXT] that sets \Seen
)

// section is a body section specification (RFC 3501 6.4.5).
type section struct {
	path      []int
	specifier string   // "", HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT, MIME
	fields    []string // for HEADER.FIELDS (NOT)
}

type fetchItem struct {
	kind    fetchKind
	sec     section
	peek    bool
	partial bool
	offset  int64
	count   int64
	label   string // the response's item name, e.g. "BODY[HEADER]<0>"
}

// setsSeen reports whether fetching the item sets \Seen (RFC 3501
// 6.4.5).
func (it fetchItem) setsSeen() bool {
	switch it.kind {
	case fetchRFC822, fetchRFC822Text:
		return true
	case fetchSection:
		return !it.peek
	}
	return false
}

// headerOnly reports whether the message's header is enough to answer.
func (it fetchItem) headerOnly() bool {
	switch it.kind {
	case fetchRFC822Header:
		return true
	case fetchSection:
		return len(it.sec.path) == 0 && strings.HasPrefix(it.sec.specifier, "HEADER")
	}
	return false
}

// wholeMessage reports whether the item is the whole message unsliced,
// which can be streamed from the store without parsing.
func (it fetchItem) wholeMessage() bool {
	return it.kind == fetchRFC822 || (it.kind == fetchSection && len(it.sec.path) == 0 && it.sec.specifier == "" && !it.partial)
}

// parseFetchItems reads the FETCH attribute argument: a macro, one item
// or a parenthesised list.
func parseFetchItems(p *parser) ([]fetchItem, error) {
	var items []fetchItem
	if b, _ := p.peek(); b == '(' {
		err := p.list(func() error {
			it, err := parseFetchItem(p)
			items = append(items, it...)
			return err
		})
		if err == nil && len(items) == 0 {
			err = badSyntax("Empty FETCH item list")
		}
		return items, err
	}
	return parseFetchItem(p)
}

func parseFetchItem(p *parser) ([]fetchItem, error) {
	name, err := p.readWhile(func(b byte) bool { return isAtomChar(b) && b != '[' && b != '<' })
	if err != nil {
		return nil, err
	}
	name = strings.ToUpper(name)
	simple := func(k fetchKind) []fetchItem { return []fetchItem{{kind: k, label: name}} }
	switch name {
	case "ALL":
		return []fetchItem{{kind: fetchFlags, label: "FLAGS"}, {kind: fetchInternalDate, label: "INTERNALDATE"},
			{kind: fetchSize, label: "RFC822.SIZE"}, {kind: fetchEnvelope, label: "ENVELOPE"}}, nil
	case "FAST":
		return []fetchItem{{kind: fetchFlags, label: "FLAGS"}, {kind: fetchInternalDate, label: "INTERNALDATE"},
			{kind: fetchSize, label: "RFC822.SIZE"}}, nil
	case "FULL":
		return []fetchItem{{kind: fetchFlags, label: "FLAGS"}, {kind: fetchInternalDate, label: "INTERNALDATE"},
			{kind: fetchSize, label: "RFC822.SIZE"}, {kind: fetchEnvelope, label: "ENVELOPE"}, {kind: fetchBody, label: "BODY"}}, nil
	case "FLAGS":
		return simple(fetchFlags), nil
	case "INTERNALDATE":
		return simple(fetchInternalDate), nil
	case "RFC822.SIZE":
		return simple(fetchSize), nil
	case "UID":
		return simple(fetchUID), nil
	case "ENVELOPE":
		return simple(fetchEnvelope), nil
	case "BODYSTRUCTURE":
		return simple(fetchBodyStructure), nil
	case "RFC822":
		return simple(fetchRFC822), nil
	case "RFC822.HEADER":
		return simple(fetchRFC822Header), nil
	case "RFC822.TEXT":
		return simple(fetchRFC822Text), nil
	case "BODY", "BODY.PEEK":
		if b, _ := p.peek(); b != '[' {
			if name == "BODY.PEEK" {
				return nil, badSyntax("BODY.PEEK needs a section")
			}
			return simple(fetchBody), nil
		}
		it := fetchItem{kind: fetchSection, peek: name == "BODY.PEEK"}
		if err := parseSection(p, &it); err != nil {
			return nil, err
		}
		return []fetchItem{it}, nil
	case "":
		return nil, badSyntax("Missing FETCH item")
	}
	return nil, badSyntax("Unknown FETCH item %s", name)
}

// parseSection reads "[section]" and an optional "<offset.count>".
func parseSection(p *parser, it *fetchItem) error {
	p.readByte() // '['
	spec, err := p.readWhile(func(b byte) bool {
		return (b >= '0' && b <= '9') || b == '.' || (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z')
	})
	if err != nil {
		return err
	}
	parts := strings.Split(spec, ".")
	i := 0
	if spec != "" {
		for ; i < len(parts); i++ {
			n, err := strconv.Atoi(parts[i])
			if err != nil {
				break
			}
			if n <= 0 || len(it.sec.path) >= maxMIMEDepth*2 {
				return badSyntax("Invalid section part number")
			}
			it.sec.path = append(it.sec.path, n)
		}
	}
	it.sec.specifier = strings.ToUpper(strings.Join(parts[i:], "."))
	switch it.sec.specifier {
	case "", "HEADER", "TEXT":
	case "MIME":
		if len(it.sec.path) == 0 {
			return badSyntax("MIME needs a part number")
		}
	case "HEADER.FIELDS", "HEADER.FIELDS.NOT":
		if err := p.sp(); err != nil {
			return err
		}
		err := p.list(func() error {
			f, err := p.astring()
			if err == nil {
				it.sec.fields = append(it.sec.fields, f)
			}
			return err
		})
		if err != nil {
			return err
		}
		if len(it.sec.fields) == 0 {
			return badSyntax("Empty header field list")
		}
	default:
		return badSyntax("Invalid section %s", spec)
	}
	if err := p.expect(']', "]"); err != nil {
		return err
	}
	var label strings.Builder
	label.WriteString("BODY[")
	for k, n := range it.sec.path {
		if k > 0 {
			label.WriteByte('.')
		}
		label.WriteString(strconv.Itoa(n))
	}
	if it.sec.specifier != "" {
		if len(it.sec.path) > 0 {
			label.WriteByte('.')
		}
		label.WriteString(it.sec.specifier)
	}
	if len(it.sec.fields) > 0 {
		label.WriteString(" (")
		for k, f := range it.sec.fields {
			if k > 0 {
				label.WriteByte(' ')
			}
			// Dovecot echoes field names in upper case.
			label.WriteString(astringForm(strings.ToUpper(f)))
		}
		label.WriteByte(')')
	}
	label.WriteByte(']')
	if b, _ := p.peek(); b == '<' {
		p.readByte()
		off, err := p.number64()
		if err != nil {
			return err
		}
		if err := p.expect('.', "."); err != nil {
			return err
		}
		cnt, err := p.number64()
		if err != nil {
			return err
		}
		if cnt == 0 {
			return badSyntax("Partial length must be non-zero")
		}
		if err := p.expect('>', ">"); err != nil {
			return err
		}
		it.partial, it.offset, it.count = true, int64(off), int64(cnt)
		// RFC 3501 7.4.2: only the origin octet is returned.
		label.WriteString("<" + strconv.FormatUint(off, 10) + ">")
	}
	it.label = label.String()
	return nil
}

// astringForm renders s as an atom, or quoted when it is not one.
func astringForm(s string) string {
	if s != "" && isAtomString(s) {
		return s
	}
	return strconv.Quote(s)
}
