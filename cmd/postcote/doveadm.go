package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"postcote/internal/userdb"
)

// cmdDoveadm runs the doveadm subcommands postcote has.
func cmdDoveadm(args []string) error {
	if len(args) == 0 {
		return usageError{"usage: doveadm pw [-s SCHEME] [-p PASSWORD] [-r ROUNDS] [-t HASH]\n       doveadm auth test|login [-x service=imap] USER [PASSWORD]\n       doveadm user [-f FIELD] [-u] USER|MASK"}
	}
	args = hoistConfigFlag(args)
	switch args[0] {
	case "pw":
		return doveadmPW(args[1:])
	case "auth":
		return doveadmAuth(args[1:], os.Stdout)
	case "user":
		return doveadmUser(args[1:], os.Stdout)
	}
	return usageError{fmt.Sprintf("doveadm %s is not supported by this postcote (available: pw, auth test|login, user)", args[0])}
}

// doveadmPW is `doveadm pw`: print a password hash for the scheme (CRYPT,
// that is bcrypt, by default), or with -t check a password against one.
func doveadmPW(args []string) error {
	fs := newFlags("doveadm pw")
	scheme := fs.String("s", "CRYPT", "password scheme ("+strings.Join(userdb.SchemeNames(), ", ")+")")
	password := fs.String("p", "", "the password (default: ask twice)")
	rounds := fs.Int("r", 0, "rounds or cost for schemes that have them")
	test := fs.String("t", "", "verify the password against this hash instead")
	fs.Bool("l", false, "list schemes")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if fs.Lookup("l").Value.String() == "true" {
		fmt.Println(strings.Join(userdb.SchemeNames(), " "))
		return nil
	}
	pw := *password
	if pw == "" {
		var err error
		if pw, err = askPassword(*test == ""); err != nil {
			return err
		}
	}
	if *test != "" {
		ok, err := userdb.VerifyPassword(pw, *test, *scheme, userdb.DefaultLimits())
		if err != nil {
			return err
		}
		if !ok {
			fmt.Println(*test + " (password mismatch)")
			return exitError{1}
		}
		fmt.Println(*test + " (verified)")
		return nil
	}
	var hash string
	var err error
	if *rounds > 0 {
		hash, err = userdb.GenerateRounds(*scheme, pw, *rounds)
	} else {
		hash, err = userdb.Generate(*scheme, pw)
	}
	if err != nil {
		return err
	}
	fmt.Println(hash)
	return nil
}

// askPassword reads a password from the terminal without echo (twice,
// when confirm is set), or one line from standard input when it is not a
// terminal.
func askPassword(confirm bool) (string, error) {
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return "", errors.New("empty password")
		}
		return line, nil
	}
	fmt.Fprint(os.Stderr, "Enter new password: ")
	a, err := term.ReadPassword(fd)
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return "", err
	}
	if len(a) == 0 {
		return "", errors.New("empty password")
	}
	if confirm {
		fmt.Fprint(os.Stderr, "Retype new password: ")
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return "", err
		}
		if string(a) != string(b) {
			return "", errors.New("passwords don't match")
		}
	}
	return string(a), nil
}
