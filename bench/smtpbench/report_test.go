package main

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseConcurrency(t *testing.T) {
	tests := []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{"10,50", []int{10, 50}, false},
		{" 1 , 2,3", []int{1, 2, 3}, false},
		{"10", []int{10}, false},
		{"", nil, true},
		{"10,", nil, true},
		{"0", nil, true},
		{"-5", nil, true},
		{"ten", nil, true},
		{"20000", nil, true},
	}
	for _, tt := range tests {
		got, err := parseConcurrency(tt.in)
		if (err != nil) != tt.wantErr || !equalInts(got, tt.want) {
			t.Errorf("parseConcurrency(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2}, // the lower middle: a value that was measured
	}
	for _, tt := range tests {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
	in := []float64{3, 1, 2}
	median(in)
	if in[0] != 3 {
		t.Errorf("median reordered its input: %v", in)
	}
}

func TestRatio(t *testing.T) {
	tests := []struct {
		a, b float64
		want string
	}{
		{300, 150, "2.00×"},
		{100, 300, "0.33×"},
		{0, 300, "n/a"},
		{300, 0, "n/a"},
	}
	for _, tt := range tests {
		if got := ratio(tt.a, tt.b); got != tt.want {
			t.Errorf("ratio(%v, %v) = %q, want %q", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestReportWrite(t *testing.T) {
	ms := func(acc, del float64) []measure {
		return []measure{{accepted: 100, acceptRate: acc, deliverRate: del, p50: 2 * time.Millisecond, p99: 9 * time.Millisecond}}
	}
	r := &report{
		header: []string{"head"},
		kinds: []kind{
			{key: "postcote", label: "postcote"},
			{key: "postfix", label: "Postfix (discard)"},
			{key: "postfix+dovecot", label: "Postfix→Dovecot"},
		},
		setup:       map[string]string{"postcote": "setup A", "postfix": "setup B"},
		concurrency: []int{10},
		results: map[string]map[int][]measure{
			"postcote":        {10: ms(600, 500)},
			"postfix":         {10: ms(300, 0)},
			"postfix+dovecot": {10: {{accepted: 90, failed: 10, acceptRate: 200, deliverRate: 250, note: "timed out"}}},
		},
	}
	var b strings.Builder
	r.write(&b)
	out := b.String()
	for _, want := range []string{
		"head", "setup A", "setup B", "10 concurrent sessions",
		"postcote                  600.0      2.0      9.0        500.0        0",
		"ratio accept     postcote / Postfix          2.00×",
		"ratio delivered  postcote / Postfix→Dovecot  2.00×",
		"note: Postfix→Dovecot: timed out",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(options) bool
	}{
		{"defaults", nil, "", func(o options) bool {
			return o.messages == 2000 && equalInts(o.concurrency, []int{10, 50}) && o.size == 5120 &&
				o.timeout == 120*time.Second && o.postcote == "bin/postcote" && o.perSession == 1
		}},
		{"only postcote turns Postfix off", []string{"-only", "postcote"}, "", func(o options) bool { return !o.postfix }},
		{"only postfix without postfix", []string{"-postfix=false", "-only", "postfix"}, "missing", nil},
		{"bad only", []string{"-only", "exim"}, "want postcote or postfix", nil},
		{"bad list", []string{"-c", "10,x"}, "concurrency", nil},
		{"zero messages", []string{"-n", "0"}, "positive", nil},
		{"tiny size", []string{"-size", "10"}, "-size", nil},
		{"stray argument", []string{"extra"}, "unexpected", nil},
		{"bad timeout", []string{"-timeout", "-1s"}, "timeout", nil},
		{"addr", []string{"-addr", "127.0.0.1:25", "-to", "a@b.test"}, "", func(o options) bool {
			return o.addr == "127.0.0.1:25" && o.to == "a@b.test" && !o.postfix && o.only == "addr"
		}},
		{"addr and only", []string{"-addr", "127.0.0.1:25", "-only", "postfix"}, "exclude", nil},
		{"to without addr", []string{"-to", "a@b.test"}, "goes with -addr", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseFlags(tt.args, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !tt.check(o) {
				t.Fatalf("parseFlags(%q) = %+v, %v", tt.args, o, err)
			}
		})
	}
	if _, err := parseFlags([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v, want flag.ErrHelp", err)
	}
}

// TestMainAgainstRunningServer runs the whole program with -addr against
// the fake server: flags, runs at two concurrencies, the report.
func TestMainAgainstRunningServer(t *testing.T) {
	srv := newFakeSMTP(t, nil)
	var stdout, stderr strings.Builder
	code := mainErr([]string{"-addr", srv.addr(), "-n", "30", "-c", "2,5", "-size", "1024", "-rounds", "2"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	if got := len(srv.received()); got != 4*30 {
		t.Errorf("server got %d messages, want 120 (2 rounds × 2 concurrencies × 30)", got)
	}
	out := stdout.String()
	for _, want := range []string{"2 concurrent sessions", "5 concurrent sessions", "30 messages of 1024 bytes", srv.addr()} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "ratio") || strings.Contains(out, "note:") {
		t.Errorf("report has ratios or notes for a lone server that accepted everything:\n%s", out)
	}
}

func TestReportSpread(t *testing.T) {
	round := func(acc float64) measure { return measure{accepted: 10, acceptRate: acc} }
	r := &report{
		kinds:       []kind{{key: "postcote", label: "postcote"}, {key: "postfix", label: "Postfix (discard)"}},
		concurrency: []int{10},
		results: map[string]map[int][]measure{
			"postcote": {10: {round(300), round(100), round(200)}},
			"postfix":  {10: {round(100), round(100), round(100)}},
		},
	}
	var b strings.Builder
	r.write(&b)
	if want := "postcote / Postfix          2.00×   (per round 1.00× to 3.00×)"; !strings.Contains(b.String(), want) {
		t.Errorf("report lacks %q:\n%s", want, b.String())
	}
}
