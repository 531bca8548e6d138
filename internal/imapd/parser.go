package imapd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Errors of the command reader. errLineTooLong and errLiteralTooLarge
// (non-synchronising) end the connection; a syntaxError gets a tagged BAD.
var (
	errLineTooLong = errors.New("command line too long")
)

// syntaxError is a malformed command: answered with a tagged BAD and the
// rest of the line discarded.
type syntaxError struct{ msg string }

func (e *syntaxError) Error() string { return e.msg }

func badSyntax(format string, args ...any) error {
	return &syntaxError{msg: fmt.Sprintf(format, args...)}
}

// tooBigError is a literal above the size limit. sync tells whether the
// client waits for a continuation (then nothing was sent yet).
type tooBigError struct {
	size int64
	sync bool
}

func (e *tooBigError) Error() string { return fmt.Sprintf("literal of %d octets too large", e.size) }

// parser reads one command from the connection as it streams in
// (RFC 3501 9, formal syntax). Everything but APPEND's message literal
// counts against budget, which starts at Options.MaxLineLength for each
// command, so no command can make the server buffer more than that.
type parser struct {
	br     *bufio.Reader
	budget int
	// cont sends the "+ OK" continuation request for a synchronising
	// literal (RFC 3501 7.5) and flushes it.
	cont func() error
	// lineDone is set once the command's final CRLF was read, so an
	// error found afterwards does not discard the next command.
	lineDone bool
}

func (p *parser) reset(limit int) { p.budget, p.lineDone = limit, false }

func (p *parser) take(n int) error {
	p.budget -= n
	if p.budget < 0 {
		return errLineTooLong
	}
	return nil
}

func (p *parser) peek() (byte, error) {
	b, err := p.br.Peek(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

func (p *parser) readByte() (byte, error) {
	if err := p.take(1); err != nil {
		return 0, err
	}
	return p.br.ReadByte()
}

// expect reads one byte that must be c.
func (p *parser) expect(c byte, what string) error {
	b, err := p.readByte()
	if err != nil {
		return err
	}
	if b != c {
		p.br.UnreadByte()
		p.budget++
		return badSyntax("expected %s", what)
	}
	return nil
}

func (p *parser) sp() error { return p.expect(' ', "space") }

// crlf reads the end of the command line. A bare LF is accepted, as
// Dovecot does.
func (p *parser) crlf() error {
	b, err := p.readByte()
	if err != nil {
		return err
	}
	if b == '\r' {
		b, err = p.readByte()
		if err != nil {
			return err
		}
	}
	if b != '\n' {
		p.br.UnreadByte()
		p.budget++
		return badSyntax("expected end of line")
	}
	p.lineDone = true
	return nil
}

// atEOL reports whether the next bytes end the line.
func (p *parser) atEOL() bool {
	b, err := p.peek()
	return err == nil && (b == '\r' || b == '\n')
}

// isAtomChar is ATOM-CHAR of RFC 3501 9: any CHAR except atom-specials.
func isAtomChar(b byte) bool {
	if b <= 0x1f || b >= 0x7f {
		return false
	}
	switch b {
	case '(', ')', '{', ' ', '%', '*', '"', '\\', ']':
		return false
	}
	return true
}

// readWhile reads bytes accepted by ok.
func (p *parser) readWhile(ok func(byte) bool) (string, error) {
	var sb strings.Builder
	for {
		b, err := p.peek()
		if err != nil {
			if sb.Len() > 0 && errors.Is(err, io.EOF) {
				return sb.String(), nil
			}
			return "", err
		}
		if !ok(b) {
			return sb.String(), nil
		}
		if err := p.take(1); err != nil {
			return "", err
		}
		p.br.ReadByte()
		sb.WriteByte(b)
	}
}

// atom reads an atom (RFC 3501 9).
func (p *parser) atom() (string, error) {
	s, err := p.readWhile(isAtomChar)
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", badSyntax("expected atom")
	}
	return s, nil
}

// tag reads a command tag: ATOM-CHAR except "+".
func (p *parser) tag() (string, error) {
	s, err := p.readWhile(func(b byte) bool { return isAtomChar(b) && b != '+' })
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", badSyntax("missing tag")
	}
	return s, nil
}

