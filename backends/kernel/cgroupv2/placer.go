//go:build linux

// Package cgroupv2 places throttled targets in cgroups of their own in the
// cgroup v2 hierarchy: the helper owns a subtree (chadthrottle[-TAG]) below
// the cgroup2 mount found in /proc/self/mountinfo, one child per target.
// Where each process came from is kept in memory and in a file under the
// run directory, so a helper that was killed can move processes back at
// its next start.
package cgroupv2

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/kernel/procnet"
)

// Prefix names everything this package creates in the cgroup tree.
const Prefix = "chadthrottle"

// DefaultRunDir keeps the record of where placed processes came from
// (api.RuntimeDir; the backends do not import the contract, a test of the
// helper checks they agree).
const DefaultRunDir = "/run/chadthrottle"

// Mount returns the cgroup2 mount point from /proc/self/mountinfo.
func Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("read mountinfo: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent maj:min root mountpoint options ... - fstype source superopts
		line := sc.Text()
		sep := strings.Index(line, " - ")
		if sep < 0 {
			continue
		}
		post := strings.Fields(line[sep+3:])
		pre := strings.Fields(line[:sep])
		if len(post) > 0 && post[0] == "cgroup2" && len(pre) >= 5 {
			return unescape(pre[4]), nil
		}
	}
	return "", backends.Unavailable("no cgroup2 filesystem is mounted (see /proc/self/mountinfo)")
}

func unescape(s string) string {
	// mountinfo escapes space, tab, newline and backslash as \ooo.
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Probe checks that cgroup v2 is mounted and writable.
func Probe() error {
	m, err := Mount()
	if err != nil {
		return err
	}
	if err := syscall.Access(m, 2 /* W_OK */); err != nil {
		return backends.Unavailable("cgroup2 mount %s is not writable: %v", m, err)
	}
	return nil
}

// Placer implements backends.Placer on cgroup v2.
type Placer struct {
	root   string // cgroup2 mount
	parent string // directory our subtree lives in
	dir    string // our subtree
	record string // file recording origins
	mu     sync.Mutex
	// origins[target][pid] = cgroup path (relative to root) the pid came from
	origins map[string]map[int]string
}

var _ backends.Placer = (*Placer)(nil)

// New returns a placer for opts (CgroupParent, Tag). runDir "" means
// DefaultRunDir.
func New(opts backends.Options, runDir string) (*Placer, error) {
	root, err := Mount()
	if err != nil {
		return nil, err
	}
	parent := opts.CgroupParent
	if parent == "" {
		parent = root
	}
	if !strings.HasPrefix(parent, root) {
		return nil, fmt.Errorf("cgroup parent %s is not below the cgroup2 mount %s", parent, root)
	}
	name := Prefix
	if opts.Tag != "" {
		name += "-" + backends.SafeName(opts.Tag)
	}
	if runDir == "" {
		runDir = DefaultRunDir
	}
	return &Placer{root: root, parent: parent, dir: filepath.Join(parent, name),
		record: filepath.Join(runDir, name+".cgroups.json"), origins: map[string]map[int]string{}}, nil
}

// Dir returns the placer's subtree.
func (p *Placer) Dir() string { return p.dir }

// Root returns the cgroup2 mount.
func (p *Placer) Root() string { return p.root }

// Init removes leftovers of a previous run: processes in leftover target
// cgroups go back where the record says they came from (or to the parent
// of the subtree), then the leftover cgroups are removed.
func (p *Placer) Init() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := map[string]map[int]string{}
	if b, err := os.ReadFile(p.record); err == nil {
		_ = json.Unmarshal(b, &old)
	}
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return fmt.Errorf("create cgroup %s: %w", p.dir, err)
	}
	entries, err := os.ReadDir(p.dir)
	if err != nil {
		return fmt.Errorf("read cgroup %s: %w", p.dir, err)
	}
	var errs []error
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		origins := map[int]string{}
		for id, m := range old {
			if backends.SafeName(id) == e.Name() {
				origins = m
			}
		}
		if err := p.drain(filepath.Join(p.dir, e.Name()), origins); err != nil {
			errs = append(errs, err)
		}
	}
	p.origins = map[string]map[int]string{}
	if err := p.save(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Place implements backends.Placer.
func (p *Placer) Place(id string, pids []int) (backends.Cgroup, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if id == "" {
		return backends.Cgroup{}, errors.New("empty target id")
	}
	dir := filepath.Join(p.dir, backends.SafeName(id))
	created := true
	if err := os.Mkdir(dir, 0o755); errors.Is(err, fs.ErrExist) {
		created = false
	} else if err != nil {
		return backends.Cgroup{}, fmt.Errorf("create cgroup %s: %w", dir, err)
	}
	cg, err := cgroupOf(dir)
	if err != nil {
		if created {
			_ = os.Remove(dir)
		}
		return backends.Cgroup{}, err
	}
	if p.origins[id] == nil {
		p.origins[id] = map[int]string{}
	}
	var errs []error
	for _, pid := range pids {
		cur, err := ProcessCgroup(pid)
		if err != nil {
			errs = append(errs, fmt.Errorf("process %d: %w", pid, err))
			continue
		}
		abs := filepath.Join(p.root, cur)
		if abs == dir {
			continue // already placed
		}
		if strings.HasPrefix(abs, p.dir+"/") {
			// In another target's cgroup: keep its true origin.
			for other, m := range p.origins {
				if o, ok := m[pid]; ok && other != id {
					cur = o
					delete(m, pid)
				}
			}
		}
		if err := writeProcs(dir, pid); err != nil {
			errs = append(errs, fmt.Errorf("move process %d into %s: %w", pid, dir, err))
			continue
		}
		p.origins[id][pid] = cur
	}
	if err := p.save(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 && len(p.origins[id]) == 0 && len(procs(dir)) == 0 {
		// Nothing was placed: leave no trace of this call.
		if created {
			_ = os.Remove(dir)
			delete(p.origins, id)
			_ = p.save()
		}
		return backends.Cgroup{}, errors.Join(errs...)
	}
	return cg, errors.Join(errs...)
}

// Release implements backends.Placer.
func (p *Placer) Release(id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	dir := filepath.Join(p.dir, backends.SafeName(id))
	err := p.drain(dir, p.origins[id])
	delete(p.origins, id)
	return errors.Join(err, p.save())
}

// Cleanup implements backends.Placer: every target is released and the
// subtree removed.
func (p *Placer) Cleanup() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	entries, _ := os.ReadDir(p.dir)
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		var origins map[int]string
		for id, m := range p.origins {
			if backends.SafeName(id) == e.Name() {
				origins = m
			}
		}
		if err := p.drain(filepath.Join(p.dir, e.Name()), origins); err != nil {
			errs = append(errs, err)
		}
	}
	p.origins = map[string]map[int]string{}
	if err := os.Remove(p.dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("remove cgroup %s: %w", p.dir, err))
	}
	if err := os.Remove(p.record); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// drain moves every process in dir (and its descendants) back to its origin,
