package imapd

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"postcote/internal/maillog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"postcote/internal/mailstore"
	"postcote/internal/testenv"
)

// storeKind builds a mail store and a delivery function for a test.
type storeKind struct {
	name string
	make func(t *testing.T, root string) (mailstore.Store, func(user, mailbox, data string))
}

var storeKinds = []storeKind{
	{"mem", func(t *testing.T, root string) (mailstore.Store, func(string, string, string)) {
		st := newMemStore()
		return st, func(user, mailbox, data string) { st.deliver(user, mailbox, nil, data) }
	}},
	{"maildir", func(t *testing.T, root string) (mailstore.Store, func(string, string, string)) {
		st := mailstore.NewStore(mailstore.Options{Hostname: "test"})
		return st, func(user, mailbox, data string) {
			u, _ := testUsers{root: root}.LookupUser(context.Background(), "lmtp", user)
			if err := st.Deliver(context.Background(), u, mailbox, nil, strings.NewReader(data)); err != nil {
				t.Errorf("deliver: %v", err)
			}
		}
	}},
}

// startStoreServer starts a server whose users live under one root, so
// the delivery function and the server see the same mailboxes.
func startStoreServer(t *testing.T, kind storeKind, opts Options) (*testServer, func(user, mailbox, data string)) {
	t.Helper()
	root := t.TempDir()
	store, deliver := kind.make(t, root)
	log := &maillog.Buffer{}
	if opts.Logger == nil {
		opts.Logger = newTestLogger(log)
	}
	if opts.AuthFailureDelay == 0 {
		opts.AuthFailureDelay = time.Millisecond
	}
	ts := serveWith(t, New(opts, store, testChecker{}, testUsers{root: root}))
	ts.store, ts.log = store, log
	return ts, deliver
}

