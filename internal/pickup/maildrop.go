package pickup

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Submission is the envelope part of a maildrop file: what sendmail was
// told on its command line.
type Submission struct {
	Sender     string // as given with -f; meaningful when SenderSet
	SenderSet  bool   // false: the submitting user @ myorigin
	FullName   string // -F or $NAME
	Recipients []string
	Extract    bool   // -t
	Notify     string // -N
	EnvID      string // -V
	Ret        string // -R
	BodyType   string // -B
}

const (
	magic         = "POSTCOTE-MAILDROP 1"
	maxHeaderSize = 1 << 20
	tempPrefix    = ".t."
)

// ErrCorrupt marks a maildrop file pickup cannot read.
var ErrCorrupt = errors.New("malformed maildrop file")

// DirMode is the maildrop folder's mode: world-writable, sticky, not
// listable by others (see the package comment).
const DirMode = os.ModeSticky | 0o733

// Validate checks the values that go into a maildrop file's header.
func (s *Submission) Validate() error {
	check := func(what, v string) error {
		if strings.ContainsAny(v, "\r\n\x00") {
			return fmt.Errorf("%s contains a control character", what)
		}
		if len(v) > 4096 {
			return fmt.Errorf("%s too long", what)
		}
		return nil
	}
	for _, f := range []struct{ what, v string }{{"sender", s.Sender}, {"full name", s.FullName},
		{"notify", s.Notify}, {"envid", s.EnvID}, {"ret", s.Ret}, {"body type", s.BodyType}} {
		if err := check(f.what, f.v); err != nil {
			return err
		}
	}
	for _, r := range s.Recipients {
		if err := check("recipient", r); err != nil {
			return err
		}
		if r == "" {
			return errors.New("empty recipient")
		}
	}
	return nil
}

// encodeHeader returns the file's header, ending with the empty line.
func (s *Submission) encodeHeader() []byte {
	var b bytes.Buffer
	b.WriteString(magic + "\n")
	if s.SenderSet {
		b.WriteString("S " + s.Sender + "\n")
	}
	item := func(k, v string) {
		if v != "" {
			b.WriteString(k + " " + v + "\n")
		}
	}
	item("F", s.FullName)
	for _, r := range s.Recipients {
		item("R", r)
	}
	if s.Extract {
		b.WriteString("T\n")
	}
	item("N", s.Notify)
	item("V", s.EnvID)
	item("X", s.Ret)
	item("B", s.BodyType)
	b.WriteString("\n")
	return b.Bytes()
}

// ErrTooBig is returned by Write when the message exceeds the limit.
var ErrTooBig = errors.New("message file too big")

// Write stores a submission in the maildrop folder dir: a temporary file,
// fsynced, renamed to its final name, the folder fsynced. It returns the
// final name only once all of that succeeded; on any error nothing is
// left behind. limit bounds the message size (0: no limit).
func Write(dir string, s *Submission, msg io.Reader, limit int64) (string, error) {
	if err := s.Validate(); err != nil {
		return "", fmt.Errorf("maildrop: %w", err)
	}
	name, err := newName()
	if err != nil {
		return "", err
	}
	tmp := filepath.Join(dir, tempPrefix+name)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("maildrop: create file: %w", err)
	}
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(tmp)
		return "", err
	}
	w := bufio.NewWriterSize(f, 64<<10)
	if _, err := w.Write(s.encodeHeader()); err != nil {
		return fail(fmt.Errorf("maildrop: write %s: %w", tmp, err))
	}
	src := msg
	if limit > 0 {
		src = io.LimitReader(msg, limit+1)
	}
	n, err := io.Copy(w, src)
	if err != nil {
		return fail(fmt.Errorf("maildrop: %w", err))
	}
	if limit > 0 && n > limit {
		return fail(ErrTooBig)
	}
	if err := w.Flush(); err != nil {
		return fail(fmt.Errorf("maildrop: write %s: %w", tmp, err))
	}
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("maildrop: fsync %s: %w", tmp, err))
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return fail(fmt.Errorf("maildrop: rename: %w", err))
	}
	err = syncDir(dir)
	if errors.Is(err, os.ErrPermission) {
		// A user other than root cannot open the folder (mode 1733) to
		// fsync it; flushing the file system through the file's own
		// descriptor makes the new directory entry durable as well.
		err = syncFS(f)
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		// The file is complete under its final name, but its entry may
		// not be durable: say so rather than claim success. Pickup may
		// still deliver it (the caller retrying gives a duplicate).
		return "", fmt.Errorf("maildrop: fsync %s: %w", dir, err)
	}
	return name, nil
}

// newName returns a unique file name that sorts by time.
func newName() (string, error) {
	var r [8]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", fmt.Errorf("maildrop: random name: %w", err)
	}
	return fmt.Sprintf("%016x.%d.%s", time.Now().UnixNano(), os.Getpid(), hex.EncodeToString(r[:])), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Parse reads a maildrop file's header from r and returns the submission
// and the offset where the message starts. Every failure wraps ErrCorrupt.
func Parse(data []byte) (*Submission, int, error) {
	bad := func(format string, args ...any) (*Submission, int, error) {
		return nil, 0, fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
	if !bytes.HasPrefix(data, []byte(magic+"\n")) {
		return bad("no %q line", magic)
	}
	s := &Submission{}
	off := len(magic) + 1
	for {
		if off > maxHeaderSize {
			return bad("header over %d bytes", maxHeaderSize)
		}
		nl := bytes.IndexByte(data[off:], '\n')
		if nl < 0 {
			return bad("header not terminated")
		}
		line := string(data[off : off+nl])
		off += nl + 1
		if line == "" {
			break
		}
		if strings.ContainsAny(line, "\r\x00") {
			return bad("control character in header")
		}
		key, val, _ := strings.Cut(line, " ")
		switch key {
		case "S":
			s.Sender, s.SenderSet = val, true
		case "F":
			s.FullName = val
		case "R":
			if val == "" {
				return bad("empty recipient")
			}
			s.Recipients = append(s.Recipients, val)
		case "T":
			s.Extract = true
		case "N":
			s.Notify = val
		case "V":
			s.EnvID = val
		case "X":
			s.Ret = val
		case "B":
			s.BodyType = val
		default:
			return bad("unknown item %q", key)
		}
	}
	return s, off, nil
}
