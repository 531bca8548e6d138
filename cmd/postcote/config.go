package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"postcote/internal/config"
	"postcote/internal/config/doveconf"
	"postcote/internal/config/postfixconf"
)

// configFlag adds -c DIR to a flag set.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("c", "", "configuration folder (main.cf, master.cf, dovecot.conf) or one of those files")
}

// newFlags returns a flag set that reports errors instead of exiting.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	return fs
}

// loadPostfix reads main.cf and master.cf when paths has either.
func loadPostfix(p config.Paths) (*postfixconf.Config, error) {
	dir := ""
	switch {
	case p.MainCF != "":
		dir = filepath.Dir(p.MainCF)
	case p.MasterCF != "":
		dir = filepath.Dir(p.MasterCF)
	default:
		return nil, nil
	}
	return postfixconf.Load(dir)
}

// printDiagnostics writes ds sorted, one per line, and says whether any
// is an error.
func printDiagnostics(w io.Writer, ds []config.Diagnostic) bool {
	config.SortDiagnostics(ds)
	for _, d := range ds {
		fmt.Fprintln(w, d.String())
	}
	return config.HasErrors(ds)
}

// cmdPostconf prints main.cf settings: -n the ones set explicitly, -d the
// defaults, or the effective values of the names given.
func cmdPostconf(args []string) error {
	fs := newFlags("postconf")
	c := configFlag(fs)
	nonDefault := fs.Bool("n", false, "print only parameters set in main.cf")
	defaults := fs.Bool("d", false, "print default values")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	paths, err := config.Locate(*c)
	if err != nil {
		return err
	}
	pf, err := loadPostfix(paths)
	if err != nil {
		return err
	}
	if pf == nil {
		return fmt.Errorf("no main.cf found (give -c DIR)")
	}
	switch {
	case *nonDefault:
		return pf.Main.WriteNonDefault(os.Stdout)
	case *defaults:
		return pf.Main.WriteDefaults(os.Stdout, false)
	}
	return pf.Main.WriteEffective(os.Stdout, fs.Args()...)
}

// cmdCheck checks every configuration file, like `postfix check` and
// doveconf's own warnings: findings go to standard output as
// file:line: severity: message. The exit code is 1 when any finding is an
// error or a warning (an unknown key, a setting postcote does not support
// yet): a configuration that checks clean is one postcote serves as
// written. `serve` itself refuses only errors, as Postfix ignores unknown
// parameters.
func cmdCheck(args []string) error {
	fs := newFlags("check")
	c := configFlag(fs)
	quiet := fs.Bool("q", false, "print only errors and warnings, not infos")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	paths, err := config.Locate(*c)
	if err != nil {
		return err
	}
	var ds []config.Diagnostic
	pf, err := loadPostfix(paths)
	if err != nil {
		return err
	}
	if pf != nil {
		ds = append(ds, pf.Check()...)
	}
	if paths.DovecotConf != "" {
		dc, err := doveconf.Load(paths.DovecotConf)
		if err != nil {
			return err
		}
		ds = append(ds, dc.Check()...)
	}
	if *quiet {
		var kept []config.Diagnostic
		for _, d := range ds {
			if d.Severity >= config.Warning {
				kept = append(kept, d)
			}
		}
		ds = kept
	}
	printDiagnostics(os.Stdout, ds)
	for _, d := range ds {
		if d.Severity >= config.Warning {
			return exitError{1}
		}
	}
	return nil
}

// cmdDoveconf prints dovecot.conf: -n the settings that differ from the
// defaults, as Dovecot's doveconf -n does.
func cmdDoveconf(args []string) error {
	fs := newFlags("doveconf")
	c := configFlag(fs)
	fs.Bool("n", false, "print only settings that differ from the defaults")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	paths, err := config.Locate(*c)
	if err != nil {
		return err
	}
	if paths.DovecotConf == "" {
		return fmt.Errorf("no dovecot.conf found (give -c DIR or -c FILE)")
	}
	dc, err := doveconf.Load(paths.DovecotConf)
	if err != nil {
		return err
	}
	return dc.WriteNonDefault(os.Stdout)
}
