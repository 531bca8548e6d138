package sqlx_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"postcote/internal/sqlx"
)

// TestSilentServer points each driver at a listener that accepts and
// never answers: the query must give up within its deadline with a
// temporary error, not hang.
func TestSilentServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	port := ln.Addr().(*net.TCPAddr).Port
	for _, d := range []sqlx.Driver{sqlx.MySQL, sqlx.PgSQL} {
		t.Run(string(d), func(t *testing.T) {
			cfg := sqlx.Config{Driver: d, Hosts: []sqlx.Host{{Name: "127.0.0.1", Port: port}},
				User: "u", Password: "hunter2-secret", DBName: "x",
				ConnectTimeout: time.Second, QueryTimeout: 500 * time.Millisecond,
				PgParams: map[string]string{"sslmode": "disable"}}
			db, err := sqlx.Open(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			st, _ := sqlx.Build(d, "SELECT 1", plainExpand(""))
			start := time.Now()
			_, _, err = db.Query(context.Background(), st, 0)
			if !errors.Is(err, sqlx.ErrUnavailable) {
				t.Errorf("silent server: %v, want ErrUnavailable", err)
			}
			if el := time.Since(start); el > 5*time.Second {
				t.Errorf("took %v", el)
			}
		})
	}
}

// TestRefusedHosts: with two hosts, the first refusing connections, the
// query fails over; with none answering, the error is temporary and
// names no password.
func TestRefusedHosts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // now refusing
	cfg, err := sqlx.ParseConnect(sqlx.MySQL, "host=127.0.0.1 host=localhost user=u password=hunter2-secret dbname=d connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Port = port
	db, err := sqlx.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, _ := sqlx.Build(sqlx.MySQL, "SELECT 1", plainExpand(""))
	_, _, err = db.Query(context.Background(), st, 0)
	if !errors.Is(err, sqlx.ErrUnavailable) {
		t.Fatalf("refused: %v", err)
	}
	if s := err.Error(); len(s) == 0 || strings.Contains(s, "hunter2") {
		t.Errorf("error text: %q", s)
	}
}
