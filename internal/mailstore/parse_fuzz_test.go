package mailstore

import (
	"bytes"
	"strings"
	"testing"
)

func FuzzParseUIDList(f *testing.F) {
	f.Add([]byte("3 V1795568200 N1 Gb53777324832066b1721000083ecc375\n1 :1795568200.M845615P8471.vm,S=28,W=32\n"))
	f.Add([]byte("3 V5 N10 Gabc X1\n2 W120 S100 :a,S=100\n7 :b:2,S\n"))
	f.Add([]byte("1 1234 5\n1 name1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ul, err := parseUIDList(data)
		if err != nil {
			return
		}
		// What parses must survive a round trip unchanged.
		again, err := parseUIDList(ul.marshal())
		if err != nil {
			t.Fatalf("marshal of parsed list does not parse: %v\n%q", err, ul.marshal())
		}
		if len(again.Recs) != len(ul.Recs) || again.nextUID() != ul.nextUID() || again.UIDValidity != ul.UIDValidity {
			t.Fatalf("round trip changed the list")
		}
		for i := 1; i < len(ul.Recs); i++ {
			if ul.Recs[i].UID <= ul.Recs[i-1].UID {
				t.Fatalf("UIDs not ascending")
			}
		}
		if len(ul.Recs) > 0 && ul.nextUID() <= ul.Recs[len(ul.Recs)-1].UID {
			t.Fatalf("next UID %d not above last %d", ul.nextUID(), ul.Recs[len(ul.Recs)-1].UID)
		}
	})
}

func FuzzParseKeywords(f *testing.F) {
	f.Add([]byte("0 $Forwarded\n1 foo\n"))
	f.Add([]byte("25 z\n26 no\n-1 x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		kw := parseKeywords(data)
		again := parseKeywords(kw.marshal())
		if *again != *kw {
			t.Fatalf("round trip: %v != %v", again.list(), kw.list())
		}
		for _, k := range kw.list() {
			if !validKeyword(k) {
				t.Fatalf("invalid keyword %q accepted", k)
			}
		}
	})
}

func FuzzParseFileName(f *testing.F) {
	f.Add("1795568200.M845615P8471.vm,S=28,W=32:2,RSab")
	f.Add("x:2,")
	f.Add(",S=,W=99999999999999999999")
	f.Fuzz(func(t *testing.T, name string) {
		fn := parseFileName(name)
		if strings.Contains(fn.Base, ":") {
			t.Fatalf("base %q has a colon", fn.Base)
		}
		if !strings.HasPrefix(name, fn.Base) {
			t.Fatalf("base %q not a prefix of %q", fn.Base, name)
		}
		if fn.HasInfo && curName(fn.Base, fn.Flags) != name {
			t.Fatalf("curName does not rebuild %q", name)
		}
		letters := sortLetters(fn.Flags)
		if sortLetters(letters) != letters {
			t.Fatalf("sortLetters not idempotent")
		}
		_ = flagsFromLetters(fn.Flags, parseKeywords([]byte("0 a\n")))
		_, _ = fileTime(fn.Base)
	})
}

func FuzzParseLocation(f *testing.F) {
	f.Add("maildir:~/Maildir")
	f.Add("maildir:/var/mail/u:LAYOUT=fs:INDEX=MEMORY:CONTROL=/c:DIRNAME=d:INBOX=/i")
	f.Add("sdbox:/x")
	f.Add("maildir:/a::b")
	f.Fuzz(func(t *testing.T, loc string) {
		l, err := ParseLocation(loc, "/home/u")
		if err != nil {
			return
		}
		for _, p := range []string{l.Root, l.Inbox} {
			if !strings.HasPrefix(p, "/") || strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") {
				t.Fatalf("unsafe path %q from %q", p, loc)
			}
		}
		if l.Layout != LayoutFS && l.Layout != LayoutMaildirPP {
			t.Fatalf("layout %q", l.Layout)
		}
	})
}

func FuzzMailboxName(f *testing.F) {
	f.Add("Archive/2024")
	f.Add("../../etc/passwd")
	f.Add("INBOX/a.b")
	f.Fuzz(func(t *testing.T, name string) {
		for _, layout := range []string{LayoutMaildirPP, LayoutFS} {
			norm, _, err := normalizeName(name, layout, "")
			if err != nil {
				continue
			}
			l := Location{Root: "/m", Layout: layout, Inbox: "/m"}
			bp := l.paths(norm)
			if bp.Dir != "/m" && !strings.HasPrefix(bp.Dir, "/m/") {
				t.Fatalf("%q escapes the root: %s", name, bp.Dir)
			}
			if strings.Contains(bp.Dir, "/../") || strings.HasSuffix(bp.Dir, "/..") {
				t.Fatalf("%q gives %s", name, bp.Dir)
			}
			if layout == LayoutMaildirPP && bp.Dir != "/m" && strings.Count(bp.Dir, "/") != 2 {
				t.Fatalf("Maildir++ folder %q not directly under the root: %s", name, bp.Dir)
			}
		}
	})
}

func FuzzWriteLF(f *testing.F) {
	f.Add([]byte("a\r\nb\nc\r\r\n\r"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var buf bytes.Buffer
		size, vsize, err := writeLF(t.Context(), &buf, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if size != int64(buf.Len()) {
			t.Fatalf("size %d, wrote %d", size, buf.Len())
		}
		// Reading back with CRLF gives exactly vsize bytes.
		var n int64
		var last byte
		for _, c := range buf.Bytes() {
			if c == '\n' && last != '\r' {
				n++
			}
			n++
			last = c
		}
		if n != vsize {
			t.Fatalf("vsize %d, CRLF form has %d", vsize, n)
		}
	})
}

func FuzzParseIndex(f *testing.F) {
	f.Add([]byte("postcote-index 1 V5 H9 C1\n1 3 1700000000000000000 120 RS\n2 9 1700000000000000001 80 -\n"))
	f.Add([]byte("postcote-index 1 V5 H9\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ix, err := parseIndex(data)
		if err != nil {
			return
		}
		for uid, e := range ix.entries {
			if uid == 0 || e.modseq > ix.highest {
				t.Fatalf("entry %d %+v above highest %d", uid, e, ix.highest)
			}
		}
	})
}

func FuzzParseSubscriptions(f *testing.F) {
	f.Add([]byte("V\t2\n\nSent\na\tb\n"), true)
	f.Add([]byte("Sent\nArchive.2024\n"), false)
	f.Fuzz(func(t *testing.T, data []byte, pp bool) {
		layout := LayoutFS
		if pp {
			layout = LayoutMaildirPP
		}
		names := parseSubscriptions(data, layout)
		again := parseSubscriptions(marshalSubscriptions(names), layout)
		if len(again) != len(names) {
			t.Fatalf("round trip %q -> %q", names, again)
		}
		for i := range names {
			if names[i] != again[i] {
				t.Fatalf("round trip %q -> %q", names, again)
			}
		}
	})
}

func FuzzParseSpecialUse(f *testing.F) {
	f.Add([]byte("\\Sent Sent\n\\Trash,\\Junk Deleted Items\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m := parseSpecialUse(data)
		again := parseSpecialUse(marshalSpecialUse(m))
		if len(again) != len(m) {
			t.Fatalf("round trip %v -> %v", m, again)
		}
		for k, v := range m {
			if again[k] != v {
				t.Fatalf("round trip %v -> %v", m, again)
			}
		}
	})
}
