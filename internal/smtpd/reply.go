package smtpd

import (
	"fmt"
	"strings"
)

// Reply is one SMTP reply: a three-digit code (RFC 5321 4.2), an enhanced
// status code (RFC 3463, announced by ENHANCEDSTATUSCODES, RFC 2034) and
// text. Multi-line text is separated by "\n".
type Reply struct {
	Code     int
	Enhanced string // "2.1.0"; empty for 220/221 greetings and 334/354
	Text     string
}

func reply(code int, enhanced, format string, args ...any) Reply {
	return Reply{Code: code, Enhanced: enhanced, Text: fmt.Sprintf(format, args...)}
}

// String renders the reply as it goes on the wire, CRLF-terminated lines
// with "-" continuation (RFC 5321 4.2.1).
func (r Reply) String() string {
	lines := strings.Split(r.Text, "\n")
	var b strings.Builder
	for i, l := range lines {
		sep := "-"
		if i == len(lines)-1 {
			sep = " "
		}
		fmt.Fprintf(&b, "%03d%s", r.Code, sep)
		if r.Enhanced != "" {
			b.WriteString(r.Enhanced)
			b.WriteByte(' ')
		}
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	return b.String()
}

// Line is the reply on one line without CRLF, for log entries.
func (r Reply) Line() string {
	s := fmt.Sprintf("%03d", r.Code)
	if r.Enhanced != "" {
		s += " " + r.Enhanced
	}
	return s + " " + strings.ReplaceAll(r.Text, "\n", " ")
}

// isError says whether the reply counts against the error limits.
func (r Reply) isError() bool { return r.Code >= 400 }

// Replies used in several places, worded as Postfix words them.
var (
	replyOK                  = Reply{250, "2.0.0", "Ok"}
	replyUnknownCmd          = Reply{502, "5.5.2", "Error: command not recognized"}
	replyBadSyntax           = Reply{500, "5.5.2", "Error: bad syntax"}
	replyLineTooLong         = Reply{500, "5.5.0", "Error: line too long"}
	replyNeedTLS             = Reply{530, "5.7.0", "Must issue a STARTTLS command first"}
	replyShutdown            = Reply{421, "4.3.2", "Service shutting down"}
	replyTooBig              = Reply{552, "5.3.4", "Error: message file too big"}
	replyChunkTooBig         = Reply{552, "5.3.4", "Chunk exceeds message size limit"}
	replyQueueError          = Reply{451, "4.3.0", "Error: queue file write error"}
	replyInsufficientStorage = Reply{452, "4.3.1", "Insufficient system storage"}

	// replySent is what a handler returns when it has already sent its
	// (positive) reply itself, as STARTTLS does before the handshake.
	replySent = Reply{Code: -1}
)
