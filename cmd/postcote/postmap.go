package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"postcote/internal/config"
	"postcote/internal/lookup"
)

// postmapTimeout bounds a -q query against a network table.
const postmapTimeout = 30 * time.Second

// cmdPostmap is postmap(1): build a hash: table's index, query tables
// (-q), or list a table (-s).
func cmdPostmap(args []string) error {
	return runPostmap("postmap", lookup.FormatMap, args, os.Stdin, os.Stdout, os.Stderr)
}

// cmdPostalias is postalias(1): postmap for aliases(5) files.
func cmdPostalias(args []string) error {
	return runPostmap("postalias", lookup.FormatAliases, args, os.Stdin, os.Stdout, os.Stderr)
}

// cmdNewaliases rebuilds the tables of alias_database (default
// hash:/etc/aliases), as newaliases(1) (sendmail -bi) does.
func cmdNewaliases(args []string) error {
	fs := newFlags("newaliases")
	c := configFlag(fs)
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{"newaliases takes no arguments"}
	}
	specs := []string{"hash:/etc/aliases"}
	if paths, err := config.Locate(*c); err == nil {
		pf, err := loadPostfix(paths)
		if err != nil {
			return err
		}
		if pf != nil {
			specs = specs[:0]
			for _, t := range pf.Main.Tables("alias_database") {
				specs = append(specs, t.String())
			}
		}
	} else if *c != "" {
		return err
	}
	for _, s := range specs {
		if err := buildTable("newaliases", s, lookup.FormatAliases, true, os.Stderr); err != nil {
			return err
		}
	}
	return nil
}

// runPostmap parses postmap/postalias arguments and does the work.
func runPostmap(name string, format lookup.SourceFormat, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFlag(fs) // accepted for compatibility: tables are named in full
	query := fs.String("q", "", "look up KEY (\"-\": keys from standard input) and print the value; exit 1 when not found")
	dump := fs.Bool("s", false, "print every key and value")
	noFold := fs.Bool("f", false, "do not fold keys to lower case")
	fs.Bool("v", false, "verbose (ignored)")
	fs.Bool("w", false, "do not warn about duplicate keys (ignored)")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	queried := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "q" {
			queried = true
		}
	})
	if fs.NArg() == 0 {
		return usageError{fmt.Sprintf("usage: %s [-f] [-q KEY | -s] [TYPE:]FILE ...", name)}
	}
	if queried && *dump {
		return usageError{"-q and -s cannot be used together"}
	}
	specs := make([]string, fs.NArg())
	for i, a := range fs.Args() {
		specs[i] = withType(a)
	}
	opts := lookup.Options{NoFold: *noFold, Logf: func(f string, a ...any) { fmt.Fprintf(stderr, name+": "+f+"\n", a...) }}
	switch {
	case queried:
		return postmapQuery(*query, specs, opts, stdin, stdout)
	case *dump:
		return postmapDump(specs, opts, stdout)
	}
	for _, s := range specs {
		if err := buildTable(name, s, format, !*noFold, stderr); err != nil {
			return err
		}
	}
	return nil
}

// withType adds the default_database_type (hash) to a bare file name.
func withType(a string) string {
	if _, err := lookup.ParseSpec(a); err == nil && !strings.HasPrefix(a, "/") {
		return a
	}
	return "hash:" + a
}

// buildTable writes a hash: table's index. Other types have nothing to
// build: they are read as they are, so the table is opened to check
// its syntax and the command says so.
func buildTable(name, spec string, format lookup.SourceFormat, foldKeys bool, stderr io.Writer) error {
	s, err := lookup.ParseSpec(spec)
	if err != nil {
		return err
	}
	if s.Type == "hash" {
		_, err := lookup.BuildIndex(s.Name, format, foldKeys, func(msg string) {
			fmt.Fprintf(stderr, "%s: warning: %s\n", name, msg)
		})
		if err != nil {
			return fmt.Errorf("build %s: %w", spec, err)
		}
		return nil
	}
	t, err := lookup.Open(spec, lookup.Options{NoFold: !foldKeys})
	if err != nil {
		return err
	}
	t.Close()
	fmt.Fprintf(stderr, "%s: %s: nothing to build: %s tables are read as they are (syntax checked)\n", name, spec, s.Type)
	return nil
}

// openAll opens the tables through one registry.
func openAll(specs []string, opts lookup.Options) (*lookup.Registry, []lookup.Table, error) {
	reg := lookup.NewRegistry(opts)
	ts := make([]lookup.Table, 0, len(specs))
	for _, s := range specs {
		t, err := reg.Open(s)
		if err != nil {
			reg.Close()
			return nil, nil, err
		}
		ts = append(ts, t)
	}
	return reg, ts, nil
}

// postmapQuery prints what the MTA sees for key: the first table that
// has it answers, several results joined by commas. With key "-", keys
// come one per line from stdin and found ones print as "key value".
func postmapQuery(key string, specs []string, opts lookup.Options, stdin io.Reader, stdout io.Writer) error {
	reg, tables, err := openAll(specs, opts)
	if err != nil {
		return err
	}
	defer reg.Close()
	find := func(k string) ([]string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), postmapTimeout)
		defer cancel()
		for _, t := range tables {
			v, err := t.Lookup(ctx, k)
			if err != nil || v != nil {
				return v, err
			}
		}
		return nil, nil
	}
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	if key != "-" {
		v, err := find(key)
		if err != nil {
			return err
		}
		if v == nil {
			return exitError{1}
		}
		fmt.Fprintln(w, strings.Join(v, ","))
		return nil
	}
	found := false
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		k := strings.TrimSpace(sc.Text())
		if k == "" {
			continue
		}
		v, err := find(k)
		if err != nil {
			return err
		}
		if v != nil {
			found = true
			fmt.Fprintf(w, "%s\t%s\n", k, strings.Join(v, ","))
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read keys: %w", err)
	}
	if !found {
		return exitError{1}
	}
	return nil
}

// postmapDump prints every entry of each table as "key value".
func postmapDump(specs []string, opts lookup.Options, stdout io.Writer) error {
	reg, tables, err := openAll(specs, opts)
	if err != nil {
		return err
	}
	defer reg.Close()
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	for i, t := range tables {
		es, err := lookup.Dump(t)
		if err != nil {
			return fmt.Errorf("%s: %w", specs[i], err)
		}
		for _, e := range es {
			k := e.Key
			if strings.ContainsAny(k, " \t\"\\") {
				k = quoteKey(k)
			}
			fmt.Fprintf(w, "%s\t%s\n", k, e.Value)
		}
	}
	return nil
}

// quoteKey writes a key holding whitespace as postmap reads it back.
func quoteKey(k string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(k) + `"`
}