// or to the subtree's parent when the origin is unknown or gone, then
// removes dir.
func (p *Placer) drain(dir string, origins map[int]string) error {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	var errs []error
	// Children first (a target's processes may have made none, but be safe).
	subs, _ := os.ReadDir(dir)
	for _, s := range subs {
		if s.IsDir() {
			errs = append(errs, p.drain(filepath.Join(dir, s.Name()), origins))
		}
	}
	for attempt := 0; attempt < 5; attempt++ {
		pids := procs(dir)
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			dest := p.parent
			if o, ok := origins[pid]; ok {
				if d := filepath.Join(p.root, o); exists(d) {
					dest = d
				}
			} else if pp := parentOrigin(pid, origins); pp != "" {
				if d := filepath.Join(p.root, pp); exists(d) {
					dest = d // a child follows its parent back
				}
			}
			if err := writeProcs(dest, pid); err != nil && !errors.Is(err, syscall.ESRCH) {
				// The origin may not accept processes (threaded, or
				// it gained controllers): fall back to our parent.
				if err2 := writeProcs(p.parent, pid); err2 != nil && !errors.Is(err2, syscall.ESRCH) {
					errs = append(errs, fmt.Errorf("move process %d out of %s: %w", pid, dir, err))
				}
			}
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dir, err))
	}
	return errors.Join(errs...)
}

func parentOrigin(pid int, origins map[int]string) string {
	for i := 0; i < 32 && pid > 1; i++ {
		ppid := ppidOf(pid)
		if ppid <= 1 {
			return ""
		}
		if o, ok := origins[ppid]; ok {
			return o
		}
		pid = ppid
	}
	return ""
}

func ppidOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	st, err := procnet.ParseStat(b)
	if err != nil {
		return 0
	}
	return st.PPID
}

func (p *Placer) save() error {
	if err := os.MkdirAll(filepath.Dir(p.record), 0o755); err != nil {
		return fmt.Errorf("create run dir: %w", err)
	}
	b, err := json.Marshal(p.origins)
	if err != nil {
		return err
	}
	tmp := p.record + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	return os.Rename(tmp, p.record)
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func writeProcs(dir string, pid int) error {
	f, err := os.OpenFile(filepath.Join(dir, "cgroup.procs"), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(strconv.Itoa(pid))
	return err
}

func procs(dir string) []int {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// Procs returns the pids in the cgroup at dir.
func Procs(dir string) []int { return procs(dir) }

func cgroupOf(dir string) (backends.Cgroup, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return backends.Cgroup{}, fmt.Errorf("stat cgroup %s: %w", dir, err)
	}
	return backends.Cgroup{Path: dir, ID: st.Ino}, nil
}

// ID returns the cgroup id of the cgroup directory dir.
func ID(dir string) (uint64, error) {
	cg, err := cgroupOf(dir)
	return cg.ID, err
}

// ProcessCgroup returns the cgroup v2 path of pid relative to the cgroup2
// root ("/user.slice/…"), from /proc/PID/cgroup.
func ProcessCgroup(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("no such process: %w", syscall.ESRCH)
		}
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "0::") {
			return strings.TrimSuffix(strings.TrimPrefix(line, "0::"), " (deleted)"), nil
		}
	}
	return "", errors.New("process has no cgroup v2 membership")
}
