package mailstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Rename renames a mailbox and its children (RFC 9051 6.3.6). Renaming
// INBOX moves its messages into a new mailbox and leaves INBOX empty;
// INBOX's children stay where they are.
func (a *account) Rename(ctx context.Context, oldName, newName string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	src, err := a.box(oldName)
	if err != nil {
		return err
	}
	dst, err := a.box(newName)
	if err != nil {
		return err
	}
	if dst.Name == "INBOX" {
		return fmt.Errorf("rename to INBOX: %w", ErrMailboxExists)
	}
	if src.Name == dst.Name || strings.HasPrefix(dst.Name, src.Name+"/") {
		return fmt.Errorf("%w: cannot rename %s under itself", ErrBadName, src.Name)
	}
	names, err := a.loc.listNames()
	if err != nil {
		return err
	}
	if a.exists(dst) || a.hasChildren(dst.Name, names) {
		return fmt.Errorf("rename to %s: %w", dst.Name, ErrMailboxExists)
	}
	if src.Name == "INBOX" {
		return a.renameInbox(ctx, src, dst)
	}
	srcExists := a.exists(src)
	if !srcExists && !a.hasChildren(src.Name, names) {
		return fmt.Errorf("rename %s: %w", src.Name, ErrNoMailbox)
	}
	if a.loc.Layout == LayoutMaildirPP {
		// Each Maildir++ folder is its own directory: rename the folder
		// and each child.
		var moves [][2]string
		if srcExists {
			moves = append(moves, [2]string{src.Name, dst.Name})
		}
		for _, n := range names {
			if rest, ok := strings.CutPrefix(n, src.Name+"/"); ok {
				moves = append(moves, [2]string{n, dst.Name + "/" + rest})
			}
		}
		for _, mv := range moves {
			from, to := a.loc.paths(mv[0]), a.loc.paths(mv[1])
			if err := renameBox(from, to); err != nil {
				return fmt.Errorf("rename %s: %w", mv[0], err)
			}
			a.s.forget(from.Dir)
		}
		_ = fsyncDir(a.loc.Root)
	} else {
		// fs layout: the folder directory holds its children.
		from := filepath.Join(a.loc.Root, filepath.FromSlash(src.Name))
		to := filepath.Join(a.loc.Root, filepath.FromSlash(dst.Name))
		if err := a.own.mkdirAll(filepath.Dir(to)); err != nil {
			return err
		}
		if err := os.Rename(from, to); err != nil {
			return fmt.Errorf("rename %s: %w", src.Name, err)
		}
		for _, root := range []string{a.loc.Control, a.loc.Index} {
			if root == "" || root == IndexMemory {
				continue
			}
			cf := filepath.Join(root, filepath.FromSlash(src.Name))
			ct := filepath.Join(root, filepath.FromSlash(dst.Name))
			if _, err := os.Stat(cf); err == nil {
				_ = a.own.mkdirAll(filepath.Dir(ct))
				_ = os.Rename(cf, ct)
			}
		}
		a.s.forget(src.Dir)
		_ = fsyncDir(filepath.Dir(to))
	}
	return a.editSpecialUse(ctx, func(m map[string]string) bool {
		changed := false
		for n, use := range m {
			if n == src.Name {
				delete(m, n)
				m[dst.Name] = use
				changed = true
			} else if rest, ok := strings.CutPrefix(n, src.Name+"/"); ok {
				delete(m, n)
				m[dst.Name+"/"+rest] = use
				changed = true
			}
		}
		return changed
	})
}

// renameBox moves one Maildir++ folder with its separate control and
// index directories.
func renameBox(from, to boxPaths) error {
	if err := os.Rename(from.Dir, to.Dir); err != nil {
		return err
	}
	if from.Control != from.Dir {
		if err := os.Rename(from.Control, to.Control); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if from.Index != "" && from.Index != from.Control && from.Index != from.Dir {
		if err := os.Rename(from.Index, to.Index); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// renameInbox creates dst and moves every message of INBOX into it
// (RFC 9051 6.3.6: "all messages in INBOX are moved to a new mailbox").
// The messages get new UIDs in dst.
func (a *account) renameInbox(ctx context.Context, src, dst boxPaths) error {
	if err := a.makeMailbox(ctx, dst); err != nil {
		return err
	}
	for _, sub := range []string{"new", "cur"} {
		dir := filepath.Join(src.Dir, sub)
		ents, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("rename INBOX: %w", err)
		}
		for _, e := range ents {
			if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			if err := os.Rename(filepath.Join(dir, e.Name()), filepath.Join(dst.Dir, sub, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("rename INBOX: %w", err)
			}
		}
		if err := fsyncDir(filepath.Join(dst.Dir, sub)); err != nil {
			return err
		}
		if err := fsyncDir(dir); err != nil {
			return err
		}
	}
	// Keywords keep their letters: copy INBOX's table.
	if data, err := readFile(filepath.Join(src.Control, keywordsName)); err == nil && len(data) > 0 {
		if err := writeFileLocked(ctx, filepath.Join(dst.Control, keywordsName), data, a.own); err != nil {
			return err
		}
	}
	a.s.forget(src.Dir)
	return nil
}
