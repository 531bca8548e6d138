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
	return recipients(sub, &m, origin)
}

func recipients(sub *Submission, m *message, origin string) []string {
	all := append([]string(nil), sub.Recipients...)
	if sub.Extract {
		all = append(all, m.headerRecipients()...)
	}
	seen := map[string]bool{}
	var out []string
	for _, r := range all {
		r = qualify(r, origin)
		if r == "" || seen[strings.ToLower(r)] {
			continue
		}
		seen[strings.ToLower(r)] = true
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
		env.Recipients = append(env.Recipients, queue.Recipient{Address: r, OrigAddress: r, DSNNotify: strings.ToUpper(sub.Notify)})
		if !isASCII(r) {
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
		b.WriteString("From: " + fromHeader(sub.FullName, sender) + "\r\n")
	}
	b.WriteString("\r\n")
	for _, l := range m.body {
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	return env, b.Bytes(), nil
}

// fromHeader is the value of the From: header cleanup adds, in Postfix's
// hdr_from_format = standard: "Full Name <sender>", or the sender alone,
// or MAILER-DAEMON for the null sender.
func fromHeader(fullName, sender string) string {
	if sender == "" {
		return "MAILER-DAEMON"
	}
	fullName = strings.TrimSpace(fullName)
	if fullName == "" {
		return sender
	}
	if !isASCII(fullName) {
		return mime.QEncoding.Encode("utf-8", fullName) + " <" + sender + ">"
	}
	return quotePhrase(fullName) + " <" + sender + ">"
}

// quotePhrase writes a display name as RFC 5322 3.2.5 phrase: as is when
// it is atoms and spaces, else as a quoted string.
func quotePhrase(s string) string {
	plain := true
	for i := 0; i < len(s) && plain; i++ {
		c := s[i]
		plain = c == ' ' || c == '\t' || (c > 32 && c < 127 && !strings.ContainsRune("()<>[]:;@\\,.\"", rune(c)))
	}
	if plain {
		return s
	}
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
