//go:build linux

package cgroupv2

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/chadthrottle/chadthrottle/backends"
)

// LeafMode is the placement mode the Leaf placer reports.
const LeafMode = "cgroup"

// LeafModeText says what LeafMode does, for status lines and `backends`.
const LeafModeText = "cgroup (child of each process's own cgroup)"

// Leaf implements backends.CgroupsPlacer without taking anyone out of the
// cgroup systemd gave it: a limited process moves into a child cgroup of
// the cgroup it is in (its leaf), named <Prefix>[-TAG].<target>, so its
// unit's cgroup stays a prefix of /proc/PID/cgroup. A target whose
// processes are in several leaves gets one child in each. Where a process
// came from is the child's parent: no record is needed, and a helper that
// was killed finds its children by name at its next start (Init), moves
// their processes up into the parent and removes them.
//
// A child is made only in a cgroup that holds processes, so it has no
// domain controllers enabled for children (cgroup v2's no-internal-process
// rule), except the root cgroup; a process in a threaded cgroup is refused
// (cgroup.procs moves whole processes, which a threaded subtree does not
// take). A process is never moved anywhere but into its leaf's child and
// back.
type Leaf struct {
	root   string // cgroup2 mount
	prefix string // "chadthrottle." or "chadthrottle-TAG."

	mu sync.Mutex
	// children[target] = the target's child cgroups (absolute paths)
	children map[string]map[string]bool
	// placed[target] = the pids the last PlaceCgroups call was given
	placed map[string]map[int]bool
}

var _ backends.CgroupsPlacer = (*Leaf)(nil)

// NewLeaf returns a leaf placer for opts (Tag).
func NewLeaf(opts backends.Options) (*Leaf, error) {
	root, err := Mount()
	if err != nil {
		return nil, err
	}
	prefix := Prefix + "."
	if opts.Tag != "" {
		// No '.' in the tag: the prefix of one tag is never another's.
		prefix = Prefix + "-" + strings.ReplaceAll(backends.SafeName(opts.Tag), ".", "_") + "."
	}
	return &Leaf{root: root, prefix: prefix, children: map[string]map[string]bool{}, placed: map[string]map[int]bool{}}, nil
}

// Mode implements backends.CgroupsPlacer.
func (p *Leaf) Mode() string { return LeafMode }

// Root returns the cgroup2 mount.
func (p *Leaf) Root() string { return p.root }

// ChildName is the name of target id's child cgroup in every leaf: the
// placer's prefix and the target's safe name, at most 255 bytes.
func (p *Leaf) ChildName(id string) string {
	n := p.prefix + backends.SafeName(id)
	if len(n) > 255 {
		n = n[:255]
	}
	return n
}

// Ours reports whether the cgroup directory name is one of this placer's
// children.
func (p *Leaf) Ours(name string) bool { return strings.HasPrefix(name, p.prefix) }

// Init removes leftovers of a previous run with the same tag: every child
// cgroup of ours anywhere in the tree has its processes moved up into its
// parent (where they came from) and is removed.
func (p *Leaf) Init() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	dirs, err := p.findOurs()
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	for _, d := range dirs {
		errs = append(errs, drainUp(d))
	}
	p.children = map[string]map[string]bool{}
	p.placed = map[string]map[int]bool{}
	return errors.Join(errs...)
}

// maxWalk bounds the cgroup directories Init reads.
const maxWalk = 200_000

// findOurs returns every directory below the root whose name is ours (not
// descending into them).
func (p *Leaf) findOurs() ([]string, error) {
	var out []string
	seen := 0
	err := filepath.WalkDir(p.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == p.root {
				return err
			}
			return nil // a cgroup removed while we walk
		}
		if !d.IsDir() {
			return nil
		}
		if seen++; seen > maxWalk {
			return fmt.Errorf("more than %d cgroups below %s: stopped looking for leftovers", maxWalk, p.root)
		}
		if path != p.root && p.Ours(d.Name()) {
			out = append(out, path)
			return filepath.SkipDir
		}
		return nil
	})
	return out, err
}

// Place implements backends.Placer: the target's first cgroup.
func (p *Leaf) Place(id string, pids []int) (backends.Cgroup, error) {
	cgs, err := p.PlaceCgroups(id, pids)
	if len(cgs) == 0 {
		return backends.Cgroup{}, err
	}
	return cgs[0], err
}

// PlaceCgroups implements backends.CgroupsPlacer: each pid moves into the
// target's child of the cgroup it is in (from another target's child, into
// this target's sibling of it). Processes the previous call was given and
// this one is not (they exec'd another program or changed uid) go back up
// to their leaf when they are still in one of the target's children;
// children of a target that hold no process any more are removed. It
// returns the target's cgroups.
func (p *Leaf) PlaceCgroups(id string, pids []int) ([]backends.Cgroup, error) {
	if id == "" {
		return nil, errors.New("empty target id")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	name := p.ChildName(id)
	if p.children[id] == nil {
		p.children[id] = map[string]bool{}
	}
	var errs []error
	now := map[int]bool{}
	for _, pid := range pids {
		if pid <= 0 {
			errs = append(errs, fmt.Errorf("invalid pid %d", pid))
			continue
		}
		if err := p.placeOne(id, name, pid); err != nil {
			errs = append(errs, err)
			continue
		}
		now[pid] = true
	}
	for pid := range p.placed[id] {
		if !now[pid] {
			p.unplaceOne(id, pid)
		}
	}
	p.placed[id] = now
	p.pruneLocked(id)
	cgs := p.cgroupsLocked(id)
	if len(cgs) == 0 {
		delete(p.children, id)
		delete(p.placed, id)
	}
	return cgs, errors.Join(errs...)
}

// placeOne moves pid into its leaf's child name, creating the child.
func (p *Leaf) placeOne(id, name string, pid int) error {
	cur, err := ProcessCgroup(pid)
	if err != nil {
		return fmt.Errorf("process %d: %w", pid, err)
	}
	abs := filepath.Join(p.root, cur)
	if filepath.Base(abs) == name {
		p.children[id][abs] = true // already placed
		return nil
	}
	leaf := abs
	if p.Ours(filepath.Base(abs)) {
		leaf = filepath.Dir(abs) // in another target's child: a sibling
	}
	if err := p.canHoldChild(leaf); err != nil {
		return fmt.Errorf("process %d: %w", pid, err)
	}
	child := filepath.Join(leaf, name)
	created := true
	if err := os.Mkdir(child, 0o755); errors.Is(err, fs.ErrExist) {
		created = false
	} else if err != nil {
		return fmt.Errorf("process %d: create cgroup %s: %w", pid, child, err)
	}
	if err := writeProcs(child, pid); err != nil {
		if created {
			_ = os.Remove(child)
		}
		if errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("process %d: %w", pid, err)
		}
		return fmt.Errorf("process %d stays in %s: moving it into %s failed: %w", pid, leaf, child, err)
	}
	p.children[id][child] = true
	return nil
}

