package authd

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"postcote/internal/sasl"
)

// ClientOptions configure a Client.
type ClientOptions struct {
	// Timeout bounds connecting plus the handshake, and one whole
	// request; 10 s, as Postfix's AUTH_TIMEOUT. A request also ends
	// with its context.
	Timeout time.Duration
	// PID is the CPID sent in the handshake. When 0, each connection
	// sends a random number instead of the process id: Dovecot refuses
	// a second connection that claims the CPID of one it still has open
	// ("BUG: Authentication client gave a PID of existing connection"),
	// and one postcote process runs one client per SMTP service. CPID
	// only matters to Dovecot's master-login handoff, which postcote
	// does not use.
	PID int
}

// Mechanism is one MECH line of the server's handshake.
type Mechanism struct {
	Name  string
	Flags []string // plaintext, anonymous, dictionary, active, forward-secrecy, mutual-auth
}

// Client talks to a Dovecot auth server (a real Dovecot's auth-client or
// Postfix-facing socket, or postcote's own Server). It keeps one
// connection, runs any number of requests on it at once, and reconnects
// when the server closed it. It implements sasl.PasswordChecker.
type Client struct {
	network, address string
	opts             ClientOptions
	nextID           atomic.Uint32

	mu     sync.Mutex
	conn   *clientConn
	closed bool
}

// ParseAddress reads smtpd_sasl_path's forms: "inet:host:port",
// "unix:/path" or a plain path.
func ParseAddress(spec string) (network, address string, err error) {
	switch {
	case strings.HasPrefix(spec, "inet:"):
		address = strings.TrimPrefix(spec, "inet:")
		if _, _, err := net.SplitHostPort(address); err != nil {
			return "", "", fmt.Errorf("auth server address %q: %w", spec, err)
		}
		return "tcp", address, nil
	case strings.HasPrefix(spec, "unix:"):
		address = strings.TrimPrefix(spec, "unix:")
	default:
		address = spec
	}
	if address == "" {
		return "", "", fmt.Errorf("auth server address %q: empty socket path", spec)
	}
	return "unix", address, nil
}

// NewClient returns a client for the server at spec (see ParseAddress).
// It connects at the first request.
func NewClient(spec string, opts ClientOptions) (*Client, error) {
	network, address, err := ParseAddress(spec)
	if err != nil {
		return nil, err
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	return &Client{network: network, address: address, opts: opts}, nil
}

// String names the server, for logs.
func (c *Client) String() string {
	if c.network == "tcp" {
		return "inet:" + c.address
	}
	return c.address
}

// Close drops the connection; requests in progress fail.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.conn != nil {
		c.conn.fail(net.ErrClosed)
		c.conn = nil
	}
	return nil
}

// Mechanisms connects when needed and returns the server's mechanisms.
func (c *Client) Mechanisms(ctx context.Context) ([]Mechanism, error) {
	cc, err := c.get(ctx)
	if err != nil {
		return nil, err
	}
	return append([]Mechanism(nil), cc.mechs...), nil
}

// CheckPassword implements sasl.PasswordChecker with PLAIN, or LOGIN when
// the server offers only that.
func (c *Client) CheckPassword(ctx context.Context, req sasl.Request) (string, error) {
	mechs, err := c.Mechanisms(ctx)
	if err != nil {
		return "", err
	}
	has := func(name string) bool {
		for _, m := range mechs {
			if strings.EqualFold(m.Name, name) {
				return true
			}
		}
		return false
	}
	switch {
	case has("PLAIN"):
		ir := []byte(req.AuthzID + "\x00" + req.User + "\x00" + req.Password)
		return c.Authenticate(ctx, "PLAIN", req, ir, func([]byte) ([]byte, error) {
			return nil, fmt.Errorf("%w: unexpected challenge to PLAIN", sasl.ErrTempFail)
		})
	case has("LOGIN"):
		step := 0
		return c.Authenticate(ctx, "LOGIN", req, nil, func([]byte) ([]byte, error) {
			step++
			switch step {
			case 1:
				return []byte(req.User), nil
			case 2:
				return []byte(req.Password), nil
			}
			return nil, fmt.Errorf("%w: LOGIN: unexpected third challenge", sasl.ErrTempFail)
		})
	}
	return "", fmt.Errorf("%w: auth server %s offers neither PLAIN nor LOGIN", sasl.ErrTempFail, c)
}

// Authenticate runs one mechanism on the server: initial is the initial
// response (nil for none) and step answers each challenge. It returns the
// user name the server reports, sasl.ErrAuthFailed when the server
// refuses, and an error wrapping sasl.ErrTempFail when the server says
// "temp", cannot be reached, or does not answer in time.
func (c *Client) Authenticate(ctx context.Context, mech string, req sasl.Request, initial []byte, step func(challenge []byte) ([]byte, error)) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	// One retry, as Postfix: the server may have closed an idle
	// connection just as the request went out.
	for attempt := 0; ; attempt++ {
		user, retry, err := c.authOnce(ctx, mech, req, initial, step)
		if retry && attempt == 0 && ctx.Err() == nil {
			continue
		}
		return user, err
	}
}

