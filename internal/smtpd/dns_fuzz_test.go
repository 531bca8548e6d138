package smtpd

import (
	"net/netip"
	"strings"
	"testing"
)

// FuzzExpandTemplate: reply templates (default_rbl_reply, rbl_reply_maps
// results) expand or fail without panicking, and filtered values cannot
// add a line break to the reply.
func FuzzExpandTemplate(f *testing.F) {
	f.Add(DefaultRBLReply, "text")
	f.Add("${a?${b:$$c}}$(d)", "x\r\ny")
	f.Add("${", "")
	f.Fuzz(func(t *testing.T, tmpl, value string) {
		out, err := expandTemplate(tmpl, func(string) (string, bool) { return expandFilter(value), value != "" })
		if err == nil && !strings.ContainsAny(tmpl, "\r\n") && strings.ContainsAny(out, "\r\n") {
			t.Errorf("expand(%q) with %q gave a line break: %q", tmpl, value, out)
		}
	})
}

// FuzzParseDNSList: DNS list arguments ("zen.example=127.0.0.[2..11]")
// parse or fail without panicking, and a parsed filter can be matched.
func FuzzParseDNSList(f *testing.F) {
	f.Add("zen.example=127.0.0.[2..11]")
	f.Add("dbl.example=127.0.[1;3].[2;4..6]")
	f.Add("x=1.2.3")
	f.Fuzz(func(t *testing.T, arg string) {
		l, err := parseDNSList(arg)
		if err != nil || l.filter == nil {
			return
		}
		l.filter.match(netip.MustParseAddr("127.0.0.2"))
		l.domainQuery("user@" + arg)
	})
}
