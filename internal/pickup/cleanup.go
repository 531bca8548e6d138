package pickup

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"net/mail"
	"strings"
	"time"

	"postcote/internal/queue"
)

// Site is what cleanup needs from main.cf.
type Site struct {
	MyHostname string // for Received and Message-Id
	MyOrigin   string // appended to addresses without a domain
	// HeaderFrom is header_from_format: the form of the From: header
	// cleanup adds (the zero value is Postfix's default, standard).
	HeaderFrom FromFormat
}

// FromFormat is a header_from_format setting (postconf(5), Postfix 3.3).
type FromFormat int

const (
	// FromStandard is "From: Full Name <sender>" (RFC 5322 3.4).
	FromStandard FromFormat = iota
	// FromObsolete is "From: sender (Full Name)", the comment form of
	// Postfix before 3.3 (RFC 5322 4.4 keeps it readable).
	FromObsolete
)

// ParseFromFormat reads a header_from_format value: "standard" or
// "obsolete".
func ParseFromFormat(v string) (FromFormat, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "standard":
		return FromStandard, nil
	case "obsolete":
		return FromObsolete, nil
	}
	return 0, fmt.Errorf("header_from_format: invalid value %q (want standard or obsolete)", v)
}

// ErrNoRecipients: neither the command line nor (with -t) the header
// named a recipient.
var ErrNoRecipients = errors.New("no recipient addresses found in message header")

// field is one header field, its lines as written (without line ends).
type field struct {
	name  string // lower case
	lines []string
}

// message is a message split into header fields and body lines.
type message struct {
	fields []field
	body   []string // after the empty line
}

// splitMessage splits msg (LF or CRLF line ends) into header fields and
// body. The header ends at the first empty line or at the first line that
// is neither a field (RFC 5322 2.2: name, colon) nor a continuation. A
// leading mbox "From " line is dropped, as Postfix's sendmail does.
func splitMessage(msg []byte) message {
	text := string(msg)
	text = strings.TrimSuffix(text, "\n")
	var lines []string
	if len(msg) > 0 {
		lines = strings.Split(text, "\n")
	}
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	if len(lines) > 0 && strings.HasPrefix(lines[0], "From ") {
		lines = lines[1:]
	}
	var m message
	i := 0
	for ; i < len(lines); i++ {
		l := lines[i]
		if l == "" {
			i++
			break
		}
		if (l[0] == ' ' || l[0] == '\t') && len(m.fields) > 0 {
			f := &m.fields[len(m.fields)-1]
			f.lines = append(f.lines, l)
			continue
		}
		name, ok := fieldName(l)
		if !ok {
			break
		}
		m.fields = append(m.fields, field{name: strings.ToLower(name), lines: []string{l}})
	}
	m.body = lines[i:]
	return m
}

// fieldName returns the name of a header line (RFC 5322 3.6.8: printable
// ASCII but colon, at least one character).
func fieldName(l string) (string, bool) {
	colon := strings.IndexByte(l, ':')
	if colon <= 0 {
		return "", false
	}
	for i := 0; i < colon; i++ {
		if c := l[i]; c < 33 || c > 126 {
			return "", false
		}
	}
	return l[:colon], true
}

func (f *field) value() string {
	v := strings.Join(f.lines, " ")
	_, v, _ = strings.Cut(v, ":")
	return strings.TrimSpace(v)
}

func (m *message) has(name string) bool {
	for _, f := range m.fields {
		if f.name == name {
			return true
		}
	}
	return false
}

// headerRecipients returns the addresses -t takes: those of Resent-To,
// Resent-Cc and Resent-Bcc when the message has any of them (RFC 5322
// 3.6.6: the message was resent), else those of To, Cc and Bcc.
func (m *message) headerRecipients() []string {
	names := []string{"to", "cc", "bcc"}
	for _, n := range []string{"resent-to", "resent-cc", "resent-bcc"} {
		if m.has(n) {
			names = []string{"resent-to", "resent-cc", "resent-bcc"}
			break
		}
	}
	var out []string
	for _, f := range m.fields {
		for _, n := range names {
			if f.name == n {
				out = append(out, parseAddresses(f.value())...)
			}
		}
	}
	return out
}