// TestClientSession drives every common command through go-imap's
// client, against the in-memory store and the real Maildir store.
func TestClientSession(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			ts, deliver := startStoreServer(t, kind, Options{TLS: testenv.NewTestCA(t, "imapd test CA").ServerTLS(t, "localhost", "127.0.0.1")})
			var mu sync.Mutex
			var exists uint32
			existsCh := make(chan struct{}, 10)
			c, err := imapclient.DialStartTLS(ts.addr, &imapclient.Options{
				TLSConfig: &tls.Config{InsecureSkipVerify: true},
				UnilateralDataHandler: &imapclient.UnilateralDataHandler{
					Mailbox: func(d *imapclient.UnilateralDataMailbox) {
						if d.NumMessages != nil {
							mu.Lock()
							exists = *d.NumMessages
							mu.Unlock()
							existsCh <- struct{}{}
						}
					},
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Login("alice", "secret").Wait(); err != nil {
				t.Fatalf("login: %v", err)
			}
			if !c.Caps().Has(imap.CapMove) || !c.Caps().Has(imap.CapUIDPlus) {
				t.Errorf("caps after login: %v", c.Caps())
			}
			if err := c.Create("Archive", nil).Wait(); err != nil {
				t.Fatalf("create: %v", err)
			}
			list, err := c.List("", "*", nil).Collect()
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, l := range list {
				names = append(names, l.Mailbox)
			}
			if strings.Join(names, ",") != "INBOX,Archive" {
				t.Errorf("LIST = %v", names)
			}

			// APPEND, then a delivery.
			msg := sampleMessage
			ap := c.Append("INBOX", int64(len(msg)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagDraft}})
			ap.Write([]byte(msg))
			ap.Close()
			ad, err := ap.Wait()
			if err != nil {
				t.Fatalf("append: %v", err)
			}
			if ad.UID != 1 || ad.UIDValidity == 0 {
				t.Errorf("APPENDUID = %+v", ad)
			}
			deliver("alice", "INBOX", transcriptFixture[1].data)

			sel, err := c.Select("INBOX", nil).Wait()
			if err != nil {
				t.Fatalf("select: %v", err)
			}
			if sel.NumMessages != 2 || sel.UIDNext != 3 {
				t.Errorf("select: %+v", sel)
			}

			msgs, err := c.Fetch(imap.SeqSetNum(1, 2), &imap.FetchOptions{
				Envelope: true, Flags: true, UID: true, RFC822Size: true,
				BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
				BodySection:   []*imap.FetchItemBodySection{{Peek: true}},
			}).Collect()
			if err != nil {
				t.Fatalf("fetch: %v", err)
			}
			if len(msgs) != 2 {
				t.Fatalf("fetch returned %d messages", len(msgs))
			}
			if got := msgs[0].Envelope.Subject; got != "Hello there" {
				t.Errorf("subject = %q", got)
			}
			if got := msgs[0].Envelope.From[0].Addr(); got != "alice@example.org" {
				t.Errorf("from = %q", got)
			}
			if got := string(msgs[0].BodySection[0].Bytes); got != msg {
				t.Errorf("BODY[] = %q", got)
			}
			if msgs[0].RFC822Size != int64(len(msg)) {
				t.Errorf("RFC822.SIZE = %d", msgs[0].RFC822Size)
			}
			mp, ok := msgs[1].BodyStructure.(*imap.BodyStructureMultiPart)
			if !ok || len(mp.Children) != 2 || mp.Subtype != "mixed" {
				t.Fatalf("BODYSTRUCTURE = %#v", msgs[1].BodyStructure)
			}
			att := mp.Children[1].(*imap.BodyStructureSinglePart)
			if att.Disposition().Value != "attachment" || att.Filename() != "a.pdf" {
				t.Errorf("attachment = %#v", att)
			}

			sd, err := c.Search(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "grüße"}}}, &imap.SearchOptions{}).Wait()
			if err != nil {
				t.Fatalf("search: %v", err)
			}
			if got := sd.AllSeqNums(); len(got) != 1 || got[0] != 2 {
				t.Errorf("search = %v", got)
			}
			sd, err = c.Search(&imap.SearchCriteria{Body: []string{"SCHÖNE"}}, nil).Wait()
			if err != nil || len(sd.AllSeqNums()) != 1 {
				t.Errorf("body search = %v, %v", sd, err)
			}

			st, err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Collect()
			if err != nil || len(st) != 1 || !hasFlag(st[0].Flags, imap.FlagFlagged) || !hasFlag(st[0].Flags, imap.FlagDraft) {
				t.Errorf("store = %+v, %v", st, err)
			}

			cd, err := c.Copy(imap.SeqSetNum(1), "Archive").Wait()
			if err != nil {
				t.Fatalf("copy: %v", err)
			}
			if cd.SourceUIDs.String() != "1" || cd.DestUIDs.String() != "1" {
				t.Errorf("COPYUID = %+v", cd)
			}
			if err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
				t.Fatal(err)
			}
			exp, err := c.Expunge().Collect()
			if err != nil || len(exp) != 1 || exp[0] != 1 {
				t.Errorf("expunge = %v, %v", exp, err)
			}

			// IDLE sees a delivery.
			for len(existsCh) > 0 {
				<-existsCh
			}
			idle, err := c.Idle()
			if err != nil {
				t.Fatalf("idle: %v", err)
			}
			deliver("alice", "INBOX", sampleMessage)
			select {
			case <-existsCh:
			case <-time.After(10 * time.Second):
				t.Fatal("no EXISTS during IDLE")
			}
			mu.Lock()
			if exists != 2 {
				t.Errorf("EXISTS %d during IDLE, want 2", exists)
			}
			mu.Unlock()
			if err := idle.Close(); err != nil {
				t.Fatal(err)
			}
			if err := idle.Wait(); err != nil {
				t.Fatalf("idle end: %v", err)
			}

			md, err := c.Move(imap.SeqSetNum(2), "Archive").Wait()
			if err != nil {
				t.Fatalf("move: %v", err)
			}
			if md.DestUIDs.String() != "2" {
				t.Errorf("MOVE COPYUID = %+v", md)
			}
			sts, err := c.Status("Archive", &imap.StatusOptions{NumMessages: true, UIDNext: true}).Wait()
			if err != nil || *sts.NumMessages != 2 || sts.UIDNext != 3 {
				t.Errorf("status = %+v, %v", sts, err)
			}
			uidMsgs, err := c.Fetch(imap.UIDSetNum(2), &imap.FetchOptions{Flags: true}).Collect()
			if err != nil || len(uidMsgs) != 1 || uidMsgs[0].UID != 2 {
				t.Errorf("uid fetch = %+v, %v", uidMsgs, err)
			}
			if err := c.Unselect().Wait(); err != nil {
				t.Fatal(err)
			}
			if err := c.Logout().Wait(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func hasFlag(flags []imap.Flag, f imap.Flag) bool {
	for _, x := range flags {
		if strings.EqualFold(string(x), string(f)) {
			return true
		}
	}
	return false
}

// TestImplicitTLSAndLoginMechanism: imaps (TLS before the greeting) and
// AUTHENTICATE LOGIN through go-imap's client.
func TestImplicitTLSAndLoginMechanism(t *testing.T) {
	ts := startServer(t, Options{TLS: testenv.NewTestCA(t, "imapd test CA").ServerTLS(t, "localhost", "127.0.0.1"), AuthMechanisms: []string{"plain", "login", "cram-md5"}}, nil)
	// The same Server on a second listener, TLS from the start.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go ts.srv.ServeImplicitTLS(context.Background(), l)
	c, err := imapclient.DialTLS(l.Addr().String(), &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	caps := c.Caps()
	if !caps.Has("AUTH=PLAIN") || !caps.Has("AUTH=LOGIN") || caps.Has("AUTH=CRAM-MD5") || caps.Has(imap.CapStartTLS) || caps.Has(imap.CapLoginDisabled) {
		t.Errorf("capabilities over imaps: %v", caps)
	}
	if err := c.Authenticate(loginClient{"bob", "hunter2"}); err != nil {
		t.Fatalf("AUTHENTICATE LOGIN: %v", err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ts.log.String(), "Login: user=<bob>, method=LOGIN, rip=127.0.0.1, lip=127.0.0.1, mpid=") ||
		!strings.Contains(ts.log.String(), ", TLS, session=<") {
		t.Errorf("log: %s", ts.log)
	}
}

// loginClient is the client side of the LOGIN SASL mechanism.
type loginClient struct{ user, pass string }

func (l loginClient) Start() (string, []byte, error) { return "LOGIN", nil, nil }
func (l loginClient) Next(challenge []byte) ([]byte, error) {
	switch string(challenge) {
	case "Username:":
		return []byte(l.user), nil
	case "Password:":
		return []byte(l.pass), nil
	}
	return nil, fmt.Errorf("unexpected challenge %q", challenge)
}

// TestClientMailboxCommands covers the mailbox-level commands through
// go-imap's client on both stores: NAMESPACE, ID, CREATE with USE,
// SUBSCRIBE, LIST-EXTENDED with STATUS, LSUB-style listing, RENAME,
// DELETE, EXAMINE, UID EXPUNGE, UNSELECT.
func TestClientMailboxCommands(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			ts, deliver := startStoreServer(t, kind, Options{AllowPlaintextAuth: true})
			deliver("alice", "INBOX", sampleMessage)
			deliver("alice", "INBOX", transcriptFixture[2].data)
			c, err := imapclient.DialInsecure(ts.addr, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Login("alice", "secret").Wait(); err != nil {
				t.Fatal(err)
			}
			ns, err := c.Namespace().Wait()
			if err != nil || len(ns.Personal) != 1 || ns.Personal[0].Delim != '/' {
				t.Errorf("namespace = %+v, %v", ns, err)
			}
			id, err := c.ID(&imap.IDData{Name: "test"}).Wait()
			if err != nil || id.Name != "postcote" {
				t.Errorf("id = %+v, %v", id, err)
			}
			if err := c.Create("Sent Items", &imap.CreateOptions{SpecialUse: []imap.MailboxAttr{imap.MailboxAttrSent}}).Wait(); err != nil {
				t.Fatalf("create: %v", err)
			}
			if err := c.Create("Work/Projects", nil).Wait(); err != nil {
				t.Fatalf("create: %v", err)
			}
			if err := c.Subscribe("Work/Projects").Wait(); err != nil {
				t.Fatal(err)
			}
			list, err := c.List("", "*", &imap.ListOptions{ReturnStatus: &imap.StatusOptions{NumMessages: true}, ReturnSubscribed: true}).Collect()
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]*imap.ListData{}
			for _, l := range list {
				got[l.Mailbox] = l
			}
			if l := got["INBOX"]; l == nil || l.Status == nil || *l.Status.NumMessages != 2 {
				t.Errorf("INBOX in LIST-STATUS: %+v", l)
			}
			if l := got["Sent Items"]; l == nil || !hasAttr(attrStrings(l.Attrs), `\Sent`) {
				t.Errorf("Sent Items: %+v", l)
			}
			if l := got["Work/Projects"]; l == nil || !hasAttr(attrStrings(l.Attrs), `\Subscribed`) {
				t.Errorf("Work/Projects: %+v", l)
			}
			if l := got["Work"]; l == nil || !hasAttr(attrStrings(l.Attrs), `\HasChildren`) {
				t.Errorf("Work: %+v", l)
			}
			special, err := c.List("", "*", &imap.ListOptions{SelectSpecialUse: true}).Collect()
			if err != nil || len(special) != 1 || special[0].Mailbox != "Sent Items" {
				t.Errorf("LIST (SPECIAL-USE) = %+v, %v", special, err)
			}
			if err := c.Rename("Work/Projects", "Work/Done", nil).Wait(); err != nil {
				t.Fatalf("rename: %v", err)
			}
			if err := c.Delete("Work/Done").Wait(); err != nil {
				t.Fatalf("delete: %v", err)
			}
			if err := c.Delete("INBOX").Wait(); err == nil {
				t.Error("DELETE INBOX succeeded")
			}
			if err := c.Unsubscribe("Work/Projects").Wait(); err != nil {
				t.Errorf("unsubscribe: %v", err)
			}

			sel, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
			if err != nil || sel.NumMessages != 2 {
				t.Fatalf("examine: %+v, %v", sel, err)
			}
			if err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err == nil {
				t.Error("STORE in EXAMINE succeeded")
			}
			if _, err := c.Select("INBOX", nil).Wait(); err != nil {
				t.Fatal(err)
			}
			if err := c.Store(imap.SeqSetNum(1, 2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
				t.Fatal(err)
			}
			exp, err := c.UIDExpunge(imap.UIDSetNum(2)).Collect()
			if err != nil || len(exp) != 1 || exp[0] != 2 {
				t.Errorf("UID EXPUNGE = %v, %v", exp, err)
			}
			if err := c.Unselect().Wait(); err != nil {
				t.Fatal(err)
			}
			st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true, NumUnseen: true, UIDNext: true, UIDValidity: true, Size: true}).Wait()
			if err != nil || *st.NumMessages != 1 || st.UIDNext != 3 || *st.Size != int64(len(sampleMessage)) {
				t.Errorf("status = %+v, %v", st, err)
			}
			if err := c.Logout().Wait(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func attrStrings(attrs []imap.MailboxAttr) []string {
	var out []string
	for _, a := range attrs {
		out = append(out, string(a))
	}
	return out
}

// TestImplicitTLSOption: Options.ImplicitTLS makes Serve speak imaps.
func TestImplicitTLSOption(t *testing.T) {
	ts := startServer(t, Options{TLS: testenv.NewTestCA(t, "imapd test CA").ServerTLS(t, "localhost", "127.0.0.1"), ImplicitTLS: true}, nil)
	c, err := imapclient.DialTLS(ts.addr, &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("alice", "secret").Wait(); err != nil {
		t.Fatalf("login over imaps: %v", err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatal(err)
	}
}