func (c *Client) authOnce(ctx context.Context, mech string, req sasl.Request, initial []byte, step func([]byte) ([]byte, error)) (user string, retry bool, err error) {
	cc, err := c.get(ctx)
	if err != nil {
		return "", false, err
	}
	id := c.nextID.Add(1)
	if id == 0 {
		id = c.nextID.Add(1)
	}
	ids := strconv.FormatUint(uint64(id), 10)
	ch := cc.register(id)
	if ch == nil {
		return "", true, fmt.Errorf("%w: auth server %s: connection lost", sasl.ErrTempFail, c)
	}
	defer cc.unregister(id)
	service := req.Service
	if service == "" {
		service = "smtp"
	}
	args := []string{ids, mech, "service=" + service, "nologin"}
	if ip, port := hostPort(req.Local); ip != "" {
		args = append(args, "lip="+ip, "lport="+port)
	}
	if ip, port := hostPort(req.Remote); ip != "" {
		args = append(args, "rip="+ip, "rport="+port)
	}
	if req.Secured {
		args = append(args, "secured")
	}
	if initial != nil {
		args = append(args, "resp="+base64.StdEncoding.EncodeToString(initial))
	}
	line := FormatLine("AUTH", args...)
	if len(line) > MaxLineLength {
		return "", false, fmt.Errorf("%w: credentials too long for the auth protocol", sasl.ErrAuthFailed)
	}
	if err := cc.write(ctx, line); err != nil {
		c.drop(cc, err)
		return "", true, fmt.Errorf("%w: auth server %s: %v", sasl.ErrTempFail, c, err)
	}
	answered := false
	for {
		var l Line
		var ok bool
		select {
		case l, ok = <-ch:
		case <-ctx.Done():
			return "", false, fmt.Errorf("%w: auth server %s: no answer: %v", sasl.ErrTempFail, c, ctx.Err())
		}
		if !ok {
			return "", !answered, fmt.Errorf("%w: auth server %s: connection lost: %v", sasl.ErrTempFail, c, cc.error())
		}
		answered = true
		params := ParseParams(l.Args[1:])
		switch l.Command {
		case "OK":
			if final, ok := params.Get("resp"); ok && final != "" {
				// The mechanism's last word (SCRAM's server
				// signature, RFC 5802 3) travels on the OK line;
				// the protocol client gets it as one more
				// challenge (RFC 4422 5: additional data).
				data, err := base64.StdEncoding.DecodeString(final)
				if err != nil {
					return "", false, fmt.Errorf("%w: auth server %s: bad base64 in OK resp", sasl.ErrTempFail, c)
				}
				if _, err := step(data); err != nil {
					return "", false, err
				}
			}
			u, _ := params.Get("user")
			if u == "" {
				u = req.User
			}
			return u, false, nil
		case "FAIL":
			reason, _ := params.Get("reason")
			if params.Has("temp") {
				return "", false, fmt.Errorf("%w: auth server %s: %s", sasl.ErrTempFail, c, orDefault(reason, "temporary failure"))
			}
			if reason != "" {
				return "", false, fmt.Errorf("%w: %s", sasl.ErrAuthFailed, reason)
			}
			return "", false, sasl.ErrAuthFailed
		case "CONT":
			data := ""
			if len(l.Args) > 1 {
				data = l.Args[1]
			}
			chal, err := base64.StdEncoding.DecodeString(data)
			if err != nil {
				c.drop(cc, err)
				return "", false, fmt.Errorf("%w: auth server %s: bad base64 in CONT", sasl.ErrTempFail, c)
			}
			resp, err := step(chal)
			if err != nil {
				// Tell the server to forget the request (1.3+;
				// older servers time it out).
				cc.write(ctx, FormatLine("CANCEL", ids))
				return "", false, err
			}
			if err := cc.write(ctx, FormatLine("CONT", ids, base64.StdEncoding.EncodeToString(resp))); err != nil {
				c.drop(cc, err)
				return "", false, fmt.Errorf("%w: auth server %s: %v", sasl.ErrTempFail, c, err)
			}
		}
	}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func hostPort(a net.Addr) (ip, port string) {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.IP.String(), strconv.Itoa(a.Port)
	case nil:
		return "", ""
	}
	h, p, err := net.SplitHostPort(a.String())
	if err != nil || net.ParseIP(h) == nil {
		return "", ""
	}
	return h, p
}

