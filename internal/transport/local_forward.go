package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"syscall"

	"postcote/internal/queue"
	"postcote/internal/rewrite"
)

// maxForwardFile bounds a .forward or :include: file read at delivery.
const maxForwardFile = 1 << 20

// forward delivers to the destinations of the user's .forward file:
// the first forward_path element that expands fully and names an
// existing file wins. done is false when there is no such file, or it
// lists nothing: the mailbox gets the mail.
func (l *Local) forward(ctx context.Context, d *delivery, pw SystemUser, user, ext, full string, depth int) (queue.Result, bool) {
	paths := l.ForwardPath
	if paths == nil {
		paths = defaultForwardPath
	}
	_, domain := rewrite.SplitAddress(full)
	vars := map[string]string{"home": pw.Home, "user": pw.Name, "extension": ext, "recipient_delimiter": l.Delimiter,
		"local": user, "domain": domain, "recipient": full, "shell": pw.Shell}
	if ext != "" {
		vars["local"] = user + l.Delimiter[:1] + ext
	}
	for _, p := range paths {
		path, ok := expandLocal(strings.TrimSpace(p), vars)
		if !ok || path == "" {
			continue
		}
		data, err := readOwnedFile(path, pw.UID)
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			continue
		}
		if errors.Is(err, errUnsafeFile) {
			// local(8) ignores a .forward file the user does not own.
			continue
		}
		if err != nil {
			return queue.Result{Status: queue.StatusDeferred, DSN: "4.3.0", Reply: fmt.Sprintf("cannot read forward file: %v", err)}, true
		}
		dests := rewrite.ParseIncludeFile(string(data))
		if len(dests) == 0 {
			return queue.Result{}, false
		}
		return l.destinations(ctx, d, dests, "forward", pw, user, full, depth), true
	}
	return queue.Result{}, false
}

// destinations delivers to the entries of a .forward or :include: file
// read for user (class "forward" or "include", for the allow_mail_to_*
// settings), with user's rights.
func (l *Local) destinations(ctx context.Context, d *delivery, dests []string, class string, pw SystemUser, user, full string, depth int) queue.Result {
	var rs []queue.Result
	for _, v := range dests {
		v = strings.TrimSpace(v)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' && (strings.HasPrefix(v[1:], "|") || strings.HasPrefix(v[1:], "/")) {
			v = v[1 : len(v)-1] // "|command with spaces"
		}
		switch {
		case strings.HasPrefix(v, "|"):
			if !slices.Contains(l.AllowCommands, class) {
				rs = append(rs, queue.Result{Status: queue.StatusBounced, DSN: "5.7.1", Reply: fmt.Sprintf("mail to command is restricted (%s file of %s)", class, user)})
				continue
			}
			rs = append(rs, l.command(ctx, d, strings.TrimSpace(v[1:]), pw, full, user))
		case strings.HasPrefix(strings.ToLower(v), ":include:"):
			if depth >= maxLocalDepth {
				rs = append(rs, queue.Result{Status: queue.StatusBounced, DSN: "5.4.6", Reply: "mail forwarding loop for " + full + " (:include: nesting too deep)"})
				continue
			}
			path := strings.TrimSpace(v[len(":include:"):])
			data, err := readOwnedFile(path, -1)
			if err != nil {
				rs = append(rs, queue.Result{Status: queue.StatusDeferred, DSN: "4.3.0", Reply: fmt.Sprintf("cannot read include file: %v", err)})
				continue
			}
			rs = append(rs, l.destinations(ctx, d, rewrite.ParseIncludeFile(string(data)), "include", pw, user, full, depth+1))
		case strings.HasPrefix(v, "/"):
			if !slices.Contains(l.AllowFiles, class) {
				rs = append(rs, queue.Result{Status: queue.StatusBounced, DSN: "5.7.1", Reply: fmt.Sprintf("mail to file is restricted (%s file of %s)", class, user)})
				continue
			}
			rs = append(rs, l.file(ctx, d, v, pw, full))
		default:
			skip := fullExpansion
			if strings.HasPrefix(v, "\\") || strings.EqualFold(v, user) || strings.EqualFold(v, full) {
				// The user in its own .forward: a copy in the mailbox.
				skip, v = mailboxOnly, full
			}
			rs = append(rs, l.address(ctx, d, v, full, depth, skip))
		}
	}
	return combine(rs)
}

// readOwnedFile reads a small file that must be a regular file owned
// by uid (uid < 0: any owner), as local(8) requires of .forward files.
func readOwnedFile(path string, uid int) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", errUnsafeFile, path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && uid >= 0 && processIsRoot() && int(st.Uid) != uid {
		return nil, fmt.Errorf("%w: %s is owned by uid %d, not %d", errUnsafeFile, path, st.Uid, uid)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxForwardFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxForwardFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxForwardFile)
	}
	return data, nil
}

// processIsRoot tells whether deliveries can run as other users.
func processIsRoot() bool { return os.Geteuid() == 0 }

// lookupEnv reads a variable of postcote's own environment, for
// export_environment.
func lookupEnv(name string) (string, bool) { return os.LookupEnv(name) }

// maxHeaderScan bounds how much of a message DeliveredTo reads.
const maxHeaderScan = 1 << 20

// DeliveredTo reads the header section of a message and returns the
// addresses of its Delivered-To: fields, lower case: local(8)'s loop
// detection (a recipient already listed bounces with 5.4.6). Folded
// fields are unfolded; reading stops at the empty line that ends the
// header (RFC 5322 2.1) or after 1 MiB.
func DeliveredTo(r io.Reader) (map[string]bool, error) {
	out := map[string]bool{}
	br := bufio.NewReaderSize(io.LimitReader(r, maxHeaderScan), 4096)
	var field strings.Builder
	flush := func() {
		name, value, ok := strings.Cut(field.String(), ":")
		if ok && strings.EqualFold(strings.TrimSpace(name), "Delivered-To") {
			v := strings.ToLower(strings.TrimSpace(value))
			v = strings.TrimSuffix(strings.TrimPrefix(v, "<"), ">")
			if v != "" {
				out[v] = true
			}
		}
		field.Reset()
	}
	for {
		line, err := br.ReadString('\n')
		trimmed := strings.TrimRight(line, "\r\n")
		if line != "" && trimmed == "" && strings.HasSuffix(line, "\n") {
			break // end of the header section
		}
		if len(trimmed) > 0 && (trimmed[0] == ' ' || trimmed[0] == '\t') && field.Len() > 0 {
			if field.Len() < 4096 {
				field.WriteString(" " + strings.TrimSpace(trimmed))
			}
		} else if trimmed != "" {
			flush()
			if len(trimmed) > 4096 {
				trimmed = trimmed[:4096]
			}
			field.WriteString(trimmed)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read header: %w", err)
		}
	}
	flush()
	return out, nil
}
