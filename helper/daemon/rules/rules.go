// Package rules persists ChadThrottle's per-app limits ("rules"): one rule
// per (uid, executable) pair, kept in a JSON file in the helper's state
// directory (default /var/lib/chadthrottle/rules.json).
//
// Writes are atomic: the new content goes to a temporary file that is
// fsynced, renamed over the old one, and the directory is fsynced, so a
// crash leaves either the old or the new file, never a torn one. A file that
// cannot be read back (corrupt JSON, invalid rules) is never silently lost:
// it is kept aside as rules.json.corrupt-<time>, the valid rules it still
// held are loaded, and the problem is reported by Store.Problems.
package rules

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// DefaultDir is the helper's default state directory.
const DefaultDir = api.StateDir

// FileName is the name of the rules file in the state directory.
const FileName = "rules.json"

// formatVersion is the version of the file format written. Version 1 had
// no "admin" field; its rules load as set by their owner. Version 2 had no
// schedules or blocks, version 3 no global limit or priorities, version 4
// no zones per direction (down_traffic, up_traffic).
const formatVersion = 5

// MaxExeLen is the longest executable path accepted (PATH_MAX).
const MaxExeLen = api.MaxExeLen

// maxFileSize bounds what Open reads. Users' rules are capped (the engine
// allows a non-administrator 256 rules of at most 1 KiB paths), so a file
// this large was not written by the helper; the rules before the cut are
// still loaded.
const maxFileSize = 64 << 20

// ErrInvalid is wrapped by errors about a rule that is not acceptable (the
// contract's invalid-argument kind).
var ErrInvalid = api.ErrInvalid

type key struct {
	uid uint32
	exe string
}

// Store holds the rules in memory and on disk. It is safe for concurrent
// use.
type Store struct {
	mu       sync.Mutex
	dir      string
	path     string
	rules    map[key]api.Rule
	global   api.GlobalLimit
	problems []string
	// syncDir is replaced in tests; it fsyncs a directory.
	syncDir func(dir string) error
}

// Open reads the rules file in stateDir (created with mode 0755 when
// missing; "" means DefaultDir). A missing file means no rules. A file that
// cannot be decoded, or that holds invalid rules, is renamed to
// rules.json.corrupt-<time>, the valid rules are kept and rewritten, and the
// problem is reported by Problems; Open fails only when the directory cannot
// be used.
func Open(stateDir string) (*Store, error) {
	if stateDir == "" {
		stateDir = DefaultDir
	}
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	s := &Store{dir: stateDir, path: filepath.Join(stateDir, FileName), rules: map[key]api.Rule{}, syncDir: fsyncDir}
	// A crash between writing a temporary file and renaming it leaves the
	// temporary file; the rules file itself is intact.
	if stale, err := filepath.Glob(filepath.Join(stateDir, "."+FileName+".tmp-*")); err == nil {
		for _, f := range stale {
			os.Remove(f)
		}
	}
	// Nothing in the file can stop the helper: what cannot be read is set
	// aside and reported, the valid rules before it are kept.
	f, err := os.OpenFile(s.path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	var (
		rules  []api.Rule
		decErr error
	)
	if err == nil {
		if st, serr := f.Stat(); serr != nil || !st.Mode().IsRegular() {
			decErr = fmt.Errorf("%s is not a regular file", s.path)
		} else {
			rules, s.global, decErr = decodeFile(io.LimitReader(f, maxFileSize+1), maxFileSize)
		}
		f.Close()
	} else {
		decErr = err
	}
	for _, r := range rules {
		s.rules[key{r.UID, r.Exe}] = r
	}
	if decErr == nil {
		return s, nil
	}
	aside := fmt.Sprintf("%s.corrupt-%s", s.path, time.Now().UTC().Format("20060102T150405.000000000Z"))
	if err := os.Rename(s.path, aside); err != nil {
		s.problems = append(s.problems, fmt.Sprintf("rules file %s is unreadable (%v) and could not be set aside (%v): serving with the %d valid rule(s) read; changes will not be saved until an administrator fixes it",
			s.path, decErr, err, len(rules)))
		return s, nil
	}
	s.problems = append(s.problems, fmt.Sprintf("rules file %s was unreadable (%v); kept as %s, %d valid rule(s) restored",
		s.path, decErr, aside, len(rules)))
	if len(rules) > 0 || !s.global.IsZero() {
		if err := s.saveLocked(); err != nil {
			s.problems = append(s.problems, err.Error())
		}
	}
	return s, nil
}

// Problems returns what went wrong while loading the rules file (a corrupt
// file kept aside, invalid rules dropped); empty when it loaded cleanly.
func (s *Store) Problems() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.problems...)
}

