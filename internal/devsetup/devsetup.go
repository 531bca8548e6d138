// Package devsetup writes the data folder that `postcote dev` runs from: a
// complete, working configuration in the guides' own dialects (main.cf,
// master.cf, dovecot.conf), a passwd-file with one demo user, and a
// self-signed certificate, all on unprivileged ports on 127.0.0.1.
//
// The folder doubles as the README's example of a full configuration:
// `postcote check -c DIR` and `postcote serve -c DIR` accept it unchanged.
// Running it again reuses what is there: files that exist are kept (so an
// administrator's edits survive), and only a demo user whose password was
// given again on the command line is rewritten.
package devsetup

import (
	"bufio"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"
)

// Ports are the unprivileged ports the dev set-up listens on.
type Ports struct {
	SMTP, Submission, Submissions, IMAP, IMAPS int
}

// DefaultPorts are the ports README and the issue name.
var DefaultPorts = Ports{SMTP: 2525, Submission: 2587, Submissions: 2465, IMAP: 1143, IMAPS: 1993}

// Options say what to write.
type Options struct {
	Dir      string // the data folder, created when missing
	User     string // demo user's address, e.g. "demo@example.test"
	Password string // demo user's password in clear text; "" keeps an existing user or makes a random one
	Hash     func(password string) (string, error)
	Ports    Ports
	Address  string // listen address, "127.0.0.1"
}

// Result tells what Write did, for the message `postcote dev` prints.
type Result struct {
	Dir      string
	User     string
	Password string // the demo password, "" when an existing user was kept and its password is unknown
	Created  []string
}

// Write creates the folder's files that are missing. With a password in
// opts, the demo user's line in the passwd-file is (re)written.
func Write(opts Options) (*Result, error) {
	if opts.Address == "" {
		opts.Address = "127.0.0.1"
	}
	if opts.Ports == (Ports{}) {
		opts.Ports = DefaultPorts
	}
	at := strings.LastIndexByte(opts.User, '@')
	if at <= 0 || at == len(opts.User)-1 || strings.ContainsAny(opts.User, ": \t\r\n") {
		return nil, fmt.Errorf("demo user %q: want an address like demo@example.test, without ':' or spaces", opts.User)
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{dir, filepath.Join(dir, "mail"), filepath.Join(dir, "spool"), filepath.Join(dir, "run")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	res := &Result{Dir: dir, User: opts.User}
	data := templateData{Dir: dir, Domain: opts.User[at+1:], Ports: opts.Ports, Address: opts.Address}

	files := []struct {
		name string
		tmpl *template.Template
	}{
		{"main.cf", mainCF},
		{"master.cf", masterCF},
		{"dovecot.conf", dovecotConf},
	}
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if _, err := os.Stat(path); err == nil {
			continue
		}
		var b strings.Builder
		if err := f.tmpl.Execute(&b, data); err != nil {
			return nil, fmt.Errorf("render %s: %w", f.name, err)
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			return nil, fmt.Errorf("write %s: %w", path, err)
		}
		res.Created = append(res.Created, f.name)
	}

	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if _, err := os.Stat(cert); errors.Is(err, os.ErrNotExist) {
		if err := WriteSelfSigned(cert, key, []string{"localhost", "127.0.0.1", "::1"}, 825*24*time.Hour); err != nil {
			return nil, err
		}
		res.Created = append(res.Created, "cert.pem", "key.pem")
	}

	users := filepath.Join(dir, "users")
	passFile := filepath.Join(dir, "demo-password")
	exists, err := hasUser(users, opts.User)
	if err != nil {
		return nil, err
	}
	if exists && opts.Password == "" {
		// Reuse the folder as it is; show the password we chose last time
		// if it is still the one we wrote down.
		if b, err := os.ReadFile(passFile); err == nil {
			if u, pw, ok := strings.Cut(strings.TrimSpace(string(b)), " "); ok && u == opts.User {
				res.Password = pw
			}
		}
		return res, nil
	}
	pass := opts.Password
	if pass == "" {
		if pass, err = randomPassword(); err != nil {
			return nil, err
		}
	}
	hash, err := opts.Hash(pass)
	if err != nil {
		return nil, err
	}
	if err := setUser(users, opts.User, hash); err != nil {
		return nil, err
	}
	// Kept for the next `postcote dev` to print; mode 0600 like the key.
	if err := os.WriteFile(passFile, []byte(opts.User+" "+pass+"\n"), 0o600); err != nil {
		return nil, err
	}
	res.Password = pass
	res.Created = append(res.Created, "users")
	return res, nil
}

// hasUser tells whether the passwd-file has a line for user.
func hasUser(path, user string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if name, _, ok := strings.Cut(sc.Text(), ":"); ok && name == user {
			return true, nil
		}
	}
	return false, sc.Err()
}

// setUser writes user's line into the passwd-file, replacing an old one and
// keeping every other line, through a temporary file renamed into place.
func setUser(path, user, hash string) error {
	var lines []string
	if old, err := os.ReadFile(path); err == nil {
		for _, l := range strings.Split(strings.TrimRight(string(old), "\n"), "\n") {
			if name, _, ok := strings.Cut(l, ":"); ok && name == user || l == "" {
				continue
			}
			lines = append(lines, l)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	lines = append(lines, user+":"+hash+"::::::")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

type templateData struct {
	Dir     string
	Domain  string
	Address string
	Ports   Ports
}

// randomPassword makes a password for the demo user: 16 letters and
// digits, easy to type.
func randomPassword() (string, error) {
	const alphabet = "abcdefghijkmnpqrstuvwxyzACDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b), nil
}
