package sqlx

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestParseConnect(t *testing.T) {
	tests := []struct {
		driver  Driver
		in      string
		want    string // fmt of selected fields
		wantErr string
	}{
		{MySQL, "host=mariadb_srv.example.com dbname=dovecotDB user=dovecot password=pw ssl_ca=/etc/pki/tls/certs/ca.crt",
			"[mariadb_srv.example.com] 0 dovecot pw dovecotDB ca=/etc/pki/tls/certs/ca.crt verify=true", ""},
		{MySQL, "host=db1 host=db2 port=3307 user=u password='a b\\'c' dbname=d ssl_verify_server_cert=no ssl_ca=/x",
			"[db1 db2] 3307 u a b'c d ca=/x verify=false", ""},
		{MySQL, "host=/run/mysqld/mysqld.sock user=u dbname=d", "[unix:/run/mysqld/mysqld.sock] 0 u  d ca= verify=false", ""},
		{PgSQL, "host=localhost dbname=mails user=dovecot password=secret sslmode=require", "[localhost] 0 dovecot secret mails ca= verify=false", ""},
		{MySQL, "host=x bogus=1", "", "unknown mysql setting"},
		{PgSQL, "host=x bogus=1", "", "unknown pgsql setting"},
		{MySQL, "host=x port=99999", "", "invalid port"},
		{MySQL, "host", "", "not key=value"},
		{MySQL, "password='abc", "", "unterminated quote"},
		{MySQL, "option_file=/etc/my.cnf", "", "libmysqlclient"},
	}
	for _, tt := range tests {
		c, err := ParseConnect(tt.driver, tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		got := fmt.Sprintf("%v %d %s %s %s ca=%s verify=%v", c.Hosts, c.Port, c.User, c.Password, c.DBName, c.SSLCA, c.SSLVerifyServerCert)
		if got != tt.want {
			t.Errorf("%q:\n got %s\nwant %s", tt.in, got, tt.want)
		}
		if strings.Contains(c.String(), c.Password) && c.Password != "" {
			t.Errorf("String() shows the password: %s", c)
		}
	}
	c, err := ParseConnect(MySQL, "host=h connect_timeout=3 read_timeout=7")
	if err != nil || c.ConnectTimeout != 3*time.Second || c.QueryTimeout != 7*time.Second {
		t.Errorf("timeouts: %+v %v", c, err)
	}
	c, err = ParseConnect(SQLite, " /var/lib/dovecot/users.db ")
	if err != nil || c.Path != "/var/lib/dovecot/users.db" {
		t.Errorf("sqlite: %+v %v", c, err)
	}
}

func TestFromPostfix(t *testing.T) {
	c, err := FromPostfix(MySQL, map[string]string{
		"hosts": "unix:/var/run/mysqld/mysqld.sock inet:db1:3307, db2 [::1]:3306", "user": "postfix", "password": "pw", "dbname": "postfix",
		"tls_cafile": "/ca.pem", "tls_verify_cert": "yes",
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(c.Hosts); got != "[unix:/var/run/mysqld/mysqld.sock db1:3307 db2 [::1]:3306]" {
		t.Errorf("hosts: %s", got)
	}
	if c.User != "postfix" || c.DBName != "postfix" || c.SSLCA != "/ca.pem" || !c.SSLVerifyServerCert {
		t.Errorf("%+v", c)
	}
	for _, bad := range []string{"inet:db:0", "unix:", "db:x"} {
		if _, err := FromPostfix(PgSQL, map[string]string{"hosts": bad}); err == nil {
			t.Errorf("hosts %q accepted", bad)
		}
	}
	if c, err := FromPostfix(SQLite, map[string]string{"dbpath": "/x.db"}); err != nil || c.Path != "/x.db" {
		t.Errorf("sqlite: %v %v", c, err)
	}
}
