//go:build linux

package socktarget

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/kernel/cgroupv2"
)

// Tagger owns the tagging programs and their maps. Its programs are
// attached, with BPF links this process owns (the kernel detaches them when
// the helper exits or dies), only while at least one target is set.
type Tagger struct {
	tag string // registry key (backends.Options.Tag)

	mu      sync.Mutex
	refs    int
	objs    *socktargetObjects
	root    string
	links   []link.Link
	next    uint32
	targets map[string]*entry
	rw      rwndState // the receive window clamp (rwnd_linux.go)
	// recovered is how many clamps of a killed helper the first Acquire
	// undid, recoverErr what went wrong doing it.
	recovered  int
	recoverErr error
}

// entry is what the tagger wrote for one target.
type entry struct {
	num  uint32
	exes []socktargetExeKey // app: executable identities
	pids []int              // process: the pids written from userspace
}

var (
	regMu    sync.Mutex
	registry = map[string]*Tagger{}
)

// Probe says whether the kernel can tag sockets at creation: it loads the
// programs (cgroup/sock_create with bpf_get_current_task and
// bpf_probe_read_kernel, cgroup/sock_release, tp_btf fork and exit
// tracepoints, which need BTF) and drops them. The error wraps
// errors.ErrUnsupported and names what is missing.
func Probe() error {
	if err := rlimit.RemoveMemlock(); err != nil {
		return backends.Unavailable("cannot lift the memlock limit for BPF maps: %v", err)
	}
	spec, err := loadSocktarget()
	if err != nil {
		return fmt.Errorf("read socket tagger object: %w", err)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) || errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, unix.EINVAL) ||
			errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOENT) {
			return backends.Unavailable("kernel cannot load the socket tagger (cgroup/sock_create reading the task, sock_release, BTF fork/exit tracepoints): %v", err)
		}
		return fmt.Errorf("load socket tagger: %w", err)
	}
	coll.Close()
	if _, err := cgroupv2.Mount(); err != nil {
		return err
	}
	return nil
}

// Acquire returns the process's tagger for tag (backends.Options.Tag),
// loading it on first use. Every Acquire needs a Close.
func Acquire(tag string) (*Tagger, error) {
	regMu.Lock()
	defer regMu.Unlock()
	if t := registry[tag]; t != nil {
		t.mu.Lock()
		t.refs++
		t.mu.Unlock()
		return t, nil
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, backends.Unavailable("cannot lift the memlock limit for BPF maps: %v", err)
	}
	root, err := cgroupv2.Mount()
	if err != nil {
		return nil, err
	}
	objs := &socktargetObjects{}
	if err := loadSocktargetObjects(objs, nil); err != nil {
		return nil, backends.Unavailable("load socket tagger: %v", err)
	}
	t := &Tagger{tag: tag, refs: 1, objs: objs, root: root, next: 1, targets: map[string]*entry{}}
	t.recovered, t.recoverErr = Recover(rwndPin, tag, unclampRecorded) // of a killed helper (records_linux.go)
	registry[tag] = t
	return t, nil
}

// Close drops one reference; the last detaches the programs and frees the
// maps.
func (t *Tagger) Close() error {
	regMu.Lock()
	defer regMu.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.refs == 0 {
		return nil
	}
	t.refs--
	if t.refs > 0 {
		return nil
	}
	delete(registry, t.tag)
	err := t.detachLocked()
	t.targets = map[string]*entry{}
	return errors.Join(err, t.closeRwndLocked(), t.objs.Close())
}

// Replacements are the map replacements (ebpf.CollectionOptions) that make
// a program which includes socktarget.h read this tagger's socket_targets.
func (t *Tagger) Replacements() map[string]*ebpf.Map {
	return map[string]*ebpf.Map{"socket_targets": t.objs.SocketTargets}
}

// Number returns the number of the target with this ID, 0 when it has none.
func (t *Tagger) Number(id string) uint32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.targets[id]; e != nil {
		return e.num
	}
	return 0
}

// TargetOf returns the number of the target the socket with this cookie was
// tagged with at its creation.
func (t *Tagger) TargetOf(cookie uint64) (uint32, bool) {
	var n uint32
	if err := t.objs.SocketTargets.Lookup(cookie, &n); err != nil {
		return 0, false
	}
	return n, true
}

// Counts returns how many sockets were tagged by process and by executable,
// and how many children inherited a process target, since the tagger
// loaded.
func (t *Tagger) Counts() (byProcess, byExe, children uint64) {
	out := sumPerCPU(t.objs.Counters, 3)
	return out[0], out[1], out[2]
}

// sumPerCPU returns the first n counters of a per-CPU array, summed over
// the CPUs.
func sumPerCPU(m *ebpf.Map, n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		var per []uint64
		if err := m.Lookup(uint32(i), &per); err == nil {
			for _, v := range per {
				out[i] += v
			}
		}
	}
	return out
}