// parseAddresses returns the addr-specs of an address list (RFC 5322
// 3.4), groups included; when the list does not parse it falls back to
// Postfix's leniency: each comma-separated item, its <…> part if any.
func parseAddresses(v string) []string {
	if list, err := mail.ParseAddressList(v); err == nil {
		out := make([]string, 0, len(list))
		for _, a := range list {
			out = append(out, a.Address)
		}
		return out
	}
	var out []string
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if lt := strings.LastIndexByte(part, '<'); lt >= 0 {
			if gt := strings.IndexByte(part[lt:], '>'); gt > 0 {
				part = part[lt+1 : lt+gt]
			}
		}
		if part != "" && !strings.ContainsAny(part, " \t;:") {
			out = append(out, part)
		}
	}
	return out
}

// qualify strips <> and appends "@myorigin" to an address without a
// domain (Postfix's append_at_myorigin).
func qualify(addr, origin string) string {
	addr = strings.TrimSpace(addr)
	if strings.HasPrefix(addr, "<") && strings.HasSuffix(addr, ">") {
		addr = addr[1 : len(addr)-1]
	}
	if addr != "" && !strings.Contains(addr, "@") && origin != "" {
		addr += "@" + origin
	}
	return addr
}

// Recipients returns the envelope recipients of a submission, qualified
// and without duplicates (as Postfix's cleanup removes them): those of
// the command line, then with -t those of the header.
func Recipients(sub *Submission, msg []byte, origin string) []string {
	var m message
	if sub.Extract {
		m = splitMessage(msg)
	}
	var out []string
	for _, r := range recipients(sub, &m, origin) {
		out = append(out, r.addr)
	}
	return out
}

// recipient is one envelope recipient: the address qualified, and the
// address as submitted, which the queue keeps as the original recipient
// (Postfix's orig_to=).
type recipient struct{ addr, orig string }

// recipients returns a submission's envelope recipients. The original
// recipient of one from the command line is the address as sendmail got
// it, without <> but before "@myorigin" is appended: Postfix's sendmail
// writes the unqualified address and cleanup keeps it as orig_rcpt
// before it rewrites (cleanup_envelope.c), so "sendmail root" logs
// "to=<root@origin>, orig_to=<root>". Postfix takes the recipients of -t
// from the header after cleanup rewrote it, so theirs is the qualified
// address.
func recipients(sub *Submission, m *message, origin string) []recipient {
	var all []recipient
	for _, r := range sub.Recipients {
		all = append(all, recipient{qualify(r, origin), qualify(r, "")})
	}
	if sub.Extract {
		for _, r := range m.headerRecipients() {
			q := qualify(r, origin)
			all = append(all, recipient{q, q})
		}
	}
	seen := map[string]bool{}
	var out []recipient
	for _, r := range all {
		key := strings.ToLower(r.addr)
		if r.addr == "" || seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, r)
	}
	return out
}

