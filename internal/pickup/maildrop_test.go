package pickup

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestWriteParse(t *testing.T) {
	dir := t.TempDir()
	sub := &Submission{Sender: "", SenderSet: true, FullName: "A B", Recipients: []string{"x@y", "z"},
		Extract: true, Notify: "NEVER", EnvID: "id1", Ret: "FULL", BodyType: "8BITMIME"}
	msg := "Subject: s\n\nline\n\nPOSTCOTE-MAILDROP 1\n"
	name, err := Write(dir, sub, strings.NewReader(msg), 0)
	if err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != name {
		t.Fatalf("folder holds %v, want only %s", ents, name)
	}
	st, _ := os.Stat(filepath.Join(dir, name))
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode())
	}
	data, _ := os.ReadFile(filepath.Join(dir, name))
	got, off, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, sub) {
		t.Errorf("parsed %+v, want %+v", got, sub)
	}
	if string(data[off:]) != msg {
		t.Errorf("message %q, want %q", data[off:], msg)
	}
}

func TestWriteRefuses(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		sub  Submission
		msg  string
		max  int64
		want error
	}{
		{"newline in sender", Submission{Sender: "a\nR evil@x", SenderSet: true, Recipients: []string{"u"}}, "b", 0, nil},
		{"newline in recipient", Submission{Recipients: []string{"u\nT"}}, "b", 0, nil},
		{"too big", Submission{Recipients: []string{"u"}}, strings.Repeat("x", 101), 100, ErrTooBig},
	}
	for _, tt := range tests {
		_, err := Write(dir, &tt.sub, strings.NewReader(tt.msg), tt.max)
		if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("%s: err = %v, want failure %v", tt.name, err, tt.want)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("refused writes left %v", ents)
	}
}

func TestParseCorrupt(t *testing.T) {
	for _, in := range []string{
		"", "hello\n\nbody", "POSTCOTE-MAILDROP 1\nR a@b\n", "POSTCOTE-MAILDROP 1\nQ x\n\n",
		"POSTCOTE-MAILDROP 1\nR \n\n", "POSTCOTE-MAILDROP 1\nR a\rb\n\n",
		"POSTCOTE-MAILDROP 1\n" + strings.Repeat("F x\n", maxHeaderSize/4+10) + "\n",
	} {
		if _, _, err := Parse([]byte(in)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Parse(%.40q) = %v, want ErrCorrupt", in, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("POSTCOTE-MAILDROP 1\nS a@b\nR c\nT\n\nbody"))
	f.Add([]byte("POSTCOTE-MAILDROP 1\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sub, off, err := Parse(data)
		if err != nil {
			return
		}
		if off > len(data) {
			t.Fatalf("offset %d past %d", off, len(data))
		}
		// What parses must survive a write and a parse again, unchanged.
		if sub.Validate() != nil {
			return
		}
		again, off2, err := Parse(append(sub.encodeHeader(), data[off:]...))
		if err != nil || !reflect.DeepEqual(again, sub) || !bytes.Equal(append(sub.encodeHeader(), data[off:]...)[off2:], data[off:]) {
			t.Fatalf("round trip: %+v %v, want %+v", again, err, sub)
		}
	})
}