// get returns the live connection, connecting and handshaking when there
// is none.
func (c *Client) get(ctx context.Context) (*clientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("%w: auth client closed", sasl.ErrTempFail)
	}
	if c.conn != nil && c.conn.error() == nil {
		return c.conn, nil
	}
	c.conn = nil
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, c.network, c.address)
	if err != nil {
		return nil, fmt.Errorf("%w: connect to auth server %s: %v", sasl.ErrTempFail, c, err)
	}
	pid := c.opts.PID
	if pid == 0 {
		var b [4]byte
		rand.Read(b[:])
		pid = int(binary.BigEndian.Uint32(b[:])>>1) | 1
	}
	cc, err := handshakeClient(ctx, nc, pid)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("%w: auth server %s: handshake: %v", sasl.ErrTempFail, c, err)
	}
	c.conn = cc
	return cc, nil
}

func (c *Client) drop(cc *clientConn, err error) {
	cc.fail(err)
	c.mu.Lock()
	if c.conn == cc {
		c.conn = nil
	}
	c.mu.Unlock()
}

// clientConn is one connection with its reader goroutine, which routes
// reply lines to the requests by id.
type clientConn struct {
	nc    net.Conn
	r     *bufio.Reader
	mechs []Mechanism
	wmu   sync.Mutex

	mu      sync.Mutex
	pending map[uint32]chan Line
	err     error
}

func handshakeClient(ctx context.Context, nc net.Conn, pid int) (*clientConn, error) {
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	cc := &clientConn{nc: nc, r: bufio.NewReaderSize(nc, MaxLineLength), pending: map[uint32]chan Line{}}
	if _, err := io.WriteString(nc, FormatLine("VERSION", strconv.Itoa(MajorVersion), strconv.Itoa(MinorVersion))+FormatLine("CPID", strconv.Itoa(pid))); err != nil {
		return nil, err
	}
	gotVersion := false
	for {
		s, err := readLine(cc.r)
		if err != nil {
			return nil, err
		}
		l, err := ParseLine(s)
		if err != nil {
			return nil, err
		}
		if !gotVersion {
			if _, _, err := parseVersion(l); err != nil {
				return nil, err
			}
			gotVersion = true
			continue
		}
		switch l.Command {
		case "MECH":
			if len(l.Args) < 1 || l.Args[0] == "" {
				return nil, fmt.Errorf("%w: MECH without a name", ErrProtocol)
			}
			cc.mechs = append(cc.mechs, Mechanism{Name: strings.ToUpper(l.Args[0]), Flags: l.Args[1:]})
		case "DONE":
			nc.SetDeadline(time.Time{})
			go cc.readLoop()
			return cc, nil
		default:
			// SPID, CUID, COOKIE and anything newer: only a login
			// process's master needs them.
		}
	}
}

func (cc *clientConn) readLoop() {
	for {
		s, err := readLine(cc.r)
		if err != nil {
			cc.fail(err)
			return
		}
		l, err := ParseLine(s)
		if err != nil || len(l.Args) < 1 {
			cc.fail(fmt.Errorf("%w: bad reply line", ErrProtocol))
			return
		}
		id, err := parseID(l.Args[0])
		if err != nil {
			cc.fail(err)
			return
		}
		// Sent under the lock: fail closes the channels.
		cc.mu.Lock()
		ch := cc.pending[id]
		full := false
		if ch != nil {
			select {
			case ch <- l:
			default:
				full = true
			}
		}
		cc.mu.Unlock()
		if full {
			// The request has an unread reply: the server sent more
			// than one line for one step.
			cc.fail(fmt.Errorf("%w: unexpected extra reply to request %d", ErrProtocol, id))
			return
		}
	}
}

func (cc *clientConn) register(id uint32) chan Line {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.err != nil {
		return nil
	}
	ch := make(chan Line, 1)
	cc.pending[id] = ch
	return ch
}

func (cc *clientConn) unregister(id uint32) {
	cc.mu.Lock()
	if cc.err == nil {
		delete(cc.pending, id)
	}
	cc.mu.Unlock()
}

// fail marks the connection broken and wakes every request on it.
func (cc *clientConn) fail(err error) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.err != nil {
		return
	}
	cc.err = err
	cc.nc.Close()
	for _, ch := range cc.pending {
		close(ch)
	}
	cc.pending = nil
}

func (cc *clientConn) error() error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.err
}

func (cc *clientConn) write(ctx context.Context, line string) error {
	if len(line) > MaxLineLength {
		return fmt.Errorf("%w: request line longer than %d bytes", ErrProtocol, MaxLineLength)
	}
	cc.wmu.Lock()
	defer cc.wmu.Unlock()
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(30 * time.Second)
	}
	cc.nc.SetWriteDeadline(dl)
	_, err := io.WriteString(cc.nc, line)
	return err
}

var _ sasl.PasswordChecker = (*Client)(nil)
