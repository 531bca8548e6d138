package e2e

import (
	"strings"
	"testing"

	"postcote/internal/testenv"
)

// This file checks cleanup's rewriting end to end: masquerade_domains on
// mail submitted with `postcote sendmail`, and the percent hack and bang
// paths, which route mail that was allowed to relay but never open a
// relay to strangers.

// TestMasqueradeDomainsSendmail: with masquerade_domains = the demo
// domain and masquerade_exceptions = root, a message submitted with
// `postcote sendmail -f cron@host.DOMAIN` reaches the Maildir with the
// envelope sender (Return-Path) and the From: and Cc: headers
// masqueraded to DOMAIN, root's Reply-To: left alone, and the body
// untouched.
func TestMasqueradeDomainsSendmail(t *testing.T) {
	p := testenv.NewDev(t)
	_, domain, _ := strings.Cut(p.User, "@")
	setMain(t, p, "masquerade_domains", "!keep."+domain+", $mydomain")
	setMain(t, p, "masquerade_exceptions", "root")
	p.Start()

	msg := "From: Cron Daemon <cron@host." + domain + ">\n" +
		"To: " + p.User + "\n" +
		"Cc: other@deep.host." + domain + ", kept@a.keep." + domain + "\n" +
		"Reply-To: root@host." + domain + "\n" +
		"Subject: masquerade\n\ncron@host." + domain + " stays in the body\n"
	if _, errOut, code := tool(t, p, msg, "sendmail", "-f", "cron@host."+domain, p.User); code != 0 {
		t.Fatalf("sendmail: exit %d: %s", code, errOut)
	}
	got := messageFiles(t, maildir(p), 1)[0]
	for _, want := range []string{
		"Return-Path: <cron@" + domain + ">",
		"From: Cron Daemon <cron@" + domain + ">",
		"Cc: other@" + domain + ", kept@a.keep." + domain,
		"Reply-To: root@host." + domain,
		"To: " + p.User,
		"cron@host." + domain + " stays in the body",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("delivered message lacks %q:\n%s\nlog:\n%s", want, got, p.Log())
		}
	}
	waitLog(t, p, "from=<cron@"+domain+">")
}

// TestPercentHackIsNotARelay: "user%remote@ourhost", "remote!user@ourhost"
// and a quoted "user@remote"@ourhost from a client outside mynetworks are
// refused at RCPT by the relay restrictions (cleanup would route them to
// the remote domain, so they must never get that far), as is "%" in a
// virtual mailbox domain (or refused as an unknown mailbox); the same
// percent-hack address submitted locally with sendmail (a trusted
// source) is routed by cleanup to the address it names, here our own
// user.
func TestPercentHackIsNotARelay(t *testing.T) {
	p := testenv.NewDev(t)
	_, domain, _ := strings.Cut(p.User, "@")
	local, _, _ := strings.Cut(p.User, "@")
	ours := "mx." + domain // a mydestination domain
	setMain(t, p, "mydestination", ours)
	setMain(t, p, "local_recipient_maps", "")
	setMain(t, p, "alias_maps", "")
	setMain(t, p, "mynetworks", "192.0.2.0/24") // the test client is a stranger
	p.Start()

	c := smtpDial(t, p.Ports.SMTP)
	defer c.Close()
	if err := c.Mail("someone@elsewhere.example"); err != nil {
		t.Fatal(err)
	}
	for _, rcpt := range []string{
		"victim%elsewhere.example@" + ours,
		"victim%elsewhere.example@" + strings.ToUpper(ours) + ".",
		"elsewhere.example!victim@" + ours,
		`"victim@elsewhere.example"@` + ours,
		"victim%elsewhere.example",
		"elsewhere.example!victim",
	} {
		err := c.Rcpt(rcpt)
		if !replyIs(err, "454 4.7.1") && !replyIs(err, "450 4.7.1") && !replyIs(err, "554 5.7.1") {
			t.Errorf("RCPT TO:<%s> from a stranger: %v, want Relay access denied", rcpt, err)
		}
	}
	// Postfix 3.7 answers Relay access denied here too (sender routing
	// in a virtual domain); an unknown mailbox name is as safe.
	if err := c.Rcpt("victim%elsewhere.example@" + domain); !replyIs(err, "550 5.1.1") && !replyIs(err, "454 4.7.1") && !replyIs(err, "554 5.7.1") {
		t.Errorf("RCPT TO a %% address of the virtual domain: %v, want Relay access denied or 550 5.1.1", err)
	}
	c.Quit()

	if _, errOut, code := tool(t, p, "Subject: percent\n\nbody\n", "sendmail", local+"%"+domain+"@"+ours); code != 0 {
		t.Fatalf("sendmail: exit %d: %s", code, errOut)
	}
	got := messageFiles(t, maildir(p), 1)[0]
	if !strings.Contains(got, "Subject: percent") || !strings.Contains(got, "Delivered-To: "+p.User) {
		t.Errorf("delivered message:\n%s", got)
	}
	waitLog(t, p, "to=<"+p.User+">, orig_to=<"+local+"%"+domain+"@"+ours+">")
	// Only the sendmail message was queued, and nothing went to the
	// stranger's victim.
	if n := strings.Count(p.Log(), "(queue active)"); n != 1 {
		t.Errorf("%d messages queued, want the sendmail one only:\n%s", n, p.Log())
	}
	for _, line := range strings.Split(p.Log(), "\n") {
		if strings.Contains(line, "status=") && strings.Contains(line, "victim") {
			t.Errorf("a stranger's routed address was delivered: %s", line)
		}
	}
}
