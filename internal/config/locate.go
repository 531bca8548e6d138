package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Paths are the configuration files postcote reads. An empty path means
// that file is absent, and the role it configures is off (no main.cf: no
// MTA; no dovecot.conf: no mailbox server).
type Paths struct {
	MainCF      string
	MasterCF    string
	DovecotConf string
}

// Locate finds the configuration files from the -c argument: a folder
// holding main.cf, master.cf and dovecot.conf, or the path of one of those
// files (its folder is then searched for the others). Without -c it tries
// /etc/postcote, then /etc/postfix with /etc/dovecot, as Postfix and
// Dovecot themselves would.
func Locate(c string) (Paths, error) {
	if c == "" {
		if p, err := inDir("/etc/postcote"); err == nil && p.any() {
			return p, nil
		}
		pf, _ := inDir("/etc/postfix")
		dc, _ := inDir("/etc/dovecot")
		p := Paths{MainCF: pf.MainCF, MasterCF: pf.MasterCF, DovecotConf: dc.DovecotConf}
		if !p.any() {
			return p, errors.New("no configuration found in /etc/postcote, /etc/postfix or /etc/dovecot; give the folder with -c DIR (postcote dev writes one)")
		}
		return p, nil
	}
	st, err := os.Stat(c)
	if err != nil {
		return Paths{}, fmt.Errorf("configuration %s: %w", c, err)
	}
	if !st.IsDir() {
		p, err := inDir(filepath.Dir(c))
		if err != nil {
			return p, err
		}
		switch filepath.Base(c) {
		case "main.cf":
			p.MainCF = c
		case "master.cf":
			p.MasterCF = c
		default:
			// Any other name is taken as a dovecot.conf, as `doveconf -c FILE` does.
			p.DovecotConf = c
		}
		return p, nil
	}
	p, err := inDir(c)
	if err != nil {
		return p, err
	}
	if !p.any() {
		return p, fmt.Errorf("%s holds none of main.cf, master.cf, dovecot.conf", c)
	}
	return p, nil
}

func inDir(dir string) (Paths, error) {
	var p Paths
	for _, f := range []struct {
		name string
		dst  *string
	}{{"main.cf", &p.MainCF}, {"master.cf", &p.MasterCF}, {"dovecot.conf", &p.DovecotConf}} {
		path := filepath.Join(dir, f.name)
		if _, err := os.Stat(path); err == nil {
			*f.dst = path
		} else if !errors.Is(err, os.ErrNotExist) {
			return p, fmt.Errorf("configuration %s: %w", path, err)
		}
	}
	return p, nil
}

func (p Paths) any() bool { return p.MainCF != "" || p.MasterCF != "" || p.DovecotConf != "" }
