package server

import (
	"slices"
	"testing"

	"postcote/internal/config/postfixconf"
	"postcote/internal/smtpd"
)

// `postcote check` and smtpd must agree on which restrictions exist: a
// name smtpd runs must not be flagged "not supported yet" by the checker,
// and a name the checker calls implemented must be one smtpd compiles.
func TestRestrictionTablesAgree(t *testing.T) {
	runs := smtpd.RestrictionNames()
	for _, n := range runs {
		known, impl := postfixconf.RestrictionStatus(n)
		if !known || !impl {
			t.Errorf("smtpd implements %q but the configuration checker says known=%v implemented=%v", n, known, impl)
		}
	}
	for _, n := range postfixconf.ImplementedRestrictions() {
		if !slices.Contains(runs, n) {
			t.Errorf("the configuration checker says %q is implemented but smtpd does not run it", n)
		}
	}
}
