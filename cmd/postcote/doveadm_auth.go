package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"

	"postcote/internal/config"
	"postcote/internal/maillog"
	"postcote/internal/sasl"
	"postcote/internal/server"
	"postcote/internal/userdb"
)

// exNoUser is EX_NOUSER (sysexits.h), doveadm's exit code for an unknown
// user; a failed login exits with exNoPerm and a back end that cannot
// answer with exTempFail, as Dovecot's doveadm does.
const exNoUser = 67

// xFlags collects repeated -x name=value options.
type xFlags map[string]string

func (x xFlags) String() string { return "" }

func (x xFlags) Set(v string) error {
	name, value, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("-x %q: want name=value (service, lip, rip, lport, rport)", v)
	}
	switch name {
	case "service", "lip", "rip", "lport", "rport":
		x[name] = value
		return nil
	}
	return fmt.Errorf("-x %s: unknown auth info (want service, lip, rip, lport, rport)", name)
}

// addrOf builds an address from -x ip and port values.
func addrOf(ip, port string) (net.Addr, error) {
	if ip == "" {
		return nil, nil
	}
	a := net.ParseIP(ip)
	if a == nil {
		return nil, fmt.Errorf("%q is not an IP address", ip)
	}
	p := 0
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 0 || n > 65535 {
			return nil, fmt.Errorf("%q is not a port", port)
		}
		p = n
	}
	return &net.TCPAddr{IP: a, Port: p}, nil
}

// doveadmAuth is `doveadm auth test|login [-x name=value] USER [PASS]`:
// a login through the passdbs, and for login a userdb lookup too,
// printed as Dovecot prints them. The drivers of dovecot.conf run in this
// process (Dovecot's doveadm asks its auth socket; the answer is the same).
func doveadmAuth(args []string, out io.Writer) error {
	if len(args) == 0 || (args[0] != "test" && args[0] != "login") {
		return usageError{"usage: doveadm auth test|login [-c DIR] [-x service=imap] [-x rip=IP] USER [PASSWORD]"}
	}
	login := args[0] == "login"
	fs := newFlags("doveadm auth " + args[0])
	c := configFlag(fs)
	x := xFlags{}
	fs.Var(x, "x", "auth info name=value: service (default doveadm), lip, rip, lport, rport; repeatable")
	fs.String("a", "", "auth socket (accepted for compatibility; postcote runs the passdbs in-process)")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return usageError{"usage: doveadm auth " + args[0] + " [-x name=value] USER [PASSWORD]"}
	}
	user := fs.Arg(0)
	pass := fs.Arg(1)
	if fs.NArg() == 1 {
		var err error
		if pass, err = askPassword(false); err != nil {
			return err
		}
	}
	checker, _, err := loadUsers(*c)
	if err != nil {
		return err
	}
	req := sasl.Request{Service: x["service"], User: user, Password: pass, Secured: true}
	if req.Service == "" {
		req.Service = "doveadm"
	}
	if req.Remote, err = addrOf(x["rip"], x["rport"]); err != nil {
		return usageError{"-x rip/rport: " + err.Error()}
	}
	if req.Local, err = addrOf(x["lip"], x["lport"]); err != nil {
		return usageError{"-x lip/lport: " + err.Error()}
	}
	ctx := context.Background()
	res, err := checker.Authenticate(ctx, req)
	if err != nil {
		fmt.Fprintf(out, "passdb: %s auth failed\n", user)
		if errors.Is(err, sasl.ErrTempFail) {
			fmt.Fprintf(os.Stderr, "Error: %v\n", err)
			return exitError{exTempFail}
		}
		fmt.Fprintf(out, "extra fields:\n  user=%s\n", user)
		return exitError{exNoPerm}
	}
	fmt.Fprintf(out, "passdb: %s auth succeeded\nextra fields:\n  user=%s\n", user, res.User)
	printFields(out, res.Fields, "user")
	if !login {
		return nil
	}
	info, found, err := checker.LookupUser(ctx, req.Service, res.User)
	switch {
	case err != nil:
		fmt.Fprintf(os.Stderr, "Error: userdb lookup: %v\n", err)
		return exitError{exTempFail}
	case !found:
		fmt.Fprintf(os.Stderr, "userdb lookup: user %s doesn't exist\n", res.User)
		return exitError{exNoUser}
	}
	fmt.Fprintf(out, "userdb extra fields:\n  %s\n", res.User)
	printFields(out, info.Fields, "user")
	fmt.Fprintf(out, "  auth_mech=PLAIN\n")
	return nil
}

func printFields(out io.Writer, f userdb.Fields, skip ...string) {
next:
	for _, kv := range f {
		for _, s := range skip {
			if kv.Key == s {
				continue next
			}
		}
		fmt.Fprintf(out, "  %s=%s\n", kv.Key, kv.Value)
	}
}

