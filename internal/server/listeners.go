package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"postcote/internal/netx"
	"sync"
	"time"
)

// Endpoint is one address a service listens on: TCP "host:port" or a unix
// socket path.
type Endpoint struct {
	Network string // "tcp" or "unix"
	Address string
	Mode    os.FileMode // unix sockets: permission bits (Dovecot's mode = 0660)
}

func (e Endpoint) String() string {
	if e.Network == "unix" {
		return "unix:" + e.Address
	}
	return e.Address
}

// Listeners owns the process's sockets. They outlive configuration
// generations: on SIGHUP a new generation takes over the sockets whose
// address it keeps, so a reload never refuses a connection, and the
// sockets it drops are closed.
type Listeners struct {
	mu   sync.Mutex
	open map[Endpoint]*muxListener
}

// NewListeners returns an empty set.
func NewListeners() *Listeners { return &Listeners{open: map[Endpoint]*muxListener{}} }

// Listen returns a listener for e that a service's Serve can use, opening
// the socket when no earlier generation had it. The listener's Close only
// detaches that service; the socket stays open until Retain drops it.
func (ls *Listeners) Listen(e Endpoint) (net.Listener, error) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	m := ls.open[e]
	if m == nil {
		ln, err := listen(e)
		if err != nil {
			return nil, err
		}
		m = &muxListener{ln: ln}
		ls.open[e] = m
		go m.acceptLoop()
	}
	v := &viewListener{addr: m.ln.Addr(), ch: make(chan net.Conn), done: make(chan struct{})}
	m.setTarget(v)
	return v, nil
}

// Retain closes every socket not in keep. The server calls it after a new
// generation has taken the sockets it wants.
func (ls *Listeners) Retain(keep map[Endpoint]bool) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for e, m := range ls.open {
		if !keep[e] {
			m.close()
			delete(ls.open, e)
		}
	}
}

// CloseAll closes every socket.
func (ls *Listeners) CloseAll() { ls.Retain(nil) }

func listen(e Endpoint) (net.Listener, error) {
	var lc net.ListenConfig
	if e.Network == "unix" {
		// A stale socket from a crashed run would make bind fail; only a
		// socket nobody answers on is removed (never another program's live
		// socket, such as a running Dovecot's), never another kind of file.
		if st, err := os.Lstat(e.Address); err == nil && st.Mode()&os.ModeSocket != 0 {
			if c, err := net.DialTimeout("unix", e.Address, time.Second); err == nil {
				c.Close()
				return nil, fmt.Errorf("listen on %s: another process is serving this socket; stop it or change the path", e)
			}
			os.Remove(e.Address)
		}
		// Postfix's queue_directory/private and Dovecot's base_dir may not
		// exist yet.
		if err := os.MkdirAll(filepath.Dir(e.Address), 0o755); err != nil {
			return nil, fmt.Errorf("listen on %s: %w", e, err)
		}
		ln, err := lc.Listen(context.Background(), "unix", e.Address)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", e, err)
		}
		mode := e.Mode
		if mode == 0 {
			mode = 0o666
		}
		if err := os.Chmod(e.Address, mode); err != nil {
			ln.Close()
			return nil, fmt.Errorf("chmod %s: %w", e.Address, err)
		}
		return ln, nil
	}
	ln, err := lc.Listen(context.Background(), e.Network, e.Address)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w (is another server using the port? change it in the configuration)", e, err)
	}
	return ln, nil
}

// muxListener accepts on a real socket and hands each connection to the
// current generation's viewListener.
type muxListener struct {
	ln     net.Listener
	mu     sync.Mutex
	target *viewListener
}

func (m *muxListener) setTarget(v *viewListener) {
	m.mu.Lock()
	m.target = v
	m.mu.Unlock()
}

func (m *muxListener) close() { m.ln.Close() }

func (m *muxListener) acceptLoop() {
	var backoff netx.AcceptBackoff
	for {
		c, err := m.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait and try again.
			backoff.Wait(context.Background())
			continue
		}
		backoff.Reset()
		m.mu.Lock()
		v := m.target
		m.mu.Unlock()
		if v == nil || !v.deliver(c) {
			c.Close()
		}
	}
}

// viewListener is what one service of one generation sees.
type viewListener struct {
	addr net.Addr
	ch   chan net.Conn
	once sync.Once
	done chan struct{}
}

func (v *viewListener) deliver(c net.Conn) bool {
	select {
	case v.ch <- c:
		return true
	case <-v.done:
		return false
	}
}

func (v *viewListener) Accept() (net.Conn, error) {
	select {
	case c := <-v.ch:
		return c, nil
	case <-v.done:
		return nil, net.ErrClosed
	}
}

func (v *viewListener) Close() error {
	v.once.Do(func() { close(v.done) })
	return nil
}

func (v *viewListener) Addr() net.Addr { return v.addr }