// listMailboxChar is list-char of RFC 3501 9: ATOM-CHAR / list-wildcards /
// resp-specials.
func listMailboxChar(b byte) bool { return isAtomChar(b) || b == '%' || b == '*' || b == ']' }

// astringChar is ASTRING-CHAR: ATOM-CHAR / resp-specials.
func astringChar(b byte) bool { return isAtomChar(b) || b == ']' }

// quoted reads a quoted string after its opening quote.
func (p *parser) quoted() (string, error) {
	var sb strings.Builder
	for {
		b, err := p.readByte()
		if err != nil {
			return "", err
		}
		switch b {
		case '"':
			return sb.String(), nil
		case '\\':
			b, err = p.readByte()
			if err != nil {
				return "", err
			}
			if b != '"' && b != '\\' {
				return "", badSyntax("invalid escape in quoted string")
			}
		case '\r', '\n':
			p.br.UnreadByte()
			p.budget++
			return "", badSyntax("unterminated quoted string")
		case 0:
			return "", badSyntax("NUL in quoted string")
		}
		sb.WriteByte(b)
	}
}

// literalHeader reads "{n}" or "{n+}" and the CRLF after it, without
// reading the literal's data. It returns the size and whether the literal
// is synchronising (the client waits for "+").
func (p *parser) literalHeader() (int64, bool, error) {
	if err := p.expect('{', "literal"); err != nil {
		return 0, false, err
	}
	digits, err := p.readWhile(func(b byte) bool { return b >= '0' && b <= '9' })
	if err != nil {
		return 0, false, err
	}
	if digits == "" || len(digits) > 18 {
		return 0, false, badSyntax("invalid literal size")
	}
	n, _ := strconv.ParseInt(digits, 10, 64)
	sync := true
	if b, err := p.peek(); err == nil && b == '+' {
		p.readByte()
		sync = false
	}
	if err := p.expect('}', "}"); err != nil {
		return 0, false, err
	}
	if err := p.crlf(); err != nil {
		return 0, false, err
	}
	p.lineDone = false // the command goes on after the literal
	return n, sync, nil
}

// literal reads a literal counted against the command budget.
func (p *parser) literal() (string, error) {
	n, sync, err := p.literalHeader()
	if err != nil {
		return "", err
	}
	if n > int64(p.budget) {
		return "", &tooBigError{size: n, sync: sync}
	}
	if sync {
		if err := p.cont(); err != nil {
			return "", err
		}
	}
	p.budget -= int(n)
	buf := make([]byte, n)
	if _, err := io.ReadFull(p.br, buf); err != nil {
		return "", err
	}
	return string(buf), nil
}

// str reads a string: quoted or literal.
func (p *parser) str() (string, error) {
	b, err := p.peek()
	if err != nil {
		return "", err
	}
	switch b {
	case '"':
		p.readByte()
		return p.quoted()
	case '{':
		return p.literal()
	}
	return "", badSyntax("expected string")
}

// astring reads an atom (with "]" allowed) or a string.
func (p *parser) astring() (string, error) {
	b, err := p.peek()
	if err != nil {
		return "", err
	}
	if b == '"' || b == '{' {
		return p.str()
	}
	s, err := p.readWhile(astringChar)
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", badSyntax("expected string or atom")
	}
	return s, nil
}

// nstring reads a string or NIL; ok is false for NIL.
func (p *parser) nstring() (s string, ok bool, err error) {
	b, err := p.peek()
	if err != nil {
		return "", false, err
	}
	if b == '"' || b == '{' {
		s, err = p.str()
		return s, true, err
	}
	a, err := p.atom()
	if err != nil {
		return "", false, err
	}
	if !strings.EqualFold(a, "NIL") {
		return "", false, badSyntax("expected string or NIL")
	}
	return "", false, nil
}

