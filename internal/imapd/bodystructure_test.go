package imapd

import (
	"strings"
	"testing"
)

// structureCase is a message with its hand-checked ENVELOPE and
// BODYSTRUCTURE (RFC 3501 7.4.2 syntax). The same messages are compared
// against Dovecot in dovecot_test.go when Dovecot is installed.
type structureCase struct {
	name          string
	msg           string
	envelope      string
	bodyStructure string
}

func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

var structureCases = []structureCase{
	{
		name: "plain",
		msg: crlf(`From: Alice <alice@example.org>
To: bob@example.org
Subject: plain
Date: Mon, 4 Mar 2024 10:00:00 +0100
Message-ID: <plain@example.org>

line one
line two
`),
		envelope:      `("Mon, 4 Mar 2024 10:00:00 +0100" "plain" (("Alice" NIL "alice" "example.org")) (("Alice" NIL "alice" "example.org")) (("Alice" NIL "alice" "example.org")) ((NIL NIL "bob" "example.org")) NIL NIL NIL "<plain@example.org>")`,
		bodyStructure: `("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 20 2 NIL NIL NIL NIL)`,
	},
	{
		name: "quoted-printable",
		msg: crlf(`From: a@example.org
Subject: qp
MIME-Version: 1.0
Content-Type: text/plain; charset="ISO-8859-1"; format=flowed
Content-Transfer-Encoding: quoted-printable

caf=E9
`),
		envelope:      `(NIL "qp" ((NIL NIL "a" "example.org")) ((NIL NIL "a" "example.org")) ((NIL NIL "a" "example.org")) NIL NIL NIL NIL NIL)`,
		bodyStructure: `("text" "plain" ("charset" "ISO-8859-1" "format" "flowed") NIL NIL "quoted-printable" 8 1 NIL NIL NIL NIL)`,
	},
	{
		name: "alternative",
		msg: crlf(`From: a@example.org
Subject: alt
Content-Type: multipart/alternative; boundary=b1

--b1
Content-Type: text/plain; charset=utf-8

plain
--b1
Content-Type: text/html; charset=utf-8

<p>html</p>
--b1--
`),
		envelope:      `(NIL "alt" ((NIL NIL "a" "example.org")) ((NIL NIL "a" "example.org")) ((NIL NIL "a" "example.org")) NIL NIL NIL NIL NIL)`,
		bodyStructure: `(("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 5 0 NIL NIL NIL NIL)("text" "html" ("charset" "utf-8") NIL NIL "7bit" 11 0 NIL NIL NIL NIL) "alternative" ("boundary" "b1") NIL NIL NIL)`,
	},
	{
		name:          "mixed-attachment",
		msg:           transcriptFixture[1].data,
		envelope:      `("Tue, 5 Mar 2024 11:30:00 +0000" "=?UTF-8?Q?Gr=C3=BC=C3=9Fe?=" (("Carol, C." NIL "carol" "example.net")) (("Carol, C." NIL "carol" "example.net")) (("Carol, C." NIL "carol" "example.net")) ((NIL NIL "alice" "example.org")(NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)) NIL NIL NIL NIL)`,
		bodyStructure: `(("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 27 0 NIL NIL NIL NIL)("application" "pdf" ("name" "a.pdf") NIL NIL "base64" 12 NIL ("attachment" ("filename" "a.pdf")) NIL NIL) "mixed" ("boundary" "XX") NIL NIL NIL)`,
	},
	{
		name: "nested-rfc822",
		msg: crlf(`From: outer@example.org
Subject: fwd
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: text/plain

see attached
--outer
Content-Type: message/rfc822
Content-Description: forwarded

From: inner@example.org
Subject: inner
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain

hi
--inner--
--outer--
`),
		envelope:      `(NIL "fwd" ((NIL NIL "outer" "example.org")) ((NIL NIL "outer" "example.org")) ((NIL NIL "outer" "example.org")) NIL NIL NIL NIL NIL)`,
		bodyStructure: `(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 12 0 NIL NIL NIL NIL)("message" "rfc822" NIL NIL "forwarded" "7bit" 150 (NIL "inner" ((NIL NIL "inner" "example.org")) ((NIL NIL "inner" "example.org")) ((NIL NIL "inner" "example.org")) NIL NIL NIL NIL NIL) (("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 2 0 NIL NIL NIL NIL) "alternative" ("boundary" "inner") NIL NIL NIL) 9 NIL NIL NIL NIL) "mixed" ("boundary" "outer") NIL NIL NIL)`,
	},
	{
		name: "addresses",
		msg: crlf(`From: "Doe, John" <john@example.org>, =?ISO-8859-1?Q?Andr=E9?= <andre@example.org>
Sender: <sender@example.org>
Reply-To: friends: a@example.org, "B \"Q\"" <b@example.org>;, c@example.org
To: "quoted local"@example.org (comment), Mr. Smith <smith@example.org>
Cc: undisclosed-recipients:;
Bcc: <@relay.example:route@example.org>
In-Reply-To: <parent@example.org>
Subject: =?UTF-8?B?w7xiZXI=?= addresses

x
`),
		envelope:      "(NIL \"=?UTF-8?B?w7xiZXI=?= addresses\" ((\"Doe, John\" NIL \"john\" \"example.org\")(\"=?ISO-8859-1?Q?Andr=E9?=\" NIL \"andre\" \"example.org\")) ((NIL NIL \"sender\" \"example.org\")) ((NIL NIL \"friends\" NIL)(NIL NIL \"a\" \"example.org\")({5}\r\nB \"Q\" NIL \"b\" \"example.org\")(NIL NIL NIL NIL)(NIL NIL \"c\" \"example.org\")) ((\"comment\" NIL \"quoted local\" \"example.org\")(\"Mr. Smith\" NIL \"smith\" \"example.org\")) ((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) ((NIL \"@relay.example\" \"route\" \"example.org\")) \"<parent@example.org>\" NIL)",
		bodyStructure: `("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1 NIL NIL NIL NIL)`,
	},
	{
		name:          "no-headers",
		msg:           crlf("\nbody only\n"),
		envelope:      `(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)`,
		bodyStructure: `("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 11 1 NIL NIL NIL NIL)`,
	},
	{
		name: "8bit",
		msg: crlf(`From: Jörg <joerg@example.org>
Subject: Grüße
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Grüße
`),
		envelope:      "(NIL {7}\r\nGrüße (({5}\r\nJörg NIL \"joerg\" \"example.org\")) (({5}\r\nJörg NIL \"joerg\" \"example.org\")) (({5}\r\nJörg NIL \"joerg\" \"example.org\")) NIL NIL NIL NIL NIL)",
		bodyStructure: `("text" "plain" ("charset" "utf-8") NIL NIL "8bit" 9 1 NIL NIL NIL NIL)`,
	},
	{
		name: "extension-fields",
		msg: crlf(`Content-Type: application/octet-stream; name=data.bin
Content-ID: <part1@example.org>
Content-Description: some data
Content-Transfer-Encoding: base64
Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==
Content-Disposition: inline; filename="data.bin"; size=3
Content-Language: en, de
Content-Location: http://example.org/data.bin

AAEC
`),
		envelope:      `(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)`,
		bodyStructure: `("application" "octet-stream" ("name" "data.bin") "<part1@example.org>" "some data" "base64" 6 "Q2hlY2sgSW50ZWdyaXR5IQ==" ("inline" ("filename" "data.bin" "size" "3")) ("en" "de") "http://example.org/data.bin")`,
	},
	{
		name: "digest",
		msg: crlf(`Subject: digest
Content-Type: multipart/digest; boundary=d

--d

Subject: one

1
--d--
`),
		envelope:      `(NIL "digest" NIL NIL NIL NIL NIL NIL NIL NIL)`,
		bodyStructure: `(("message" "rfc822" NIL NIL NIL "7bit" 17 (NIL "one" NIL NIL NIL NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 1 0 NIL NIL NIL NIL) 2 NIL NIL NIL NIL) "digest" ("boundary" "d") NIL NIL NIL)`,
	},
}

