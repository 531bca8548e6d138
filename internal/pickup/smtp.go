package pickup

import (
	"bufio"
	"errors"
	"io"
	"strconv"
	"strings"
)

// SMTPOptions configure ServeSMTP.
type SMTPOptions struct {
	Hostname string
	MaxSize  int64 // message_size_limit; 0 means none
	// Submit stores one message (sendmail writes a maildrop file); an
	// error is answered with 451 and the message is not acknowledged.
	Submit func(sub *Submission, msg io.Reader) error
}

// maxCommandLine bounds a command line (RFC 5321 4.5.3.1.4 says 512;
// Postfix accepts up to line_length_limit, 2048).
const maxCommandLine = 2048

// ServeSMTP speaks the minimal SMTP dialogue of `sendmail -bs` (RFC 5321)
// on r and w until QUIT or end of input: HELO, EHLO, MAIL, RCPT, DATA,
// RSET, NOOP, VRFY and QUIT. Each message goes to o.Submit with the
// envelope of the dialogue.
func ServeSMTP(r io.Reader, w io.Writer, o SMTPOptions) error {
	in := bufio.NewReaderSize(r, 4096)
	out := bufio.NewWriter(w)
	reply := func(lines ...string) error {
		for _, l := range lines {
			out.WriteString(l + "\r\n")
		}
		return out.Flush()
	}
	if err := reply("220 " + o.Hostname + " ESMTP postcote"); err != nil {
		return err
	}
	var sub *Submission
	for {
		line, err := readLine(in, maxCommandLine)
		if errors.Is(err, errLineTooLong) {
			if err := reply("500 5.5.2 Error: line too long"); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		verb, arg, _ := strings.Cut(line, " ")
		arg = strings.TrimSpace(arg)
		switch strings.ToUpper(verb) {
		case "HELO":
			if arg == "" {
				err = reply("501 Syntax: HELO hostname")
				break
			}
			sub = nil
			err = reply("250 " + o.Hostname)
		case "EHLO":
			if arg == "" {
				err = reply("501 Syntax: EHLO hostname")
				break
			}
			sub = nil
			ext := []string{"250-" + o.Hostname, "250-PIPELINING"}
			if o.MaxSize > 0 {
				ext = append(ext, "250-SIZE "+strconv.FormatInt(o.MaxSize, 10))
			} else {
				ext = append(ext, "250-SIZE")
			}
			err = reply(append(ext, "250-ENHANCEDSTATUSCODES", "250 8BITMIME")...)
		case "MAIL":
			if sub != nil {
				err = reply("503 5.5.1 Error: nested MAIL command")
				break
			}
			addr, params, ok := pathArg(arg, "FROM:")
			if !ok {
				err = reply("501 5.5.4 Syntax: MAIL FROM:<address>")
				break
			}
			s := &Submission{Sender: addr, SenderSet: true}
			msg := ""
			for _, p := range params {
				k, v, _ := strings.Cut(p, "=")
				switch strings.ToUpper(k) {
				case "SIZE":
					if n, e := strconv.ParseInt(v, 10, 64); e != nil || n < 0 {
						msg = "501 5.5.4 Bad message size syntax"
					} else if o.MaxSize > 0 && n > o.MaxSize {
						msg = "552 5.3.4 Message size exceeds fixed limit"
					}
				case "BODY":
					if u := strings.ToUpper(v); u == "7BIT" || u == "8BITMIME" {
						s.BodyType = u
					} else {
						msg = "501 5.5.4 Bad BODY keyword value"
					}
				default:
					msg = "555 5.5.4 Unsupported option: " + sanitize(p)
				}
			}
			if msg == "" {
				if e := s.Validate(); e != nil {
					msg = "501 5.1.7 Bad sender address syntax"
				}
			}
			if msg != "" {
				err = reply(msg)
				break
			}
			sub = s
			err = reply("250 2.1.0 Ok")
		case "RCPT":
			if sub == nil {
				err = reply("503 5.5.1 Error: need MAIL command")
				break
			}
			addr, params, ok := pathArg(arg, "TO:")
			if !ok || addr == "" {
				err = reply("501 5.5.4 Syntax: RCPT TO:<address>")
				break
			}
			if len(params) > 0 {
				err = reply("555 5.5.4 Unsupported option: " + sanitize(params[0]))
				break
			}
			if strings.ContainsAny(addr, "\r\n\x00") || len(addr) > 4096 {
				err = reply("501 5.1.3 Bad recipient address syntax")
				break
			}
			sub.Recipients = append(sub.Recipients, addr)
			err = reply("250 2.1.5 Ok")
		case "DATA":
			if sub == nil {
				err = reply("503 5.5.1 Error: need MAIL command")
				break
			}
			if len(sub.Recipients) == 0 {
				err = reply("503 5.5.1 Error: need RCPT command")
				break
			}
			if err = reply("354 End data with <CR><LF>.<CR><LF>"); err != nil {
				return err
			}
			var msg string
			msg, err = receiveData(in, sub, o)
			if err != nil {
				return err
			}
			sub = nil
			err = reply(msg)
		case "RSET":
			sub = nil
			err = reply("250 2.0.0 Ok")
		case "NOOP":
			err = reply("250 2.0.0 Ok")
		case "VRFY":
			err = reply("252 2.0.0 " + sanitize(arg))
		case "QUIT":
			return reply("221 2.0.0 Bye")
		default:
			err = reply("502 5.5.2 Error: command not recognized")
		}
		if err != nil {
			return err
		}
	}
}

// receiveData reads the message up to the lone dot (RFC 5321 4.5.2:
// leading dots are unstuffed) and submits it; it returns the reply.
func receiveData(in *bufio.Reader, sub *Submission, o SMTPOptions) (string, error) {
	var msg strings.Builder
	tooBig := false
	for {
		line, err := readRawLine(in)
		if err != nil {
			return "", err
		}
		if line == ".\r\n" || line == ".\n" {
			break
		}
		if tooBig {
			continue
		}
		line = strings.TrimPrefix(line, ".")
		if o.MaxSize > 0 && int64(msg.Len()+len(line)) > o.MaxSize {
			tooBig = true
			msg.Reset()
			continue
		}
		msg.WriteString(line)
	}
	if tooBig {
		return "552 5.3.4 Error: message file too big", nil
	}
	if err := o.Submit(sub, strings.NewReader(msg.String())); err != nil {
		if errors.Is(err, ErrTooBig) {
			return "552 5.3.4 Error: message file too big", nil
		}
		return "451 4.3.0 Error: queue file write error", nil
	}
	return "250 2.0.0 Ok: queued", nil
}

var errLineTooLong = errors.New("line too long")

// readLine reads one command line without its line end; a longer line is
// consumed and reported as errLineTooLong.
func readLine(in *bufio.Reader, max int) (string, error) {
	var b []byte
	long := false
	for {
		chunk, err := in.ReadSlice('\n')
		if len(b)+len(chunk) > max+2 {
			long = true
		} else {
			b = append(b, chunk...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && len(b) > 0 && !long {
				break
			}
			return "", err
		}
		break
	}
	if long {
		return "", errLineTooLong
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// readRawLine reads one data line with its line end; a line without one
// at the end of input is an error (the client went away mid-message).
func readRawLine(in *bufio.Reader) (string, error) {
	s, err := in.ReadString('\n')
	if err != nil {
		if err == io.EOF {
			return "", io.ErrUnexpectedEOF
		}
		return "", err
	}
	return s, nil
}

// pathArg parses "FROM:<addr> PARAM…" (RFC 5321 4.1.2); the angle
// brackets may be missing, as Postfix tolerates.
func pathArg(arg, prefix string) (string, []string, bool) {
	if len(arg) < len(prefix) || !strings.EqualFold(arg[:len(prefix)], prefix) {
		return "", nil, false
	}
	rest := strings.TrimSpace(arg[len(prefix):])
	var addr string
	if strings.HasPrefix(rest, "<") {
		end := strings.IndexByte(rest, '>')
		if end < 0 {
			return "", nil, false
		}
		addr, rest = rest[1:end], rest[end+1:]
	} else {
		addr, rest, _ = strings.Cut(rest, " ")
	}
	if strings.ContainsAny(addr, "<> \t") {
		return "", nil, false
	}
	return addr, strings.Fields(rest), true
}

// sanitize keeps client text echoed in a reply printable and short.
func sanitize(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < 200; i++ {
		if c := s[i]; c >= 32 && c < 127 {
			b.WriteByte(c)
		} else {
			b.WriteByte('?')
		}
	}
	return b.String()
}
