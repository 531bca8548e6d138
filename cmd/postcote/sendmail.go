package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"postcote/internal/config"
	"postcote/internal/config/postfixconf"
	"postcote/internal/pickup"
	"postcote/internal/server"
	"postcote/internal/userdb"
)

// Exit codes of <sysexits.h>, as Postfix's sendmail uses them.
const (
	exUsage       = 64 // command line usage error
	exDataErr     = 65 // data format error
	exUnavailable = 69 // service unavailable
	exSoftware    = 70 // internal software error
	exTempFail    = 75 // temporary failure; the caller should retry
	exNoPerm      = 77 // permission denied
	exConfig      = 78 // configuration error
)

// fatal prints "PROG: fatal: …" as Postfix's msg_fatal does and returns
// the exit status.
func fatal(prog string, code int, format string, args ...any) error {
	fmt.Fprintf(os.Stderr, "%s: fatal: %s\n", prog, fmt.Sprintf(format, args...))
	return exitError{code}
}

// opt is one parsed command-line option.
type opt struct {
	name byte
	arg  string
}

// getopt parses args as getopt(3) with spec ("ab:" — b takes an
// argument), letting options and operands mix as GNU getopt does until
// "--". Letters in optional take an argument only when it is attached
// ("-q" and "-q1h").
func getopt(args []string, spec, optional string) ([]opt, []string, error) {
	var opts []opt
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			rest = append(rest, a)
			continue
		}
		for j := 1; j < len(a); j++ {
			c := a[j]
			if strings.IndexByte(optional, c) >= 0 {
				opts = append(opts, opt{c, a[j+1:]})
				break
			}
			k := strings.IndexByte(spec, c)
			if k < 0 || c == ':' {
				return nil, nil, fmt.Errorf("invalid option -- '%c'", c)
			}
			if k+1 < len(spec) && spec[k+1] == ':' {
				v := a[j+1:]
				if v == "" {
					if i+1 >= len(args) {
						return nil, nil, fmt.Errorf("option requires an argument -- '%c'", c)
					}
					i++
					v = args[i]
				}
				opts = append(opts, opt{c, v})
				break
			}
			opts = append(opts, opt{c, ""})
		}
	}
	return opts, rest, nil
}

// sendmailSpec is Postfix's sendmail option string; q takes an argument
// only when attached.
const sendmailSpec = "B:C:F:GIL:N:O:R:UV:X:b:ce:f:h:imno:p:r:tvx"

