package config

import (
	"errors"
	"fmt"
	"testing"
)

func TestPosAndDiagnostics(t *testing.T) {
	tests := []struct {
		p    Pos
		want string
	}{
		{Pos{}, "(default)"},
		{Pos{File: "main.cf"}, "main.cf"},
		{Pos{File: "main.cf", Line: 7}, "main.cf:7"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.p, got, tt.want)
		}
	}
	ds := []Diagnostic{
		{Pos{"b.cf", 1}, Warning, "w"},
		{Pos{"a.cf", 9}, Info, "i"},
		{Pos{"a.cf", 2}, Warning, "w2"},
		{Pos{"a.cf", 2}, Error, "e"},
	}
	if HasErrors(ds[:3]) || !HasErrors(ds) {
		t.Error("HasErrors")
	}
	SortDiagnostics(ds)
	var got string
	for _, d := range ds {
		got += d.String() + "|"
	}
	if want := "a.cf:2: error: e|a.cf:2: warning: w2|a.cf:9: info: i|b.cf:1: warning: w|"; got != want {
		t.Errorf("sorted = %s", got)
	}
}

func TestPosError(t *testing.T) {
	cause := errors.New("permission denied")
	err := error(&PosError{Pos: Pos{"dovecot.conf", 3}, Key: "ssl_key", Msg: "cannot read /k", Err: cause})
	if got := err.Error(); got != "dovecot.conf:3: ssl_key: cannot read /k: permission denied" {
		t.Errorf("Error() = %q", got)
	}
	if !errors.Is(err, cause) {
		t.Error("Unwrap")
	}
	var pe *PosError
	if !errors.As(fmt.Errorf("load: %w", err), &pe) || pe.Pos.Line != 3 {
		t.Error("errors.As")
	}
	if got := Errorf(Pos{"m.cf", 1}, "", "bad %d", 5).Error(); got != "m.cf:1: bad 5" {
		t.Errorf("Errorf = %q", got)
	}
}
