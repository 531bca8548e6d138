package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMaildirWatch(t *testing.T) {
	md := filepath.Join(t.TempDir(), "Maildir")
	// The Maildir does not exist yet: it counts as empty.
	w, err := watchMaildir(md)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.initial != 0 {
		t.Fatalf("initial count %d, want 0", w.initial)
	}
	for _, sub := range []string{"new", "cur", "tmp"} {
		if err := os.MkdirAll(filepath.Join(md, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	files := []string{"new/1", "new/2", "cur/3:2,S", "tmp/4"} // tmp/ is not delivered yet
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(md, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	at, err := w.WaitFor(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if at.Before(start) {
		t.Errorf("seen at %v, before the files were written at %v", at, start)
	}
	// A count never reached ends with the context.
	short, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	if _, err := w.WaitFor(short, 4); err == nil || !strings.Contains(err.Error(), "3 of 4") {
		t.Errorf("WaitFor(4) = %v, want a timeout saying 3 of 4", err)
	}
}

func TestCountMaildir(t *testing.T) {
	tests := []struct {
		name  string
		files []string
		want  int
	}{
		{"empty", nil, 0},
		{"new and cur", []string{"new/a", "new/b", "cur/c:2,"}, 3},
		{"tmp and index files do not count", []string{"tmp/x", "dovecot-uidlist", "new/a"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			md := t.TempDir()
			for _, sub := range []string{"new", "cur", "tmp"} {
				os.Mkdir(filepath.Join(md, sub), 0o700)
			}
			for _, f := range tt.files {
				if err := os.WriteFile(filepath.Join(md, f), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if got, err := countMaildir(md); err != nil || got != tt.want {
				t.Errorf("countMaildir = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}