// cmdSendmail is the Sendmail-compatible interface (Postfix's sendmail(1)):
// it reads a message on standard input and leaves it in the maildrop
// folder for the server's pickup (see package pickup), so it works while
// the server is down and never writes the queue itself.
func cmdSendmail(args []string) error {
	const prog = "sendmail"
	opts, rest, err := getopt(args, sendmailSpec, "q")
	if err != nil {
		return fatal(prog, exUsage, "%v", err)
	}
	sub := &pickup.Submission{}
	mode := "m"
	dotEnds := true
	verbose := false
	cdir := os.Getenv("MAIL_CONFIG")
	haveName := false
	for _, o := range opts {
		switch o.name {
		case 'B':
			sub.BodyType = strings.ToUpper(o.arg)
			if sub.BodyType != "7BIT" && sub.BodyType != "8BITMIME" {
				return fatal(prog, exUsage, "-B option needs 8BITMIME or 7BIT")
			}
		case 'C':
			cdir = o.arg
		case 'F':
			sub.FullName, haveName = o.arg, true
		case 'I':
			mode = "i"
		case 'N':
			n := strings.ToUpper(o.arg)
			for _, w := range strings.Split(n, ",") {
				if w != "NEVER" && w != "SUCCESS" && w != "FAILURE" && w != "DELAY" {
					return fatal(prog, exUsage, "bad -N option value: %s", o.arg)
				}
			}
			sub.Notify = n
		case 'R':
			sub.Ret = strings.ToUpper(o.arg)
			if sub.Ret != "FULL" && sub.Ret != "HDRS" {
				return fatal(prog, exUsage, "bad -R option value: %s", o.arg)
			}
		case 'V':
			sub.EnvID = o.arg
		case 'b':
			mode = o.arg
		case 'f', 'r':
			sub.Sender, sub.SenderSet = strings.TrimSuffix(strings.TrimPrefix(o.arg, "<"), ">"), true
		case 'i':
			dotEnds = false
		case 'o':
			// -oi as -i; every other -oX is a Sendmail option Postfix
			// ignores (-oA, -odb, -oem, -om, …).
			if o.arg == "i" {
				dotEnds = false
			}
		case 'q':
			if o.arg == "" {
				mode = "q"
			}
			// -qINTERVAL (run the queue every INTERVAL) is ignored, as
			// Postfix does: the server runs the queue itself.
		case 't':
			sub.Extract = true
		case 'v':
			verbose = true
		}
		// G, L, O, U, X, c, e, h, m, n, p, x: accepted and ignored, as
		// Postfix does.
	}
	paths, err := config.Locate(cdir)
	if err != nil {
		return fatal(prog, exConfig, "%v", err)
	}
	pf, err := loadPostfix(paths)
	if err != nil {
		return fatal(prog, exConfig, "%v", err)
	}
	if pf == nil || !pf.HasMain {
		return fatal(prog, exConfig, "no main.cf in the configuration (give -C DIR or MAIL_CONFIG)")
	}
	m := pf.Main
	switch mode {
	case "p":
		return showQueue(m, "mailq")
	case "q":
		return flushQueue(m, "sendmail")
	case "s":
		return sendmailSMTP(prog, m)
	case "m":
	case "i":
		return fatal(prog, exUsage, "newaliases (-bi, -I) is not handled by sendmail; run postcote newaliases")
	case "d":
		return fatal(prog, exUsage, "-bd: run `postcote serve` to start the mail system")
	default:
		return fatal(prog, exUsage, "unsupported: -b%s", mode)
	}
	login, uid := invoker()
	if !haveName {
		sub.FullName = senderFullName(os.LookupEnv, userdb.NewSystemIDs("", ""), login, uid)
	}
	sub.FullName = strings.Map(func(r rune) rune {
		if r < 32 || r == 127 {
			return -1
		}
		return r
	}, sub.FullName)
	for _, a := range rest {
		sub.Recipients = append(sub.Recipients, pickup.ParseAddressList(a)...)
	}
	who := fmt.Sprintf("%s(%d)", login, uid)
	if len(sub.Recipients) == 0 && !sub.Extract {
		return fatal(prog, exUsage, "%s: Recipient addresses must be specified on the command line or via the -t option", who)
	}
	limit, err := m.Size("message_size_limit")
	if err != nil {
		return fatal(prog, exConfig, "%v", err)
	}
	msg, err := readMessage(os.Stdin, dotEnds, limit)
	if errors.Is(err, pickup.ErrTooBig) {
		return fatal(prog, exDataErr, "%s: message file too big", who)
	}
	if err != nil {
		return fatal(prog, exTempFail, "%s: read message: %v", who, err)
	}
	site, err := server.Site(m)
	if err != nil {
		return fatal(prog, exConfig, "%v", err)
	}
	if sub.Extract && len(pickup.Recipients(sub, msg, site.MyOrigin)) == 0 {
		return fatal(prog, exUsage, "%s: No recipient addresses found in message header", who)
	}
	name, code, err := drop(m, sub, bytes.NewReader(msg), limit)
	if err != nil {
		return fatal(prog, code, "%s: %v", who, err)
	}
	if verbose {
		fmt.Fprintf(os.Stderr, "%s: message accepted for delivery (maildrop file %s)\n", prog, name)
	}
	return nil
}