// Path returns the rules file's path.
func (s *Store) Path() string { return s.path }

// Normalize validates r with the contract's checks (helper/api
// validate.go) and returns it in canonical form (traffic type spelled out
// in lower case). The store applies it to what it reads from disk and, as
// the file's invariant, to what it is given.
func Normalize(r api.Rule) (api.Rule, error) {
	if err := api.ValidateExe(r.Exe); err != nil {
		return api.Rule{}, err
	}
	l, err := api.ValidateLimit(r.Limit)
	if err != nil {
		return api.Rule{}, err
	}
	if !l.Limited() {
		return api.Rule{}, fmt.Errorf("%w: rule for %s limits nothing (both rates are 0, nothing blocked)", ErrInvalid, r.Exe)
	}
	r.Limit = l
	return r, nil
}

func sortRules(rs []api.Rule) {
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].UID != rs[j].UID {
			return rs[i].UID < rs[j].UID
		}
		return rs[i].Exe < rs[j].Exe
	})
}

// CountUID returns how many rules uid has.
func (s *Store) CountUID(uid uint32) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k := range s.rules {
		if k.uid == uid {
			n++
		}
	}
	return n
}

// All returns every rule, sorted by uid then executable.
func (s *Store) All() []api.Rule {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.allLocked()
}

func (s *Store) allLocked() []api.Rule {
	out := make([]api.Rule, 0, len(s.rules))
	for _, r := range s.rules {
		out = append(out, r)
	}
	sortRules(out)
	return out
}

// Get returns the rule of uid on exe.
func (s *Store) Get(exe string, uid uint32) (api.Rule, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rules[key{uid, exe}]
	return r, ok
}

// Set creates or replaces the rule for (r.UID, r.Exe) and writes the file.
// On error the store is unchanged.
func (s *Store) Set(r api.Rule) error {
	n, err := Normalize(r)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := key{n.UID, n.Exe}
	prev, had := s.rules[k]
	s.rules[k] = n
	if err := s.saveLocked(); err != nil {
		if had {
			s.rules[k] = prev
		} else {
			delete(s.rules, k)
		}
		return err
	}
	return nil
}

// Remove deletes the rule of uid on exe and writes the file. It reports
// whether there was such a rule; on error the store is unchanged.
func (s *Store) Remove(exe string, uid uint32) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := key{uid, exe}
	prev, had := s.rules[k]
	if !had {
		return false, nil
	}
	delete(s.rules, k)
	if err := s.saveLocked(); err != nil {
		s.rules[k] = prev
		return false, err
	}
	return true, nil
}

// saveLocked writes the rules atomically: temp file, fsync, rename, fsync
// of the directory.
func (s *Store) saveLocked() error {
	data, err := encode(s.allLocked(), s.global)
	if err != nil {
		return fmt.Errorf("encode rules: %w", err)
	}
	tmp, err := os.CreateTemp(s.dir, "."+FileName+".tmp-*")
	if err != nil {
		return fmt.Errorf("write rules file: %w", err)
	}
	tmpName := tmp.Name()
	fail := func(err error) error {
		tmp.Close()
		os.Remove(tmpName)
		return fmt.Errorf("write rules file %s: %w", s.path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fail(err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmpName)
		return fmt.Errorf("write rules file %s: %w", s.path, err)
	}
	if err := os.Rename(tmpName, s.path); err != nil {
		os.Remove(tmpName)
		return fmt.Errorf("write rules file %s: %w", s.path, err)
	}
	if err := s.syncDir(s.dir); err != nil {
		// The new file is in place; only its durability across a power
		// loss is in doubt. Keep the new state and report it.
		s.problems = append(s.problems, fmt.Sprintf("sync state directory %s: %v", s.dir, err))
	}
	return nil
}

func fsyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Global returns the persisted global limit (zero: none).
func (s *Store) Global() api.GlobalLimit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.global
}

// SetGlobal persists the global limit (zero removes it); on error the
// previous one stays.
func (s *Store) SetGlobal(g api.GlobalLimit) error {
	g, err := api.ValidateGlobalLimit(g)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.global
	s.global = g
	if err := s.saveLocked(); err != nil {
		s.global = prev
		return err
	}
	return nil
}