// canHoldChild checks that leaf is a domain cgroup (not threaded) that
// enables no controllers for its children (so a child changes none of the
// process's resource limits); the root cgroup may.
func (p *Leaf) canHoldChild(leaf string) error {
	if leaf == p.root {
		return nil
	}
	typ, err := os.ReadFile(filepath.Join(leaf, "cgroup.type"))
	if err != nil {
		return fmt.Errorf("read the type of cgroup %s: %w", leaf, err)
	}
	if t := strings.TrimSpace(string(typ)); t != "domain" {
		return fmt.Errorf("its cgroup %s is of type %q, not a domain: cgroup placement moves whole processes, which threaded cgroups' children do not take; not moved", leaf, t)
	}
	sc, err := os.ReadFile(filepath.Join(leaf, "cgroup.subtree_control"))
	if err != nil {
		return fmt.Errorf("read cgroup %s: %w", leaf, err)
	}
	if c := strings.TrimSpace(string(sc)); c != "" {
		return fmt.Errorf("its cgroup %s enables controllers (%s) for its children: a child would change its resource limits; not moved", leaf, c)
	}
	return nil
}

// unplaceOne moves pid up into its leaf when it is in one of the target's
// children.
func (p *Leaf) unplaceOne(id string, pid int) {
	cur, err := ProcessCgroup(pid)
	if err != nil {
		return
	}
	abs := filepath.Join(p.root, cur)
	if p.children[id][abs] {
		_ = writeProcs(filepath.Dir(abs), pid)
	}
}

// pruneLocked removes the target's children that hold no process.
func (p *Leaf) pruneLocked(id string) {
	for child := range p.children[id] {
		if len(procs(child)) > 0 {
			continue
		}
		if err := os.Remove(child); err == nil || errors.Is(err, fs.ErrNotExist) {
			delete(p.children[id], child)
		}
	}
}

// cgroupsLocked returns the target's children, sorted by path.
func (p *Leaf) cgroupsLocked(id string) []backends.Cgroup {
	var out []backends.Cgroup
	for child := range p.children[id] {
		if cg, err := cgroupOf(child); err == nil {
			out = append(out, cg)
		}
	}
	slices.SortFunc(out, func(a, b backends.Cgroup) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// Release implements backends.Placer: every process in the target's
// children (children born there too) goes up into the leaf it came from,
// and the children are removed.
func (p *Leaf) Release(id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.releaseLocked(id)
}

func (p *Leaf) releaseLocked(id string) error {
	var errs []error
	for child := range p.children[id] {
		errs = append(errs, drainUp(child))
	}
	delete(p.children, id)
	delete(p.placed, id)
	return errors.Join(errs...)
}

// Cleanup implements backends.Placer: every target is released.
func (p *Leaf) Cleanup() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for id := range p.children {
		errs = append(errs, p.releaseLocked(id))
	}
	return errors.Join(errs...)
}

// drainUp moves every process in child (and in cgroups below it) into
// child's parent, then removes child and those below it. A process the
// parent does not take (it enabled controllers meanwhile) stays where it
// is, inside its original subtree, and is reported.
func drainUp(child string) error {
	leaf := filepath.Dir(child)
	var errs []error
	var walk func(dir string, depth int)
	walk = func(dir string, depth int) {
		if depth < 16 {
			subs, _ := os.ReadDir(dir)
			for _, s := range subs {
				if s.IsDir() {
					walk(filepath.Join(dir, s.Name()), depth+1)
				}
			}
		}
		for attempt := 0; attempt < 5; attempt++ {
			pids := procs(dir)
			if len(pids) == 0 {
				break
			}
			for _, pid := range pids {
				if err := writeProcs(leaf, pid); err != nil && !errors.Is(err, syscall.ESRCH) && attempt == 4 {
					errs = append(errs, fmt.Errorf("move process %d back into %s: %w", pid, leaf, err))
				}
			}
		}
		if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dir, err))
		}
	}
	if _, err := os.Stat(child); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	walk(child, 0)
	return errors.Join(errs...)
}

// RemoveLeftovers moves the processes of the children a placer with tag
// left (a helper that was killed) back into their parents and removes the
// children, as the next start would (Init).
func RemoveLeftovers(tag string) error {
	p, err := NewLeaf(backends.Options{Tag: tag})
	if err != nil {
		return err
	}
	return p.Init()
}

// Find returns every child cgroup of this placer's tag in the tree.
func (p *Leaf) Find() ([]string, error) { return p.findOurs() }