// Prepare turns a submission into a queue envelope and the content to
// queue (CRLF line ends), doing what Postfix's pickup and cleanup do for
// local mail (see the package comment). login is the submitting user's
// name, uid its number; id is the queue ID the message will have.
func Prepare(sub *Submission, msg []byte, uid int, login string, id queue.ID, now time.Time, site Site) (*queue.Envelope, []byte, error) {
	m := splitMessage(msg)
	sender := qualify(login, site.MyOrigin)
	if sub.SenderSet {
		sender = qualify(sub.Sender, site.MyOrigin)
	}
	rcpts := recipients(sub, &m, site.MyOrigin)
	if len(rcpts) == 0 {
		return nil, nil, ErrNoRecipients
	}
	env := &queue.Envelope{ID: id, Sender: sender, Arrival: now, Protocol: "local",
		ClientName: "localhost", ClientAddr: "127.0.0.1", Helo: "",
		DSNEnvID: sub.EnvID, DSNRet: strings.ToUpper(sub.Ret), BodyType: strings.ToUpper(sub.BodyType)}
	env.SMTPUTF8 = !isASCII(sender)
	for _, r := range rcpts {
		env.Recipients = append(env.Recipients, queue.Recipient{Address: r.addr, OrigAddress: r.orig, DSNNotify: strings.ToUpper(sub.Notify)})
		if !isASCII(r.addr) {
			env.SMTPUTF8 = true
		}
	}

	var b bytes.Buffer
	b.Grow(len(msg) + len(msg)/40 + 512)
	date := now.Format("Mon, 2 Jan 2006 15:04:05 -0700 (MST)")
	fmt.Fprintf(&b, "Received: by %s (postcote, from userid %d)\r\n\tid %s; %s\r\n", site.MyHostname, uid, id, date)
	for _, f := range m.fields {
		if f.name == "bcc" || f.name == "resent-bcc" {
			continue
		}
		if addressHeaders[f.name] {
			f = qualifyField(f, site.MyOrigin)
		}
		for _, l := range f.lines {
			b.WriteString(l)
			b.WriteString("\r\n")
		}
	}
	if !m.has("message-id") {
		fmt.Fprintf(&b, "Message-Id: <%s.%s@%s>\r\n", now.UTC().Format("20060102150405"), id, site.MyHostname)
	}
	if !m.has("date") {
		fmt.Fprintf(&b, "Date: %s\r\n", date)
	}
	if !m.has("from") {
		b.WriteString("From: " + fromHeader(sub.FullName, sender, site.HeaderFrom) + "\r\n")
	}
	b.WriteString("\r\n")
	for _, l := range m.body {
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	return env, b.Bytes(), nil
}

// fromHeader is the value of the From: header cleanup adds
// (cleanup_message.c): MAILER-DAEMON for the null sender; the sender
// alone without a full name; else, with header_from_format = standard,
// "Full Name <sender>", the name's white space collapsed and the name a
// quoted string when it holds RFC 5322 3.2.3 specials or Postfix's "%!";
// with obsolete, "sender (Full Name)". A name that is not ASCII becomes
// RFC 2047 encoded-words, which may stand for a phrase or inside a
// comment (RFC 2047 5); the "B" encoding, because the "Q" encoding of Go's
// mime package leaves characters such as "(" that RFC 2047 5(3) forbids
// in a phrase.
func fromHeader(fullName, sender string, format FromFormat) string {
	if sender == "" {
		return "MAILER-DAEMON"
	}
	if fullName == "" {
		return sender
	}
	// Control characters have no place in a phrase or a comment (RFC
	// 5322 3.2.3); cleanup makes CR and LF spaces, and so the others.
	fullName = strings.Map(func(r rune) rune {
		if r < 32 || r == 127 {
			return ' '
		}
		return r
	}, fullName)
	if format == FromObsolete {
		if !isASCII(fullName) {
			return sender + " (" + mime.BEncoding.Encode("utf-8", fullName) + ")"
		}
		return sender + " (" + commentText(fullName) + ")"
	}
	phrase := strings.Join(strings.Fields(fullName), " ")
	switch {
	case !isASCII(phrase):
		phrase = mime.BEncoding.Encode("utf-8", phrase)
	case strings.ContainsAny(fullName, fromSpecials):
		phrase = quotedString(fullName)
	}
	if phrase == "" {
		return "<" + sender + ">"
	}
	return phrase + " <" + sender + ">"
}

// fromSpecials are the characters that make cleanup quote a full name:
// RFC 5322 3.2.3 specials and the "%!" of legacy address routing.
const fromSpecials = "%!()<>@,;:\\\".[]"

// quotedString writes s as an RFC 5322 3.2.4 quoted string: backslash
// and double quote escaped, as Postfix's tok822_externalize does.
func quotedString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// commentText makes s the text of an RFC 5322 3.2.2 comment: kept as
// written when its parentheses nest, else every parenthesis and
// backslash escaped as a quoted-pair.
func commentText(s string) string {
	depth := 0
	balanced := !strings.Contains(s, "\\")
	for i := 0; i < len(s) && balanced; i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
			balanced = depth >= 0
		}
	}
	if balanced && depth == 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '(' || s[i] == ')' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// GecosFullName is the full name Postfix's sendmail takes from a passwd(5)