// invoker returns the login name and uid of the user running sendmail.
func invoker() (string, int) {
	uid := os.Getuid()
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username, uid
	}
	return "uid" + strconv.Itoa(uid), uid
}

// senderFullName is the full name for the From: header when -F gave
// none, as Postfix's sendmail finds it (fullname.c): $NAME when it is
// set, even empty; else the GECOS field of the user's passwd(5) line,
// read from the file itself (no NSS, no cgo). A user missing from the
// file, or a file that cannot be read, gives no full name, as a failing
// getpwuid does in Postfix: the From: header is then the address alone.
func senderFullName(getenv func(string) (string, bool), ids *userdb.SystemIDs, login string, uid int) string {
	if name, ok := getenv("NAME"); ok {
		return name
	}
	e, ok, err := ids.LookupPasswd(login)
	if err != nil || !ok || e.UID != uid {
		return ""
	}
	return pickup.GecosFullName(e.Gecos, e.Name)
}

// drop writes one submission into the maildrop folder and wakes pickup.
// It returns the file name, or the exit status that fits the failure.
func drop(m *postfixconf.Main, sub *pickup.Submission, msg io.Reader, limit int64) (string, int, error) {
	dir := server.MaildropDir(m)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) && os.Geteuid() == 0 {
		// The server has never run here; root may create the folder
		// with its mode so the message waits for the first start.
		if err := pickup.PrepareDir(dir); err != nil {
			return "", exTempFail, err
		}
	}
	name, err := pickup.Write(dir, sub, msg, limit)
	switch {
	case errors.Is(err, pickup.ErrTooBig):
		return "", exDataErr, err
	case errors.Is(err, os.ErrPermission):
		return "", exNoPerm, err
	case err != nil:
		return "", exTempFail, err
	}
	pickup.Wake(server.PickupSocket(m))
	return name, 0, nil
}

// readMessage reads standard input to its end or, when dotEnds (no -i),
// to a line holding a single dot, as sendmail(1) does. Nothing is
// unstuffed: without SMTP, a dot is a dot.
func readMessage(r io.Reader, dotEnds bool, limit int64) ([]byte, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var b bytes.Buffer
	start := true // at the start of a line
	for {
		line, err := br.ReadSlice('\n')
		if dotEnds && start && (string(line) == ".\n" || string(line) == ".\r\n" || (err == io.EOF && string(line) == ".")) {
			return b.Bytes(), nil
		}
		b.Write(line)
		start = err == nil
		if limit > 0 && int64(b.Len()) > limit {
			return nil, pickup.ErrTooBig
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF:
			return b.Bytes(), nil
		default:
			return nil, err
		}
	}
}

// sendmailSMTP is sendmail -bs: SMTP on standard input and output.
func sendmailSMTP(prog string, m *postfixconf.Main) error {
	limit, err := m.Size("message_size_limit")
	if err != nil {
		return fatal(prog, exConfig, "%v", err)
	}
	err = pickup.ServeSMTP(deadlineReader{os.Stdin, smtpdTimeout}, os.Stdout, pickup.SMTPOptions{
		Hostname: m.Get("myhostname"),
		MaxSize:  limit,
		Submit: func(sub *pickup.Submission, msg io.Reader) error {
			_, _, err := drop(m, sub, msg, limit)
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s: warning: %v\n", prog, err)
			}
			return err
		},
	})
	if err != nil {
		return fatal(prog, exSoftware, "%v", err)
	}
	return nil
}

// smtpdTimeout is Postfix's smtpd_timeout default: how long -bs waits for
// the client's next line.
const smtpdTimeout = 300 * time.Second

// deadlineReader gives every read from f a deadline, so a -bs client that
// stops talking does not hold the process forever. Where f cannot have
// deadlines (a regular file), reads go on without one.
type deadlineReader struct {
	f *os.File
	d time.Duration
}

func (r deadlineReader) Read(p []byte) (int, error) {
	r.f.SetReadDeadline(time.Now().Add(r.d))
	return r.f.Read(p)
}