// Set registers tg or updates it: an app target by its executable (tg.Exe,
// plus the files its processes run now, which differ when the file was
// replaced) and uid, a process target by its pids. It returns the target's
// number.
func (t *Tagger) Set(tg backends.Target) (uint32, error) {
	if tg.ID == "" {
		return 0, errors.New("target has no id")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.targets[tg.ID]
	created := e == nil
	if created {
		if t.next == 0 {
			return 0, errors.New("socket tagger ran out of target numbers")
		}
		e = &entry{num: t.next}
	}
	var err error
	if tg.Kind == backends.TargetApp {
		keys := exeKeys(tg.Exe, tg.UID, tg.PIDs)
		if len(keys) == 0 && len(tg.PIDs) > 0 {
			err = fmt.Errorf("no executable file to recognise app %s by", tg.Exe)
		} else {
			// None for a rule on a program not installed (yet): its
			// processes bring their files when the rule is re-applied.
			err = t.setExesLocked(e, keys)
		}
	} else {
		err = t.setPIDsLocked(e, tg.PIDs)
	}
	if err != nil {
		if created {
			t.unsetLocked(e)
		}
		return 0, fmt.Errorf("tag sockets of target %s: %w", tg.ID, err)
	}
	if created {
		t.targets[tg.ID] = e
		t.next++
	}
	if err := t.attachLocked(); err != nil {
		if created {
			t.unsetLocked(e)
			delete(t.targets, tg.ID)
		}
		return 0, err
	}
	return e.num, nil
}

// Unset forgets the target: its processes' and executables' new sockets
// are no longer tagged. Sockets already tagged keep a number that no
// throttler uses any more. Unknown IDs are not an error.
func (t *Tagger) Unset(id string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.targets[id]
	if e == nil {
		return nil
	}
	t.unsetLocked(e)
	delete(t.targets, id)
	if len(t.targets) == 0 {
		return t.detachLocked()
	}
	return nil
}

func (t *Tagger) setExesLocked(e *entry, keys []socktargetExeKey) error {
	for _, k := range keys {
		if err := t.objs.ExeTargets.Put(k, e.num); err != nil {
			return fmt.Errorf("map executable (inode %d): %w", k.Ino, err)
		}
	}
	for _, old := range e.exes {
		if !containsKey(keys, old) {
			_ = t.objs.ExeTargets.Delete(old)
		}
	}
	e.exes = keys
	return nil
}

func containsKey(keys []socktargetExeKey, k socktargetExeKey) bool {
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}

func (t *Tagger) setPIDsLocked(e *entry, pids []int) error {
	now := make(map[int]bool, len(pids))
	for _, pid := range pids {
		if pid <= 0 {
			continue
		}
		if err := t.objs.PidTargets.Put(uint32(pid), e.num); err != nil {
			return fmt.Errorf("map process %d: %w", pid, err)
		}
		now[pid] = true
	}
	for _, pid := range e.pids {
		if !now[pid] {
			t.deletePID(pid, e.num)
		}
	}
	e.pids = e.pids[:0]
	for pid := range now {
		e.pids = append(e.pids, pid)
	}
	return nil
}

// deletePID removes pid's entry if it still names num.
func (t *Tagger) deletePID(pid int, num uint32) {
	var v uint32
	if err := t.objs.PidTargets.Lookup(uint32(pid), &v); err == nil && v == num {
		_ = t.objs.PidTargets.Delete(uint32(pid))
	}
}

// unsetLocked removes every map entry naming e, including children the
// fork tracepoint added.
func (t *Tagger) unsetLocked(e *entry) {
	for _, k := range e.exes {
		_ = t.objs.ExeTargets.Delete(k)
	}
	var pid, num uint32
	var drop []uint32
	it := t.objs.PidTargets.Iterate()
	for it.Next(&pid, &num) {
		if num == e.num {
			drop = append(drop, pid)
		}
	}
	for _, p := range drop {
		_ = t.objs.PidTargets.Delete(p)
	}
	e.exes, e.pids = nil, nil
}

func (t *Tagger) attachLocked() error {
	if len(t.links) > 0 {
		return nil
	}
	for _, p := range []struct {
		prog *ebpf.Program
		at   ebpf.AttachType
	}{
		{t.objs.CtFork, ebpf.AttachTraceRawTp},
		{t.objs.CtExit, ebpf.AttachTraceRawTp},
		{t.objs.CtTagSock, ebpf.AttachCGroupInetSockCreate},
		{t.objs.CtUntagSock, ebpf.AttachCgroupInetSockRelease},
	} {
		l, err := t.attach(p.prog, p.at)
		if err != nil {
			_ = t.detachLocked()
			return err
		}
		t.links = append(t.links, l)
	}
	return nil
}

// attach links prog with a BPF link owned by this process (never the
// legacy PROG_ATTACH, which outlives it).
func (t *Tagger) attach(prog *ebpf.Program, at ebpf.AttachType) (link.Link, error) {
	if at == ebpf.AttachTraceRawTp {
		l, err := link.AttachTracing(link.TracingOptions{Program: prog, AttachType: at})
		if err != nil {
			return nil, fmt.Errorf("attach socket tagger to a process tracepoint: %w", err)
		}
		return l, nil
	}
	f, err := os.Open(t.root)
	if err != nil {
		return nil, fmt.Errorf("open cgroup %s: %w", t.root, err)
	}
	defer f.Close()
	l, err := link.AttachRawLink(link.RawLinkOptions{Target: int(f.Fd()), Program: prog, Attach: at})
	if err != nil {
		return nil, fmt.Errorf("attach socket tagger (%s) to cgroup %s: %w", at, t.root, err)
	}
	return l, nil
}

func (t *Tagger) detachLocked() error {
	var errs []error
	for _, l := range t.links {
		if err := l.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	t.links = nil
	if len(errs) > 0 {
		return fmt.Errorf("detach socket tagger: %w", errors.Join(errs...))
	}
	return nil
}

// exeKeys returns the identities an app is recognised by: its executable's
// path and the files its processes run (/proc/PID/exe, which still names
// a file that was replaced or deleted since), each with the app's uid.
func exeKeys(exe string, uid uint32, pids []int) []socktargetExeKey {
	var keys []socktargetExeKey
	add := func(path, mountinfo string) {
		k, ok := fileKey(path, mountinfo)
		if !ok {
			return
		}
		k.Uid = uid
		if !containsKey(keys, k) {
			keys = append(keys, k)
		}
	}
	if p := strings.TrimSuffix(exe, " (deleted)"); strings.HasPrefix(p, "/") {
		add(p, "/proc/self/mountinfo")
	}
	for _, pid := range pids {
		dir := "/proc/" + strconv.Itoa(pid)
		add(dir+"/exe", dir+"/mountinfo")
	}
	return keys
}

// fileKey returns the identity the kernel program reads for the regular
// file at path: its inode and its superblock's device (s_dev). stat's
// device is the superblock's on most filesystems but not on btrfs, whose
// subvolumes report devices of their own; the superblock's is the
// major:minor mountinfo lists for the file's mount, found by mount id.
func fileKey(path, mountinfo string) (socktargetExeKey, bool) {
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, 0, unix.STATX_INO|unix.STATX_TYPE|unix.STATX_MNT_ID, &st); err != nil ||
		st.Mode&unix.S_IFMT != unix.S_IFREG {
		return socktargetExeKey{}, false
	}
	k := socktargetExeKey{Ino: st.Ino, Dev: st.Dev_major<<20 | st.Dev_minor}
	if st.Mask&unix.STATX_MNT_ID != 0 {
		if maj, min, ok := mountDevice(mountinfo, st.Mnt_id); ok {
			k.Dev = maj<<20 | min
		}
	}
	return k, true
}

// mountDevice returns the major:minor mountinfo lists for mount id.
func mountDevice(mountinfo string, id uint64) (maj, min uint32, ok bool) {
	b, err := os.ReadFile(mountinfo)
	if err != nil {
		return 0, 0, false
	}
	want := strconv.FormatUint(id, 10) + " "
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, want) {
			continue
		}
		// id parent maj:min root mountpoint ...
		f := strings.Fields(line)
		if len(f) < 3 {
			return 0, 0, false
		}
		a, c, found := strings.Cut(f[2], ":")
		x, err1 := strconv.ParseUint(a, 10, 32)
		y, err2 := strconv.ParseUint(c, 10, 32)
		return uint32(x), uint32(y), found && err1 == nil && err2 == nil
	}
	return 0, 0, false
}

// ProgramIDs returns the kernel ids of the tagger's programs, for
// diagnostics and tests (a crashed helper's must be gone).
func (t *Tagger) ProgramIDs() []ebpf.ProgramID {
	var ids []ebpf.ProgramID
	progs := []*ebpf.Program{t.objs.CtTagSock, t.objs.CtUntagSock, t.objs.CtFork, t.objs.CtExit}
	t.mu.Lock()
	if t.rw.objs != nil {
		progs = append(progs, t.rw.objs.CtClampRwnd) // the receive window clamp, once loaded
	}
	t.mu.Unlock()
	for _, p := range progs {
		if info, err := p.Info(); err == nil {
			if id, ok := info.ID(); ok {
				ids = append(ids, id)
			}
		}
	}
	return ids
}
