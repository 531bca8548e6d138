package lookup

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// IndexSuffix is appended to a hash: table's source path to name its
// index (Postfix's Berkeley DB file is SOURCE.db; postcote's own format
// lives beside it under another name so neither is mistaken for the
// other).
const IndexSuffix = ".pcdb"

const (
	indexMagic   = "PCDB"
	indexVersion = 1
	headerLen    = 4 + 4 + 8 + 8 + 4 // magic, version/format/flags/pad, size, mtime, count
	// maxIndexSize bounds what is read into memory.
	maxIndexSize = 1 << 30
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// ErrCorruptIndex is wrapped by errors of an index that is not in
// postcote's format or fails its checksum.
var ErrCorruptIndex = errors.New("corrupt table index")

// sourceStamp identifies one version of a source file.
type sourceStamp struct {
	Size  int64
	MTime int64 // nanoseconds since 1970
}

func stampOf(fi fs.FileInfo) sourceStamp {
	return sourceStamp{Size: fi.Size(), MTime: fi.ModTime().UnixNano()}
}

// index is a decoded index file.
type index struct {
	format  SourceFormat
	folded  bool
	source  sourceStamp
	entries map[string]string
}

// encodeIndex lays out entries in the format described in doc.go.
func encodeIndex(format SourceFormat, folded bool, src sourceStamp, entries []Entry) []byte {
	sorted := append([]Entry(nil), entries...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Key < sorted[j].Key })
	var b bytes.Buffer
	b.WriteString(indexMagic)
	flags := byte(0)
	if folded {
		flags |= 1
	}
	b.Write([]byte{indexVersion, byte(format), flags, 0})
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(src.Size))
	b.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(src.MTime))
	b.Write(n[:])
	binary.BigEndian.PutUint32(n[:4], uint32(len(sorted)))
	b.Write(n[:4])
	var v [binary.MaxVarintLen64]byte
	for _, e := range sorted {
		b.Write(v[:binary.PutUvarint(v[:], uint64(len(e.Key)))])
		b.WriteString(e.Key)
		b.Write(v[:binary.PutUvarint(v[:], uint64(len(e.Value)))])
		b.WriteString(e.Value)
	}
	binary.BigEndian.PutUint32(n[:4], crc32.Checksum(b.Bytes(), crcTable))
	b.Write(n[:4])
	return b.Bytes()
}

// decodeIndex checks and decodes an index file's bytes. It never
// panics on corrupt input: every length is checked against what is
// left.
func decodeIndex(data []byte) (*index, error) {
	if len(data) < headerLen+4 {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrCorruptIndex, len(data))
	}
	if string(data[:4]) != indexMagic {
		return nil, fmt.Errorf("%w: not a postcote index (bad magic)", ErrCorruptIndex)
	}
	body, sum := data[:len(data)-4], binary.BigEndian.Uint32(data[len(data)-4:])
	if crc32.Checksum(body, crcTable) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorruptIndex)
	}
	if data[4] != indexVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrCorruptIndex, data[4], indexVersion)
	}
	if data[5] > byte(FormatAliases) {
		return nil, fmt.Errorf("%w: unknown source format %d", ErrCorruptIndex, data[5])
	}
	ix := &index{
		format: SourceFormat(data[5]),
		folded: data[6]&1 != 0,
		source: sourceStamp{
			Size:  int64(binary.BigEndian.Uint64(data[8:16])),
			MTime: int64(binary.BigEndian.Uint64(data[16:24])),
		},
	}
	count := binary.BigEndian.Uint32(data[24:28])
	rest := body[headerLen:]
	// Each record takes at least two bytes, which bounds the map size.
	if uint64(count) > uint64(len(rest))/2 {
		return nil, fmt.Errorf("%w: %d records cannot fit in %d bytes", ErrCorruptIndex, count, len(rest))
	}
	ix.entries = make(map[string]string, count)
	field := func() (string, error) {
		l, n := binary.Uvarint(rest)
		if n <= 0 || l > uint64(len(rest)-n) {
			return "", fmt.Errorf("%w: truncated record", ErrCorruptIndex)
		}
		s := string(rest[n : n+int(l)])
		rest = rest[n+int(l):]
		return s, nil
	}
	prev := ""
	for i := uint32(0); i < count; i++ {
		k, err := field()
		if err != nil {
			return nil, err
		}
		v, err := field()
		if err != nil {
			return nil, err
		}
		if i > 0 && k <= prev {
			return nil, fmt.Errorf("%w: keys out of order", ErrCorruptIndex)
		}
		prev = k
		ix.entries[k] = v
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last record", ErrCorruptIndex, len(rest))
	}
	return ix, nil
}