// doveadmUser is `doveadm user [-f FIELD] [-u] USER|MASK`: the userdb
// fields of a user as "field<TAB>value" lines (uid, gid, home and mail
// first, mail from mail_location when the userdb has none), or with a
// mask containing * or ? (or -u) the names of every user it matches,
// from the userdbs that can list their users.
func doveadmUser(args []string, out io.Writer) error {
	fs := newFlags("doveadm user")
	c := configFlag(fs)
	field := fs.String("f", "", "print only this field's value")
	iterate := fs.Bool("u", false, "treat USER as a mask and list the matching users")
	x := xFlags{}
	fs.Var(x, "x", "auth info name=value: service (default doveadm); repeatable")
	fs.String("a", "", "auth socket (accepted for compatibility; postcote runs the userdbs in-process)")
	fs.Bool("m", false, "accepted for compatibility: the mail location is always printed")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() < 1 {
		return usageError{"usage: doveadm user [-c DIR] [-f FIELD] [-u] USER|MASK..."}
	}
	checker, dc, err := loadUsers(*c)
	if err != nil {
		return err
	}
	ctx := context.Background()
	service := x["service"]
	if service == "" {
		service = "doveadm"
	}
	code := 0
	for _, name := range fs.Args() {
		if *iterate || strings.ContainsAny(name, "*?") {
			err := checker.IterateUsers(ctx, func(u string) error {
				if wildcardMatch(name, u) {
					_, err := fmt.Fprintln(out, u)
					return err
				}
				return nil
			})
			if err != nil {
				fmt.Fprintf(os.Stderr, "Error: user listing failed: %v\n", err)
				code = exTempFail
			}
			continue
		}
		info, found, err := checker.LookupUser(ctx, service, name)
		if err != nil {
			fmt.Fprintf(os.Stderr, "Error: userdb lookup failed for %s: %v\n", name, err)
			code = exTempFail
			continue
		}
		if !found {
			fmt.Fprintf(os.Stderr, "userdb lookup: user %s doesn't exist\n", name)
			if code == 0 {
				code = exNoUser
			}
			continue
		}
		fields := userFields(info, dc.GetDefault("mail_location"))
		if *field != "" {
			v, _ := fields.Get(*field)
			fmt.Fprintln(out, v)
			continue
		}
		fmt.Fprintf(out, "field\tvalue\n")
		for _, kv := range fields {
			fmt.Fprintf(out, "%s\t%s\n", kv.Key, kv.Value)
		}
	}
	if code != 0 {
		return exitError{code}
	}
	return nil
}

// userFields orders a userdb answer as doveadm user prints it.
func userFields(info userdb.UserInfo, mailLocation string) userdb.Fields {
	var f userdb.Fields
	for _, k := range []string{"uid", "gid", "home"} {
		if v, ok := info.Fields.Get(k); ok {
			f.Set(k, v)
		}
	}
	mail, ok := info.Fields.Get("mail")
	if !ok {
		mail = mailLocation
	}
	f.Set("mail", mail)
	for _, kv := range info.Fields {
		if !f.Has(kv.Key) {
			f.Set(kv.Key, kv.Value)
		}
	}
	return f
}

// wildcardMatch is Dovecot's wildcard_match: * any run of bytes, ? one
// byte, nothing else special.
func wildcardMatch(mask, s string) bool {
	for len(mask) > 0 {
		switch mask[0] {
		case '*':
			for len(mask) > 0 && mask[0] == '*' {
				mask = mask[1:]
			}
			if mask == "" {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if wildcardMatch(mask, s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
		default:
			if s == "" || s[0] != mask[0] {
				return false
			}
		}
		mask, s = mask[1:], s[1:]
	}
	return s == ""
}

// loadUsers reads dovecot.conf (-c) and builds its passdbs and userdbs.
func loadUsers(dir string) (*userdb.Checker, interface{ GetDefault(string) string }, error) {
	paths, err := config.Locate(dir)
	if err != nil {
		return nil, nil, err
	}
	log := maillog.New(os.Stderr, "localhost", false)
	checker, dc, err := server.LoadUsers(paths, log)
	if err != nil {
		return nil, nil, err
	}
	return checker, dc, nil
}

// hoistConfigFlag turns Dovecot's global "doveadm -c FILE CMD ..." into
// postcote's "CMD -c FILE ...", for the commands that read the
// configuration.
func hoistConfigFlag(args []string) []string {
	if len(args) < 3 || (args[0] != "-c" && !strings.HasPrefix(args[0], "-c=")) {
		return args
	}
	flag := []string{"-c", ""}
	rest := args[2:]
	if v, ok := strings.CutPrefix(args[0], "-c="); ok {
		flag[1], rest = v, args[1:]
	} else {
		flag[1] = args[1]
	}
	if len(rest) == 0 {
		return args
	}
	n := 1 // the command
	if rest[0] == "auth" && len(rest) > 1 {
		n = 2 // auth test|login
	}
	out := append([]string(nil), rest[:n]...)
	out = append(out, flag...)
	return append(out, rest[n:]...)
}