// listMailbox reads a LIST pattern: list-char atoms or a string.
func (p *parser) listMailbox() (string, error) {
	b, err := p.peek()
	if err != nil {
		return "", err
	}
	if b == '"' || b == '{' {
		return p.str()
	}
	s, err := p.readWhile(listMailboxChar)
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", badSyntax("expected mailbox pattern")
	}
	return s, nil
}

// number reads a nz-number or number (RFC 3501 9) that fits 32 bits.
func (p *parser) number() (uint32, error) {
	s, err := p.readWhile(func(b byte) bool { return b >= '0' && b <= '9' })
	if err != nil {
		return 0, err
	}
	if s == "" {
		return 0, badSyntax("expected number")
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, badSyntax("number out of range")
	}
	return uint32(n), nil
}

// number64 reads a number up to 63 bits (sizes, mod-sequences).
func (p *parser) number64() (uint64, error) {
	s, err := p.readWhile(func(b byte) bool { return b >= '0' && b <= '9' })
	if err != nil {
		return 0, err
	}
	if s == "" {
		return 0, badSyntax("expected number")
	}
	n, err := strconv.ParseUint(s, 10, 63)
	if err != nil {
		return 0, badSyntax("number out of range")
	}
	return n, nil
}

// list reads "(" item *(SP item) ")" calling item for each element; an
// empty list "()" is allowed.
func (p *parser) list(item func() error) error {
	if err := p.expect('(', "("); err != nil {
		return err
	}
	if b, err := p.peek(); err == nil && b == ')' {
		p.readByte()
		return nil
	}
	for {
		if err := item(); err != nil {
			return err
		}
		b, err := p.readByte()
		if err != nil {
			return err
		}
		switch b {
		case ')':
			return nil
		case ' ':
		default:
			return badSyntax("expected space or )")
		}
	}
}

// flag reads one flag: "\" atom or a keyword atom (RFC 3501 9 flag).
func (p *parser) flag() (string, error) {
	b, err := p.peek()
	if err != nil {
		return "", err
	}
	if b == '\\' {
		p.readByte()
		a, err := p.atom()
		if err != nil {
			return "", err
		}
		return `\` + a, nil
	}
	return p.atom()
}

// flagList reads "(" [flag *(SP flag)] ")".
func (p *parser) flagList() ([]string, error) {
	var flags []string
	err := p.list(func() error {
		f, err := p.flag()
		if err == nil {
			flags = append(flags, f)
		}
		return err
	})
	return flags, err
}

// discardLine skips to the end of the current line after an error, also
// skipping the data of a non-synchronising literal announced at its end
// (a synchronising one is never sent, as no "+" went out). It returns
// errLineTooLong when the line does not end within the budget.
func (p *parser) discardLine() error {
	if p.lineDone {
		return nil
	}
	p.lineDone = true
	var tail []byte
	for {
		b, err := p.readByte()
		if err != nil {
			return err
		}
		if b == '\n' {
			if n, ok := nonSyncLiteralAtEnd(tail); ok {
				if n > int64(p.budget) {
					return errLineTooLong
				}
				p.budget -= int(n)
				if _, err := io.CopyN(io.Discard, p.br, n); err != nil {
					return err
				}
				tail = tail[:0]
				continue
			}
			return nil
		}
		if len(tail) >= 32 {
			copy(tail, tail[1:])
			tail = tail[:31]
		}
		tail = append(tail, b)
	}
}

// nonSyncLiteralAtEnd finds "{n+}" (optionally followed by CR) at the end
// of tail.
func nonSyncLiteralAtEnd(tail []byte) (int64, bool) {
	s := strings.TrimSuffix(string(tail), "\r")
	if !strings.HasSuffix(s, "+}") {
		return 0, false
	}
	i := strings.LastIndexByte(s, '{')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(s[i+1:len(s)-2], 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}