// readIndex reads and decodes path.
func readIndex(path string) (*index, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if fi.Size() > maxIndexSize {
		return nil, fmt.Errorf("%s: %w: %d bytes is more than the %d allowed", path, ErrCorruptIndex, fi.Size(), maxIndexSize)
	}
	data := make([]byte, fi.Size())
	if _, err := f.ReadAt(data, 0); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	ix, err := decodeIndex(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ix, nil
}

// writeIndex writes the index atomically: a temporary file in the same
// folder, fsynced, renamed over the old index, and the folder fsynced.
// The file mode follows the source's (postmap keeps the source's
// permissions, so a map holding secrets stays private).
func writeIndex(path string, mode fs.FileMode, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write index: %w", err)
	}
	name := tmp.Name()
	defer os.Remove(name) // no-op once renamed
	if err := tmp.Chmod(mode.Perm()); err != nil {
		tmp.Close()
		return fmt.Errorf("write index %s: %w", name, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write index %s: %w", name, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync index %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close index %s: %w", name, err)
	}
	if err := os.Rename(name, path); err != nil {
		return fmt.Errorf("install index %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// BuildIndex parses the text source at path in format f and writes
// path+IndexSuffix, as `postmap FILE` and `postalias FILE` do. Warnings
// go to warn with file:line. It returns the number of entries written.
func BuildIndex(path string, f SourceFormat, foldKeys bool, warn func(msg string)) (int, error) {
	entries, st, fi, err := parseSourceFile(path, f, foldKeys, warn)
	if err != nil {
		return 0, err
	}
	if err := writeIndex(path+IndexSuffix, fi.Mode(), encodeIndex(f, foldKeys, st, entries)); err != nil {
		return 0, err
	}
	return len(entries), nil
}

// parseSourceFile reads a source file, returning its entries and stamp.
// The stamp is taken before reading, so a change made while reading
// makes the index look stale, never fresh.
func parseSourceFile(path string, f SourceFormat, foldKeys bool, warn func(msg string)) ([]Entry, sourceStamp, fs.FileInfo, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, sourceStamp{}, nil, err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, sourceStamp{}, nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, sourceStamp{}, nil, fmt.Errorf("%s: not a regular file", path)
	}
	entries, err := ParseSource(fh, f, foldKeys, func(line int, msg string) {
		if warn != nil {
			warn(fmt.Sprintf("%s:%d: %s", path, line, msg))
		}
	})
	if err != nil {
		return nil, sourceStamp{}, nil, fmt.Errorf("read %s: %w", path, err)
	}
	// A file replaced or rewritten while it was read gives a mix of two
	// versions: refuse it, so the caller keeps what it had.
	if after, err := os.Stat(path); err != nil || stampOf(after) != stampOf(fi) || !os.SameFile(after, fi) {
		return nil, sourceStamp{}, nil, fmt.Errorf("%s changed while it was read; try again", path)
	}
	return entries, stampOf(fi), fi, nil
}

// modTime is for messages.
func (s sourceStamp) modTime() time.Time { return time.Unix(0, s.MTime) }