// GECOS field when neither -F nor NAME gives one (fullname.c): the field
// up to the first ',', ';' or '%', every '&' replaced by the login name
// with its first letter capitalised.
func GecosFullName(gecos, login string) string {
	if i := strings.IndexAny(gecos, ",;%"); i >= 0 {
		gecos = gecos[:i]
	}
	if !strings.Contains(gecos, "&") {
		return gecos
	}
	name := login
	if login != "" && login[0] >= 'a' && login[0] <= 'z' {
		name = string(login[0]-'a'+'A') + login[1:]
	}
	return strings.ReplaceAll(gecos, "&", name)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// ParseAddressList returns the addresses of a header value or of a
// sendmail command-line argument ("a@b, Name <c@d>"), leniently.
func ParseAddressList(v string) []string { return parseAddresses(v) }

// addressHeaders are the fields whose addresses cleanup qualifies in
// local mail, as Postfix's cleanup rewrites sender and recipient headers
// (local_header_rewrite_clients covers local submission).
var addressHeaders = map[string]bool{
	"from": true, "sender": true, "reply-to": true, "to": true, "cc": true,
	"resent-from": true, "resent-sender": true, "resent-reply-to": true, "resent-to": true, "resent-cc": true,
	"return-receipt-to": true, "errors-to": true,
}

// qualifyField appends "@myorigin" to the addresses without a domain in
// an address header ("To: root" becomes "To: root@example.com"), keeping
// display names and comments as written. A field with nothing to change,
// or with group syntax, is left exactly as written.
func qualifyField(f field, origin string) field {
	v := f.value()
	if origin == "" || strings.ContainsAny(v, ":;") {
		return f
	}
	items := splitTopLevel(v)
	changed := false
	for i, it := range items {
		if q := qualifyItem(it, origin); q != it {
			items[i], changed = q, true
		}
	}
	if !changed {
		return f
	}
	name, _, _ := strings.Cut(f.lines[0], ":")
	return field{name: f.name, lines: []string{name + ": " + strings.Join(items, ", ")}}
}

// splitTopLevel splits an address list at the commas outside quoted
// strings, comments and angle brackets (RFC 5322 3.4), trimmed.
func splitTopLevel(v string) []string {
	var out []string
	depth, quoted, angle, start := 0, false, false, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case quoted && c == '\\':
			i++
		case c == '"' && depth == 0:
			quoted = !quoted
		case quoted:
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth > 0:
		case c == '<':
			angle = true
		case c == '>':
			angle = false
		case c == ',' && !angle:
			out = append(out, strings.TrimSpace(v[start:i]))
			start = i + 1
		}
	}
	return append(out, strings.TrimSpace(v[start:]))
}

// qualifyItem qualifies one address of a list: the part in angle
// brackets, or a lone word (comments aside) without a domain.
func qualifyItem(it, origin string) string {
	if lt := strings.LastIndexByte(it, '<'); lt >= 0 {
		gt := strings.IndexByte(it[lt:], '>')
		if gt < 0 {
			return it
		}
		addr := it[lt+1 : lt+gt]
		if addr == "" || strings.ContainsAny(addr, "@ \t\"") {
			return it
		}
		return it[:lt+1] + addr + "@" + origin + it[lt+gt:]
	}
	core := it
	if p := strings.IndexByte(core, '('); p >= 0 {
		core = core[:p]
	}
	core = strings.TrimSpace(core)
	if core == "" || strings.ContainsAny(core, "@ \t\"()<>[]\\,") {
		return it
	}
	return strings.Replace(it, core, core+"@"+origin, 1)
}
