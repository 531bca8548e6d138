package mailstore

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
)

// crlfFile reads a stored message with every bare LF turned into CRLF,
// the form IMAP and POP3 send (RFC 5322 2.3). Seeking backwards rereads
// from the start; forwards it skips.
type crlfFile struct {
	f       *os.File
	br      *bufio.Reader
	size    int64 // converted size
	pos     int64 // converted position
	last    byte  // last byte read from the file
	pending bool  // an LF is owed after the CR just returned
}

func newCRLFFile(f *os.File, vsize int64) *crlfFile {
	return &crlfFile{f: f, br: bufio.NewReaderSize(f, 32<<10), size: vsize}
}

func (c *crlfFile) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if c.pending {
			p[n] = '\n'
			n++
			c.pending = false
			c.last = '\n'
			continue
		}
		b, err := c.br.ReadByte()
		if err != nil {
			c.pos += int64(n)
			if n > 0 && err == io.EOF {
				return n, nil
			}
			return n, err
		}
		if b == '\n' && c.last != '\r' {
			p[n] = '\r'
			n++
			c.pending = true
			c.last = '\r'
			continue
		}
		p[n] = b
		n++
		c.last = b
	}
	c.pos += int64(n)
	return n, nil
}

func (c *crlfFile) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = c.pos + offset
	case io.SeekEnd:
		abs = c.size + offset
	default:
		return 0, errors.New("seek: bad whence")
	}
	if abs < 0 {
		return 0, errors.New("seek: negative position")
	}
	if abs < c.pos {
		if _, err := c.f.Seek(0, io.SeekStart); err != nil {
			return 0, fmt.Errorf("seek: %w", err)
		}
		c.br.Reset(c.f)
		c.pos, c.last, c.pending = 0, 0, false
	}
	if abs > c.pos {
		if _, err := io.CopyN(io.Discard, c, abs-c.pos); err != nil && err != io.EOF {
			return 0, err
		}
	}
	return c.pos, nil
}

func (c *crlfFile) Close() error { return c.f.Close() }

// countVSize reads a file and returns its size with CRLF line ends.
func countVSize(path string) (int64, error) {
	f, err := openMessage(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 32<<10)
	var n int64
	var last byte
	for {
		b, err := br.ReadByte()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
		if b == '\n' && last != '\r' {
			n++
		}
		n++
		last = b
	}
}
