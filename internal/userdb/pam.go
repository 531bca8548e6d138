package userdb

import (
	"fmt"
	"strconv"
	"strings"
)

// "passdb { driver = pam  args = [session=yes] [setcred=yes]
// [failure_show_msg=yes] [max_requests=N] [cache_key=KEY] [SERVICE] }"
// (guide 004; Dovecot 2.3's passdb-pam.c).
//
// Two builds:
//
//   - Default (no cgo, one static binary): a program cannot call libpam,
//     so the driver does what Debian's default PAM stack for "dovecot"
//     does (@include common-auth and common-account, that is pam_unix):
//     the user must be in passwd(5); the hash is in shadow(5) when the
//     passwd field is "x"; the password is checked with crypt(3) rules
//     (yescrypt, SHA-crypt, bcrypt, MD5-crypt, DES); then pam_unix's
//     account check refuses an expired account, a password that must be
//     changed or is past its maximum age. One deliberate difference: an
//     account with an empty password field is refused, where pam_unix
//     with Debian's "nullok" would let it in with any password. It logs
//     at start-up that it has no PAM library (pam_nocgo.go).
//   - "go build -tags pam" with cgo and libpam0g-dev: a real PAM
//     conversation (pam_cgo.go): pam_start(SERVICE), PAM_RHOST and
//     PAM_TTY="dovecot" set as Dovecot sets them, pam_authenticate,
//     pam_acct_mgmt, with setcred=yes pam_setcred(PAM_ESTABLISH_CRED),
//     with session=yes pam_open_session/pam_close_session, and the user
//     name PAM settles on. The blocking calls run in a bounded pool of
//     workers (pamWorkers) so that a slow PAM module cannot pile up
//     threads.
//
// SERVICE is the PAM service name, "dovecot" by default; "%s" expands to
// the protocol (imap, pop3, smtp, ...) and "*" is Dovecot's old spelling
// of "%Ls". cache_key= and max_requests= are accepted and have no effect:
// postcote keeps no auth cache, and max_requests recycles Dovecot's worker
// processes to contain leaky PAM modules, which goroutines in one process
// cannot do. failure_show_msg=yes logs PAM's message with the failure
// (the client gets the usual "authentication failed", as without it).

// pamWorkers bounds concurrent PAM conversations (Dovecot's
// auth_worker_max_count default).
const pamWorkers = 30

// pamArgs are the parsed args of a pam passdb.
type pamArgs struct {
	service        string // may hold %variables
	session        bool
	setcred        bool
	failureShowMsg bool
	maxRequests    int
	cacheKey       string
}

// parsePAMArgs reads the args as Dovecot's pam_preinit does: the
// settings, then at most one last word, the service name.
func parsePAMArgs(args string) (pamArgs, error) {
	a := pamArgs{service: "dovecot"}
	words := strings.Fields(args)
	for i, w := range words {
		key, value, hasEq := strings.Cut(w, "=")
		switch {
		case w == "session=yes" || w == "-session":
			a.session = true
		case w == "setcred=yes" || w == "-setcred":
			a.setcred = true
		case w == "failure_show_msg=yes":
			a.failureShowMsg = true
		case w == "blocking=yes" || w == "blocking=no":
			// Dovecot ignores it too: PAM always runs in workers.
		case hasEq && key == "cache_key":
			a.cacheKey = value
		case hasEq && key == "max_requests":
			n, err := strconv.Atoi(value)
			if err != nil || n < 0 {
				return a, fmt.Errorf("passdb pam: invalid max_requests value %q", value)
			}
			a.maxRequests = n
		case hasEq && (key == "session" || key == "setcred" || key == "failure_show_msg"):
			if value != "no" {
				return a, fmt.Errorf("passdb pam: %s=%q: want yes or no", key, value)
			}
		case w == "*":
			a.service = "%Ls"
		case i == len(words)-1:
			a.service = w
		default:
			return a, fmt.Errorf("passdb pam: unknown setting %q", w)
		}
	}
	if err := checkTemplate("passdb pam service name", a.service); err != nil {
		return a, err
	}
	return a, nil
}

// newPAMPassDB builds the pam passdb of this build (pam_nocgo.go or
// pam_cgo.go).
func newPAMPassDB(args string, opts Options) (PassDB, error) {
	a, err := parsePAMArgs(args)
	if err != nil {
		return nil, err
	}
	return newPAMBackend(a, opts)
}
