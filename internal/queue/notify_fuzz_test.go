package queue

import (
	"strings"
	"testing"
)

// FuzzParseNotifyClasses: any list parses or is refused with an error
// naming the class; a parsed set holds only known classes.
func FuzzParseNotifyClasses(f *testing.F) {
	f.Add("resource, software")
	f.Add("bounce,2bounce,delay,policy,protocol,data")
	f.Add("BOUNCE, nonsense")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseNotifyClasses(strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }))
		if err != nil && c != 0 {
			t.Fatalf("%q: error %v with classes %v", s, err, c)
		}
		if c&^(NotifyBounce|Notify2Bounce|NotifyDelay|NotifyResource|NotifySoftware) != 0 {
			t.Fatalf("%q: unknown bits %b", s, c)
		}
	})
}
