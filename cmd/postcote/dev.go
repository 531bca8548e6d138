package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"postcote/internal/config"
	"postcote/internal/devsetup"
	"postcote/internal/userdb"
)

// cmdDev writes a complete test configuration into a folder (default
// ./postcote-dev) and runs it.
func cmdDev(args []string) error {
	fs := newFlags("dev")
	user := fs.String("user", "demo@example.test", "the demo user's address")
	password := fs.String("password", "", "the demo user's password (default: keep the existing one, or make a random one)")
	ports := fs.String("ports", "", "SMTP,submission,submissions,IMAP,IMAPS ports (default 2525,2587,2465,1143,1993)")
	noRun := fs.Bool("no-run", false, "write the folder and exit without starting the server")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	dir := "postcote-dev"
	switch fs.NArg() {
	case 0:
	case 1:
		dir = fs.Arg(0)
	default:
		return usageError{"give at most one folder"}
	}
	p := devsetup.DefaultPorts
	if *ports != "" {
		var err error
		if p, err = parsePorts(*ports); err != nil {
			return usageError{err.Error()}
		}
	}
	res, err := devsetup.Write(devsetup.Options{Dir: dir, User: *user, Password: *password, Ports: p,
		Hash: func(pw string) (string, error) { return userdb.Generate("BLF-CRYPT", pw) }})
	if err != nil {
		return err
	}
	printHowTo(res, p)
	if *noRun {
		return nil
	}
	paths, err := config.Locate(res.Dir)
	if err != nil {
		return err
	}
	return serve(paths, true) // dev runs in a terminal: show the log there
}

func parsePorts(s string) (devsetup.Ports, error) {
	f := strings.Split(s, ",")
	if len(f) != 5 {
		return devsetup.Ports{}, fmt.Errorf("--ports wants five ports: SMTP,submission,submissions,IMAP,IMAPS")
	}
	var n [5]int
	for i, v := range f {
		p, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || p <= 0 || p > 65535 {
			return devsetup.Ports{}, fmt.Errorf("--ports: %q is not a port number", v)
		}
		n[i] = p
	}
	return devsetup.Ports{SMTP: n[0], Submission: n[1], Submissions: n[2], IMAP: n[3], IMAPS: n[4]}, nil
}

func printHowTo(res *devsetup.Result, p devsetup.Ports) {
	pass := res.Password
	if pass == "" {
		pass = "(unchanged; set a new one with --password)"
	}
	fmt.Fprintf(os.Stdout, `postcote dev: configuration in %s

Connect a mail client (the certificate is self-signed: accept it once):
  account   %s
  password  %s
  IMAP      127.0.0.1 port %d (STARTTLS) or %d (SSL/TLS)
  SMTP      127.0.0.1 port %d (STARTTLS) or %d (SSL/TLS), with the same login
  inbound   127.0.0.1 port %d (plain SMTP, as other servers would deliver)

Try it:
  swaks --server 127.0.0.1:%d --tls --auth-user %s --auth-password '%s' --to %s
  openssl s_client -quiet -connect 127.0.0.1:%d

The folder is a complete configuration: postcote check -c %s; postcote serve -c %s
`, res.Dir, res.User, pass, p.IMAP, p.IMAPS, p.Submission, p.Submissions, p.SMTP,
		p.Submission, res.User, pass, res.User, p.IMAPS, res.Dir, res.Dir)
}
