package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"postcote/internal/config"
)

func TestChooseLog(t *testing.T) {
	tests := []struct {
		name               string
		mainCF, dovecot    string
		wantFile, wantFac  string
		wantWhereHasPrefix string
	}{
		{name: "syslog by default", mainCF: "myhostname = mx.example\n", dovecot: "protocols = imap\n", wantFac: "mail"},
		{name: "postfix facility", mainCF: "syslog_facility = local2\n", dovecot: "", wantFac: "local2"},
		{name: "maillog_file wins", mainCF: "maillog_file = /var/log/postfix.log\n", dovecot: "log_path = /var/log/dovecot.log\n",
			wantFile: "/var/log/postfix.log", wantWhereHasPrefix: "maillog_file ("},
		{name: "dovecot log_path", mainCF: "myhostname = mx.example\n", dovecot: "log_path = /var/log/dovecot.log\n",
			wantFile: "/var/log/dovecot.log", wantWhereHasPrefix: "log_path ("},
		{name: "dovecot syslog is syslog", mainCF: "", dovecot: "log_path = syslog\nsyslog_facility = local5\n", wantFac: "local5"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var paths config.Paths
			if tc.mainCF != "" {
				paths.MainCF = filepath.Join(dir, "main.cf")
				if err := os.WriteFile(paths.MainCF, []byte(tc.mainCF), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tc.dovecot != "" {
				paths.DovecotConf = filepath.Join(dir, "dovecot.conf")
				if err := os.WriteFile(paths.DovecotConf, []byte(tc.dovecot), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := chooseLog(paths)
			if err != nil {
				t.Fatal(err)
			}
			if got.file != tc.wantFile {
				t.Errorf("file %q, want %q", got.file, tc.wantFile)
			}
			if tc.wantFile == "" && got.facility != tc.wantFac {
				t.Errorf("facility %q, want %q", got.facility, tc.wantFac)
			}
			if !strings.HasPrefix(got.where, tc.wantWhereHasPrefix) || (tc.wantFile != "" && !strings.Contains(got.where, ":1")) {
				t.Errorf("where %q, want %q… with file:line", got.where, tc.wantWhereHasPrefix)
			}
		})
	}
}

// An unwritable log file is refused with the setting's file:line.
func TestOpenLogBadFile(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "main.cf")
	if err := os.WriteFile(main, []byte("maillog_file = "+filepath.Join(dir, "no", "such", "dir", "log")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := openLog(config.Paths{MainCF: main}, false)
	if err == nil || !strings.Contains(err.Error(), "main.cf:1") {
		t.Fatalf("error %v, want one naming main.cf:1", err)
	}
}
