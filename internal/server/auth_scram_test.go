package server

import (
	"context"
	"slices"
	"strings"
	"testing"

	"postcote/internal/sasl"
	"postcote/internal/smtpd"
	"postcote/internal/userdb"
)

// TestAuthMechanisms: auth_mechanisms keeps the order, upper-cases, drops
// duplicates and what internal/sasl does not implement.
func TestAuthMechanisms(t *testing.T) {
	tests := []struct{ conf, want string }{
		{"", "PLAIN"}, // Dovecot's default
		{"auth_mechanisms = plain login\n", "PLAIN LOGIN"},
		{"auth_mechanisms = plain scram-sha-256 cram-md5 SCRAM-SHA-1 plain\n", "PLAIN SCRAM-SHA-256 SCRAM-SHA-1"},
		{"auth_mechanisms = gssapi\n", ""},
	}
	for _, tt := range tests {
		if got := strings.Join(authMechanisms(parseDovecot(t, tt.conf)), " "); got != tt.want {
			t.Errorf("%q: %q, want %q", tt.conf, got, tt.want)
		}
	}
}

// The in-process users of every protocol can run SCRAM.
var _ sasl.CredentialsLookup = (*mailboxUsers)(nil)

// plainOnly is a checker that can only verify passwords (like a client of
// a remote auth server).
type plainOnly struct{}

func (plainOnly) CheckPassword(context.Context, sasl.Request) (string, error) {
	return "", sasl.ErrAuthFailed
}

// TestWithMechanisms: smtpd's in-process checker names dovecot.conf's
// mechanisms and keeps SCRAM only when it can run it.
func TestWithMechanisms(t *testing.T) {
	mechs := []string{"PLAIN", "SCRAM-SHA-256"}
	c := withMechanisms(userdb.NewChecker(nil, nil, userdb.DefaultCheckerOptions()), mechs)
	ml, ok := c.(smtpd.MechanismLister)
	if !ok || !slices.Equal(ml.SASLMechanisms(), mechs) {
		t.Fatalf("userdb checker: %T", c)
	}
	if sasl.NewServer("SCRAM-SHA-256", c, sasl.Request{}) == nil {
		t.Error("the wrapper hides CredentialsLookup")
	}
	c = withMechanisms(plainOnly{}, mechs)
	if ml := c.(smtpd.MechanismLister); !slices.Equal(ml.SASLMechanisms(), []string{"PLAIN"}) {
		t.Errorf("plain-only checker offers %v", ml.SASLMechanisms())
	}
	if !slices.Equal(mechs, []string{"PLAIN", "SCRAM-SHA-256"}) {
		t.Errorf("caller's slice changed: %v", mechs)
	}
}
