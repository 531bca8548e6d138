package server

import (
	"testing"

	"postcote/internal/config/postfixconf"
	"postcote/internal/pickup"
)

// TestSite: pickup's cleanup gets myhostname, myorigin and
// header_from_format from main.cf, standard being Postfix's default.
func TestSite(t *testing.T) {
	tests := []struct {
		main    string
		want    pickup.Site
		wantErr bool
	}{
		{"myhostname = mx.example.com\nmyorigin = example.com\n",
			pickup.Site{MyHostname: "mx.example.com", MyOrigin: "example.com", HeaderFrom: pickup.FromStandard}, false},
		{"myhostname = mx.example.com\nheader_from_format = obsolete\n",
			pickup.Site{MyHostname: "mx.example.com", MyOrigin: "mx.example.com", HeaderFrom: pickup.FromObsolete}, false},
		{"myhostname = mx.example.com\nheader_from_format = comment\n", pickup.Site{}, true},
	}
	for _, tt := range tests {
		m, err := postfixconf.ParseMainBytes("main.cf", []byte(tt.main))
		if err != nil {
			if tt.wantErr {
				continue // refused when main.cf is read: good too
			}
			t.Fatal(err)
		}
		got, err := Site(m)
		if (err != nil) != tt.wantErr {
			t.Errorf("%q: err = %v, want error %v", tt.main, err, tt.wantErr)
			continue
		}
		if err == nil && got != tt.want {
			t.Errorf("%q: Site = %+v, want %+v", tt.main, got, tt.want)
		}
	}
}
