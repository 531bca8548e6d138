package mailstore

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseLocation(t *testing.T) {
	tests := []struct {
		in      string
		want    Location
		wantErr string
	}{
		{in: "maildir:~/Maildir", want: Location{Root: "/home/u/Maildir", Layout: LayoutMaildirPP, Inbox: "/home/u/Maildir"}},
		{in: "maildir:/mailboxes/info@example.jp", want: Location{Root: "/mailboxes/info@example.jp", Layout: LayoutMaildirPP, Inbox: "/mailboxes/info@example.jp"}},
		{in: "~/Maildir", want: Location{Root: "/home/u/Maildir", Layout: LayoutMaildirPP, Inbox: "/home/u/Maildir"}},
		{in: "maildir:~/Maildir:LAYOUT=fs:INDEX=/var/index/u:CONTROL=~/control", want: Location{Root: "/home/u/Maildir", Layout: LayoutFS, Inbox: "/home/u/Maildir", Index: "/var/index/u", Control: "/home/u/control"}},
		{in: "maildir:~/mail:LAYOUT=fs:DIRNAME=mAildir", want: Location{Root: "/home/u/mail", Layout: LayoutFS, Inbox: "/home/u/mail/INBOX/mAildir", DirName: "mAildir"}},
		{in: "maildir:~/Maildir:INBOX=/var/mail/u:INDEX=MEMORY", want: Location{Root: "/home/u/Maildir", Layout: LayoutMaildirPP, Inbox: "/var/mail/u", Index: IndexMemory}},
		{in: "maildir:/srv/a::b/Maildir/", want: Location{Root: "/srv/a:b/Maildir", Layout: LayoutMaildirPP, Inbox: "/srv/a:b/Maildir"}},
		{in: "sdbox:/var/mail/u/", wantErr: "sdbox mail_location is not supported yet by postcote (use maildir:)"},
		{in: "mdbox:~/mdbox", wantErr: "mdbox mail_location is not supported yet"},
		{in: "mbox:~/mail:INBOX=/var/mail/u", wantErr: "mbox mail_location is not supported yet"},
		{in: "", wantErr: "empty"},
		{in: "maildir:Maildir", wantErr: "not absolute"},
		{in: "maildir:~other/Maildir", wantErr: "~user"},
		{in: "maildir:~/Maildir:LAYOUT=index", wantErr: "LAYOUT=index"},
		{in: "maildir:~/Maildir:FOO=bar", wantErr: "unknown option"},
		{in: "maildir:~/Maildir:DIRNAME=x", wantErr: "DIRNAME needs LAYOUT=fs"},
		{in: "maildir:~/Maildir:LAYOUT=fs:DIRNAME=../x", wantErr: "bad DIRNAME"},
		{in: "foo:/x", wantErr: "unknown mailbox format"},
		{in: "maildir:/mailboxes/%u", wantErr: "still holds the variable \"%u\""},
		{in: "maildir:~/Maildir:INDEX=/idx/%{user}", wantErr: "still holds the variable"},
		{in: "maildir:/srv/100%", want: Location{Root: "/srv/100%", Layout: LayoutMaildirPP, Inbox: "/srv/100%"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseLocation(tt.in, "/home/u")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
	if _, err := ParseLocation("maildir:~/Maildir", ""); err == nil {
		t.Errorf("~ without home accepted")
	}
}

func TestNormalizeName(t *testing.T) {
	tests := []struct {
		in, layout, want string
		bad              bool
	}{
		{"INBOX", LayoutMaildirPP, "INBOX", false},
		{"inBox", LayoutMaildirPP, "INBOX", false},
		{"inbox/Sub", LayoutMaildirPP, "INBOX/Sub", false},
		{"Archive/2024", LayoutMaildirPP, "Archive/2024", false},
		{"caf&AOk-", LayoutMaildirPP, "caf&AOk-", false},
		{"Entwürfe", LayoutMaildirPP, "Entw&APw-rfe", false},
		{"café & co/日本", LayoutMaildirPP, "caf&AOk- &- co/&ZeVnLA-", false},
		{"a.b", LayoutMaildirPP, "", true},
		{"a.b", LayoutFS, "a.b", false},
		{"..", LayoutFS, "", true},
		{"a/../../etc", LayoutFS, "", true},
		{"/etc", LayoutFS, "", true},
		{"a//b", LayoutFS, "", true},
		{"a/", LayoutFS, "", true},
		{"", LayoutFS, "", true},
		{"a\x00b", LayoutFS, "", true},
		{"a\nb", LayoutFS, "", true},
		{"a\x7fb", LayoutFS, "", true},
		{"\xff", LayoutFS, "", true},
		{"cur", LayoutFS, "", true},
		{"x/tmp", LayoutFS, "", true},
		{".hidden", LayoutFS, "", true},
		{strings.Repeat("x", 300), LayoutFS, "", true},
	}
	for _, tt := range tests {
		got, _, err := normalizeName(tt.in, tt.layout, "")
		if tt.bad {
			if !errors.Is(err, ErrBadName) {
				t.Errorf("normalizeName(%q, %s) = %q, %v; want ErrBadName", tt.in, tt.layout, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("normalizeName(%q, %s) = %q, %v; want %q", tt.in, tt.layout, got, err, tt.want)
		}
	}
}

func TestPaths(t *testing.T) {
	pp := Location{Root: "/m", Layout: LayoutMaildirPP, Inbox: "/m", Control: "/c", Index: "/i"}
	fs := Location{Root: "/m", Layout: LayoutFS, Inbox: "/m/INBOX/d", DirName: "d", Control: "/c"}
	tests := []struct {
		loc  Location
		name string
		want boxPaths
	}{
		{pp, "INBOX", boxPaths{Name: "INBOX", Dir: "/m", Control: "/c/.INBOX", Index: "/i/.INBOX"}},
		{Location{Root: "/m", Layout: LayoutMaildirPP, Inbox: "/m"}, "INBOX", boxPaths{Name: "INBOX", Dir: "/m", Control: "/m", Index: "/m"}},
		{Location{Root: "/m", Layout: LayoutFS, Inbox: "/m", Control: "/c"}, "INBOX", boxPaths{Name: "INBOX", Dir: "/m", Control: "/c/INBOX", Index: "/c/INBOX"}},
		{pp, "Archive/2024", boxPaths{Name: "Archive/2024", Dir: "/m/.Archive.2024", Control: "/c/.Archive.2024", Index: "/i/.Archive.2024"}},
		{fs, "INBOX", boxPaths{Name: "INBOX", Dir: "/m/INBOX/d", Control: "/c/INBOX", Index: "/c/INBOX"}},
		{fs, "Archive/2024", boxPaths{Name: "Archive/2024", Dir: "/m/Archive/2024/d", Control: "/c/Archive/2024", Index: "/c/Archive/2024"}},
		{Location{Root: "/m", Layout: LayoutMaildirPP, Inbox: "/m", Index: IndexMemory}, "Sent", boxPaths{Name: "Sent", Dir: "/m/.Sent", Control: "/m/.Sent"}},
	}
	for _, tt := range tests {
		if got := tt.loc.paths(tt.name); got != tt.want {
			t.Errorf("paths(%s) = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestParseFileName(t *testing.T) {
	tests := []struct {
		in   string
		want fileName
	}{
		{"1795568200.M845615P8471.vm,S=28,W=32", fileName{Base: "1795568200.M845615P8471.vm,S=28,W=32", Size: 28, VSize: 32}},
		{"1795568200.M845615P8471.vm,S=28,W=32:2,RSab", fileName{Base: "1795568200.M845615P8471.vm,S=28,W=32", Size: 28, VSize: 32, HasInfo: true, Flags: "RSab"}},
		{"1202.M1P2.host:2,", fileName{Base: "1202.M1P2.host", Size: -1, VSize: -1, HasInfo: true}},
		{"1202.M1P2.host,S=x,W=-1:1,foo", fileName{Base: "1202.M1P2.host,S=x,W=-1", Size: -1, VSize: -1}},
		{"courier.name,S=100:2,FS", fileName{Base: "courier.name,S=100", Size: 100, VSize: -1, HasInfo: true, Flags: "FS"}},
	}
	for _, tt := range tests {
		if got := parseFileName(tt.in); got != tt.want {
			t.Errorf("parseFileName(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestFlagLetters(t *testing.T) {
	kw := parseKeywords([]byte("0 $Forwarded\n1 foo\n"))
	if got := flagsFromLetters("DFPRSTab", kw); !slices.Equal(got, []string{FlagDraft, FlagFlagged, FlagAnswered, FlagSeen, FlagDeleted, "$Forwarded", "foo"}) {
		t.Errorf("flagsFromLetters = %v", got)
	}
	tests := []struct {
		cur, change string
		op          FlagOp
		want        string
	}{
		{"S", "FR", FlagsAdd, "FRS"},
		{"FRS", "R", FlagsRemove, "FS"},
		{"PSa", "Tb", FlagsReplace, "PTb"},
		{"", "SSa", FlagsAdd, "Sa"},
	}
	for _, tt := range tests {
		if got := applyLetters(tt.cur, tt.change, tt.op); got != tt.want {
			t.Errorf("applyLetters(%q,%q,%d) = %q, want %q", tt.cur, tt.change, tt.op, got, tt.want)
		}
	}
	if !lessFileName("1700000000.M5P1.h", "1700000000.M40P1.h") || lessFileName("1700000001.M1P1.h", "1700000000.M40P1.h") {
		t.Errorf("lessFileName order wrong")
	}
	if got := hostnameForFile("a/b:c"); got != `a\057b\072c` {
		t.Errorf("hostnameForFile = %q", got)
	}
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "dovecot", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseUIDList(t *testing.T) {
	tests := []struct {
		name     string
		data     string
		uv, next uint32
		uids     []uint32
		wantErr  bool
	}{
		// Files written by Dovecot 2.3 (testdata/dovecot): it appends
		// records in place without raising the header's N.
		{name: "dovecot inbox", data: string(readFixture(t, "uidlist-inbox")), uv: 1795568200, next: 2, uids: []uint32{1}},
		{name: "dovecot sent", data: string(readFixture(t, "uidlist-sent")), uv: 1795568201, next: 2, uids: []uint32{1}},
		{name: "dovecot appended", data: string(readFixture(t, "uidlist-appended")), uv: 1795568200, next: 4, uids: []uint32{1, 2, 3}},
		{name: "extensions", data: "3 V5 N10 Gabc X1\n2 W120 S100 :a,S=100\n7 :b:2,S\n", uv: 5, next: 10, uids: []uint32{2, 7}},
		{name: "version 1", data: "1 1234 5\n1 name1\n3 name3:2,S\n", uv: 1234, next: 5, uids: []uint32{1, 3}},
		{name: "cut short", data: "3 V5 N3\n1 :a\n2 :b", uv: 5, next: 3, uids: []uint32{1}},
		{name: "empty", data: "", wantErr: true},
		{name: "no validity", data: "3 N3\n", wantErr: true},
		{name: "version 2", data: "2 1 1\n", wantErr: true},
		{name: "descending", data: "3 V1 N5\n3 :a\n2 :b\n", wantErr: true},
		{name: "zero uid", data: "3 V1 N5\n0 :a\n", wantErr: true},
		{name: "slash", data: "3 V1 N5\n1 :../a\n", wantErr: true},
		{name: "no colon", data: "3 V1 N5\n1 W5\n", wantErr: true},
		{name: "bad number", data: "3 V1x N5\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ul, err := parseUIDList([]byte(tt.data))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("parsed %+v", ul)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var uids []uint32
			for _, r := range ul.Recs {
				uids = append(uids, r.UID)
			}
			if ul.UIDValidity != tt.uv || ul.nextUID() != tt.next || !slices.Equal(uids, tt.uids) {
				t.Errorf("got V%d N%d %v", ul.UIDValidity, ul.nextUID(), uids)
			}
			// Round trip through version 3.
			again, err := parseUIDList(ul.marshal())
			if err != nil {
				t.Fatal(err)
			}
			if again.UIDValidity != ul.UIDValidity || again.nextUID() != ul.nextUID() || again.GUID != ul.GUID || !slices.EqualFunc(again.Recs, ul.Recs, func(a, b uidRec) bool {
				return a.UID == b.UID && a.Name == b.Name && slices.Equal(a.Ext, b.Ext)
			}) {
				t.Errorf("round trip: %+v != %+v", again, ul)
			}
		})
	}
	ul, _ := parseUIDList(readFixture(t, "uidlist-inbox"))
	if got := string(ul.marshal()); got != "3 V1795568200 N2 Gb53777324832066b1721000083ecc375\n1 :1795568200.M845615P8471.vm,S=28,W=32\n" {
		t.Errorf("marshal = %q", got)
	}
}

func TestKeywordsFile(t *testing.T) {
	kw := parseKeywords(readFixture(t, "keywords"))
	if kw.name(0) != "$Forwarded" || kw.name(1) != "foo" || kw.index("FOO") != 1 {
		t.Errorf("keywords = %v", kw.list())
	}
	kw = parseKeywords([]byte("0 a\n3 d\nx y\n30 big\n1 bad(name\n2 a\n4\n"))
	if !slices.Equal(kw.list(), []string{"a", "d"}) || kw.index("d") != 3 {
		t.Errorf("lenient parse = %v", kw.list())
	}
	if i := kw.add("new"); i != 1 {
		t.Errorf("add took %d, want first free 1", i)
	}
	if got := string(kw.marshal()); got != "0 a\n1 new\n3 d\n" {
		t.Errorf("marshal = %q", got)
	}
	full := &keywords{}
	for i := 0; i < maxKeywords; i++ {
		full.add(strings.Repeat("k", i+1))
	}
	if full.add("one-too-many") != -1 {
		t.Errorf("27th keyword got a letter")
	}
}

func TestSubscriptionsFile(t *testing.T) {
	got := parseSubscriptions(readFixture(t, "subscriptions"), LayoutMaildirPP)
	if !slices.Equal(got, []string{"Sent", "a/b", "caf&AOk-"}) {
		t.Errorf("parse = %v", got)
	}
	if string(marshalSubscriptions(got)) != string(readFixture(t, "subscriptions")) {
		t.Errorf("marshal = %q", marshalSubscriptions(got))
	}
	if got := parseSubscriptions([]byte("Sent\nArchive.2024\n../x\n"), LayoutMaildirPP); !slices.Equal(got, []string{"Sent", "Archive/2024"}) {
		t.Errorf("version 1 = %v", got)
	}
	if got := parseSpecialUse([]byte("\\Sent Sent\n\\Bogus X\n\\Trash Deleted Items\n")); len(got) != 2 || got["Deleted Items"] != `\Trash` {
		t.Errorf("special use = %v", got)
	}
}
