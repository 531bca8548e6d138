package qctl

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"postcote/internal/maillog"
	"postcote/internal/queue"
)

// Queue is what the control socket needs of the queue (queue.Queue has it).
type Queue interface {
	List() []queue.Summary
	Hold(queue.ID) (int, error)
	Release(queue.ID) (int, error)
	Delete(queue.ID) (int, error)
	Requeue(queue.ID) (int, error)
	Flush()
	FlushID(queue.ID) bool
}

// Verbs of the requests that change messages.
const (
	Hold    = "HOLD"
	Release = "RELEASE"
	Delete  = "DELETE"
	Requeue = "REQUEUE"
)

const (
	maxLine     = 1024
	idleTimeout = 30 * time.Second
)

// ErrNotRunning: no server answers on the socket.
var ErrNotRunning = errors.New("mail system is down")

// ErrInvalidID: the argument is neither a queue ID nor ALL.
var ErrInvalidID = errors.New("invalid mail queue id")

// queueStates maps a postsuper queue name to the states it covers.
func queueStates(name string) ([]queue.State, bool) {
	switch name {
	case "hold":
		return []queue.State{queue.StateHold}, true
	case "deferred":
		return []queue.State{queue.StateDeferred}, true
	case "active", "incoming":
		return []queue.State{queue.StateActive}, true
	}
	return nil, false
}

// Apply runs HOLD, RELEASE, DELETE or REQUEUE on id (a queue ID or "ALL") for the
// messages in the named queues (all when none is named) and returns the
// IDs of the messages it changed.
func Apply(q Queue, verb, id string, queues []string) ([]queue.ID, error) {
	var op func(queue.ID) (int, error)
	switch verb {
	case Hold:
		op = q.Hold
	case Release:
		op = q.Release
	case Delete:
		op = q.Delete
	case Requeue:
		op = q.Requeue
	default:
		return nil, fmt.Errorf("unknown request %q", verb)
	}
	if id != "ALL" && !queue.ValidID(id) {
		return nil, fmt.Errorf("%w: %s", ErrInvalidID, id)
	}
	want := map[queue.State]bool{}
	for _, name := range queues {
		st, ok := queueStates(name)
		if !ok {
			return nil, fmt.Errorf("unknown queue name: %s", name)
		}
		for _, s := range st {
			want[s] = true
		}
	}
	var changed []queue.ID
	for _, m := range q.List() {
		if (id != "ALL" && string(m.ID) != id) || (len(want) > 0 && !want[m.State]) {
			continue
		}
		n, err := op(m.ID)
		if errors.Is(err, queue.ErrNotFound) {
			continue // gone meanwhile (delivered)
		}
		if err != nil {
			return changed, err
		}
		if n > 0 {
			changed = append(changed, m.ID)
		}
	}
	return changed, nil
}

// Server answers requests on the control socket.
type Server struct {
	q    Queue
	log  *maillog.Logger
	ln   *net.UnixListener
	path string
	uid  int // the server's own user, allowed to change messages
	wg   sync.WaitGroup
	mu   sync.Mutex
	conn map[net.Conn]bool
	done bool
}

// Listen binds the socket at path (removing a dead server's socket there:
// the caller owns the queue, so no other server can be using it).
func Listen(path string, q Queue, log *maillog.Logger) (*Server, error) {
	if log == nil {
		log = maillog.Discard()
	}
	if err := os.MkdirAll(dirOf(path), 0o755); err != nil {
		return nil, fmt.Errorf("qctl: %w", err)
	}
	os.Remove(path)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("qctl: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o666); err != nil {
		ln.Close()
		return nil, fmt.Errorf("qctl: %w", err)
	}
	return &Server{q: q, log: log, ln: ln, path: path, uid: os.Geteuid(), conn: map[net.Conn]bool{}}, nil
}

func dirOf(path string) string {
	if i := strings.LastIndexByte(path, '/'); i > 0 {
		return path[:i]
	}
	return "."
}

// Serve accepts connections until ctx is done or Close is called, then
// closes the open connections and waits for their handlers.
func (s *Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			s.Close()
			s.wg.Wait()
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("qctl: accept: %w", err)
		}
		s.mu.Lock()
		if s.done {
			s.mu.Unlock()
			c.Close()
			continue
		}
		s.conn[c] = true
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.handle(c)
			s.mu.Lock()
			delete(s.conn, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

// Close stops the listener and ends every open connection.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return nil
	}
	s.done = true
	for c := range s.conn {
		c.Close()
	}
	return s.ln.Close()
}

func (s *Server) handle(c *net.UnixConn) {
	uid, credErr := peerUID(c)
	privileged := credErr == nil && (uid == 0 || uid == s.uid)
	r := bufio.NewReaderSize(c, maxLine+2)
	for {
		c.SetDeadline(time.Now().Add(idleTimeout))
		line, err := r.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				c.Write([]byte("ERR line too long\n"))
			}
			return
		}
		reply := s.answer(strings.TrimRight(string(line), "\r\n"), privileged, uid)
		if _, err := c.Write([]byte(reply + "\n")); err != nil {
			return
		}
	}
}