func TestStructure(t *testing.T) {
	for _, tc := range structureCases {
		t.Run(tc.name, func(t *testing.T) {
			data := []byte(tc.msg)
			root := parseMessage(data)
			if got := string(envelope(data, root)); got != tc.envelope {
				t.Errorf("ENVELOPE\n got %s\nwant %s", got, tc.envelope)
			}
			if got := string(bodyStructure(data, root, true)); got != tc.bodyStructure {
				t.Errorf("BODYSTRUCTURE\n got %s\nwant %s", got, tc.bodyStructure)
			}
		})
	}
}

// TestSections checks BODY[section] addressing (RFC 3501 6.4.5) on the
// nested message; parts that do not exist are empty, as in Dovecot.
func TestSections(t *testing.T) {
	data := []byte(structureCases[4].msg)
	root := parseMessage(data)
	cases := []struct {
		sec  section
		want string
	}{
		{sec: section{path: []int{1}}, want: "see attached"},
		{sec: section{path: []int{1}, specifier: "MIME"}, want: "Content-Type: text/plain\r\n\r\n"},
		{sec: section{path: []int{2}, specifier: "HEADER"}, want: "From: inner@example.org\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n"},
		{sec: section{path: []int{2}, specifier: "HEADER.FIELDS", fields: []string{"subject"}}, want: "Subject: inner\r\n\r\n"},
		{sec: section{path: []int{2, 1}}, want: "hi"},
		{sec: section{path: []int{2, 1, 1}}, want: "hi"},
		{sec: section{path: []int{2, 2}}, want: ""},
		{sec: section{path: []int{3}}, want: ""},
		{sec: section{path: []int{1, 1}}, want: "see attached"},
		{sec: section{path: []int{1, 1, 1}}, want: ""},
		{sec: section{path: []int{1}, specifier: "HEADER"}, want: ""},
		{sec: section{specifier: "HEADER.FIELDS.NOT", fields: []string{"From", "Content-Type"}}, want: "Subject: fwd\r\n\r\n"},
		{sec: section{path: []int{2}, specifier: "TEXT"}, want: "--inner\r\nContent-Type: text/plain\r\n\r\nhi\r\n--inner--\r\n"},
	}
	for _, c := range cases {
		got, ok := sectionBytes(data, root, c.sec)
		if !ok || string(got) != c.want {
			t.Errorf("section %+v = %q, %v; want %q", c.sec, got, ok, c.want)
		}
	}
}
