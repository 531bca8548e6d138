// Command postcote is one program in place of Postfix and Dovecot. Its
// subcommands are the tools administrators know (postmap, postqueue,
// sendmail, doveadm, doveconf…); invoked through a symlink with one of
// those names, it behaves as that command, so it can stand in for them.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// version is set by the build (-ldflags "-X main.version=…").
var version = "dev"

// command is one subcommand: run gets the arguments after its name.
type command struct {
	summary string
	run     func(args []string) error
}

func commands() map[string]command {
	return map[string]command{
		"serve":      {"run the services the configuration enables", cmdServe},
		"dev":        {"write a complete test configuration into a folder and run it", cmdDev},
		"check":      {"check the configuration, like `postfix check` (exit 1 on errors or warnings)", cmdCheck},
		"doveconf":   {"print the Dovecot configuration (-n: non-default settings)", cmdDoveconf},
		"postconf":   {"print the Postfix configuration (-n: explicitly set parameters)", cmdPostconf},
		"doveadm":    {"Dovecot admin tool: pw, auth test|login, user", cmdDoveadm},
		"sendmail":   {"Sendmail-compatible mail submission (-t, -i, -f, -F, -bs, -bp, -q)", cmdSendmail},
		"mailq":      {"list the mail queue (postqueue -p)", cmdMailq},
		"postqueue":  {"mail queue listing (-p) and flush (-f)", cmdPostqueue},
		"postsuper":  {"delete (-d), hold (-h) or release (-H) queued mail", cmdPostsuper},
		"postmap":    {"build (FILE), query (-q KEY) or list (-s) a lookup table", cmdPostmap},
		"postalias":  {"postmap for aliases(5) files", cmdPostalias},
		"newaliases": {"rebuild the alias_database tables", cmdNewaliases},
		"version":    {"print the version", func([]string) error { fmt.Println("postcote", version); return nil }},
	}
}

// usageError is an error in the command line: main prints usage with it
// and exits 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	os.Exit(run(os.Args))
}

func run(argv []string) int {
	cmds := commands()
	name := filepath.Base(argv[0])
	args := argv[1:]
	if _, ok := cmds[name]; !ok || name == "serve" || name == "dev" {
		// Called as "postcote SUBCOMMAND …".
		if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			usage(cmds)
			if len(args) == 0 {
				return 2
			}
			return 0
		}
		name, args = args[0], args[1:]
	}
	cmd, ok := cmds[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "postcote: unknown command %q; run `postcote help` for the list\n", name)
		return 2
	}
	if err := cmd.run(args); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(os.Stderr, "postcote %s: %s\n", name, ue.msg)
			return 2
		}
		var ee exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		fmt.Fprintf(os.Stderr, "postcote %s: %v\n", name, err)
		return 1
	}
	return 0
}

// exitError ends the program with code after the command printed its own
// report (check's findings, for example).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func usage(cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("usage: postcote COMMAND [options]\n\ncommands:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %-10s %s\n", n, cmds[n].summary)
	}
	b.WriteString("\nEvery command takes -c DIR, the folder holding main.cf, master.cf and\ndovecot.conf (default /etc/postcote, then /etc/postfix + /etc/dovecot).\n")
	fmt.Fprint(os.Stderr, b.String())
}