func (s *Server) answer(line string, privileged bool, uid int) string {
	f := strings.Fields(line)
	if len(f) == 0 {
		return "ERR empty request"
	}
	switch verb := strings.ToUpper(f[0]); verb {
	case "LIST":
		b, err := json.Marshal(s.q.List())
		if err != nil {
			return "ERR " + err.Error()
		}
		return "OK " + string(b)
	case "FLUSH":
		switch len(f) {
		case 1:
			s.q.Flush()
		case 2:
			// postqueue -i: an ID not queued is no error, as with
			// Postfix's flush service.
			if !queue.ValidID(f[1]) {
				return "ERR " + ErrInvalidID.Error() + ": " + oneLine(f[1])
			}
			s.q.FlushID(queue.ID(f[1]))
		default:
			return "ERR usage: FLUSH [queue ID]"
		}
		return "OK"
	case Hold, Release, Delete, Requeue:
		if !privileged {
			s.log.Warnf("postsuper", "uid=%d: %s refused: permission denied", uid, verb)
			return "ERR permission denied"
		}
		if len(f) < 2 {
			return "ERR missing queue ID"
		}
		ids, err := Apply(s.q, verb, f[1], f[2:])
		if err != nil {
			return "ERR " + oneLine(err.Error())
		}
		var b strings.Builder
		b.WriteString("OK")
		for _, id := range ids {
			b.WriteString(" " + string(id))
		}
		return b.String()
	default:
		return "ERR unknown request " + oneLine(verb)
	}
}

func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 32 || r == 127 {
			return ' '
		}
		return r
	}, s)
}

// Client talks to a running server.
type Client struct {
	c *net.UnixConn
	r *bufio.Reader
}

// Dial connects to the socket at path; ErrNotRunning when nothing listens
// there.
func Dial(ctx context.Context, path string) (*Client, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("%w (%s: %v)", ErrNotRunning, path, err)
		}
		return nil, fmt.Errorf("qctl: %w", err)
	}
	return &Client{c: c.(*net.UnixConn), r: bufio.NewReaderSize(c, 64<<10)}, nil
}

// Close ends the connection.
func (c *Client) Close() error { return c.c.Close() }

// do sends one request and returns the text after "OK".
func (c *Client) do(req string) (string, error) {
	if strings.ContainsAny(req, "\r\n") || len(req) > maxLine {
		return "", errors.New("qctl: bad request")
	}
	c.c.SetDeadline(time.Now().Add(time.Minute))
	if _, err := c.c.Write([]byte(req + "\n")); err != nil {
		return "", fmt.Errorf("qctl: %w", err)
	}
	line, err := c.r.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("qctl: read reply: %w", err)
	}
	line = strings.TrimSuffix(line, "\n")
	switch {
	case line == "OK":
		return "", nil
	case strings.HasPrefix(line, "OK "):
		return line[3:], nil
	case strings.HasPrefix(line, "ERR "):
		msg := line[4:]
		if strings.HasPrefix(msg, ErrInvalidID.Error()) {
			return "", fmt.Errorf("%w%s", ErrInvalidID, strings.TrimPrefix(msg, ErrInvalidID.Error()))
		}
		return "", errors.New(msg)
	}
	return "", fmt.Errorf("qctl: bad reply %q", line)
}

// List returns the queue's messages, oldest first.
func (c *Client) List() ([]queue.Summary, error) {
	s, err := c.do("LIST")
	if err != nil {
		return nil, err
	}
	var list []queue.Summary
	if err := json.Unmarshal([]byte(s), &list); err != nil {
		return nil, fmt.Errorf("qctl: bad LIST reply: %w", err)
	}
	return list, nil
}

// Flush makes every deferred message due now.
func (c *Client) Flush() error {
	_, err := c.do("FLUSH")
	return err
}

// FlushID asks for the delivery of one message now (postqueue -i).
func (c *Client) FlushID(id string) error {
	if !queue.ValidID(id) {
		return fmt.Errorf("%w: %q", ErrInvalidID, id)
	}
	_, err := c.do("FLUSH " + id)
	return err
}

// Apply sends HOLD, RELEASE, DELETE or REQUEUE and returns the IDs changed.
func (c *Client) Apply(verb, id string, queues []string) ([]queue.ID, error) {
	for _, w := range append([]string{id}, queues...) {
		if w == "" || strings.ContainsAny(w, " \t") {
			return nil, fmt.Errorf("%w: %q", ErrInvalidID, w)
		}
	}
	s, err := c.do(strings.Join(append([]string{verb, id}, queues...), " "))
	if err != nil {
		return nil, err
	}
	var ids []queue.ID
	for _, f := range strings.Fields(s) {
		ids = append(ids, queue.ID(f))
	}
	return ids, nil
}
