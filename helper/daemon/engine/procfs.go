package engine

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/chadthrottle/chadthrottle/backends/kernel/procnet"
)

var errESRCH = syscall.ESRCH

// pfKthread is PF_KTHREAD in the flags field of /proc/PID/stat.
const pfKthread = procnet.PFKthread

// deletedSuffix is what readlink(/proc/PID/exe) appends when the binary was
// replaced (a package upgrade); the process still belongs to that app.
const deletedSuffix = " (deleted)"

// proc is what the engine knows about one live process from /proc.
type proc struct {
	pid      int
	ppid     int
	start    uint64 // stat field 22
	uid      uint32 // effective uid (what ps shows)
	owner    uint32 // uid that owns the process for authorization; 0 when credentials are mixed
	comm     string
	exe      string // cleaned, " (deleted)" stripped; "" for kernel threads or when unreadable
	kthread  bool
	cmdline  []string
	cgroup   string // cgroup v2 path
	found    int64  // scan the process was first seen in (young processes are re-read)
	seenScan int64  // last scan that saw it
	key      appKey // the app it belongs to
}

// procFS reads processes from a /proc tree (the real one or a test's).
type procFS struct {
	root string
}

func (p procFS) path(pid int, name string) string {
	return filepath.Join(p.root, strconv.Itoa(pid), name)
}

// pids lists the numeric entries of the proc root.
func (p procFS) pids() ([]int, error) {
	d, err := os.Open(p.root)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	out := make([]int, 0, len(names))
	for _, n := range names {
		if n == "" || n[0] < '0' || n[0] > '9' {
			continue
		}
		pid, err := strconv.Atoi(n)
		if err != nil || pid <= 0 {
			continue
		}
		out = append(out, pid)
	}
	return out, nil
}

// errGone says the process does not exist (any more).
var errGone = errors.New("no such process")

// stat reads /proc/PID/stat: comm, ppid, flags, starttime.
func (p procFS) stat(pid int) (comm string, ppid int, kthread bool, start uint64, err error) {
	b, err := readProcFile(p.path(pid, "stat"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errESRCH) {
			return "", 0, false, 0, errGone
		}
		return "", 0, false, 0, err
	}
	return parseStat(b)
}

func parseStat(b []byte) (comm string, ppid int, kthread bool, start uint64, err error) {
	st, err := procnet.ParseStat(b)
	return st.Comm, st.PPID, st.Kthread(), st.StartTime, err
}

// readProcFile reads a small file with plain system calls: no *os.File,
// finalizer or poller registration, which matters when every process's
// files are read every second.
func readProcFile(path string) ([]byte, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	for err == syscall.EINTR {
		fd, err = syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	b, err := readFD(fd, 1024, 1<<20)
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	return b, nil
}

// readFD reads fd to its end, starting with a buffer of size bytes; past
// limit it stops and returns what it has.
func readFD(fd int, size, limit int) ([]byte, error) {
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			if len(buf) >= limit {
				return buf, nil
			}
			buf = append(buf, make([]byte, len(buf))...)[:len(buf)]
		}
		n, err := syscall.Read(fd, buf[len(buf):min(cap(buf), limit)])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

// uids reads the Uid: line of /proc/PID/status: real, effective, saved, fs.
func (p procFS) uids(pid int) ([4]uint32, error) {
	var out [4]uint32
	b, err := readProcFile(p.path(pid, "status"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errESRCH) {
			return out, errGone
		}
		return out, err
	}
	return parseUIDs(b)
}

func parseUIDs(b []byte) ([4]uint32, error) {
	var out [4]uint32
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		rest, ok := bytes.CutPrefix(line, []byte("Uid:"))
		if !ok {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) < 4 {
			return out, errors.New("malformed status: short Uid line")
		}
		for i := 0; i < 4; i++ {
			n, err := strconv.ParseUint(f[i], 10, 32)
			if err != nil {
				return out, fmt.Errorf("malformed status Uid: %w", err)
			}
			out[i] = uint32(n)
		}
		return out, nil
	}
	return out, errors.New("malformed status: no Uid line")
}

// exe resolves /proc/PID/exe; "" when there is none (kernel threads,
// zombies).
func (p procFS) exe(pid int) string {
	s, err := os.Readlink(p.path(pid, "exe"))
	if err != nil {
		return ""
	}
	return cleanExe(s)
}

// cleanExe strips the " (deleted)" suffix and cleans a path; relative or
// empty paths give "".
func cleanExe(s string) string {
	s = strings.TrimSuffix(s, deletedSuffix)
	if !strings.HasPrefix(s, "/") {
		return ""
	}
	return filepath.Clean(s)
}

func (p procFS) cmdline(pid int) []string {
	b, err := readProcFile(p.path(pid, "cmdline"))
	if err != nil || len(b) == 0 {
		return nil
	}
	b = bytes.TrimRight(b, "\x00")
	if len(b) > 4096 {
		b = b[:4096]
	}
	return strings.Split(string(b), "\x00")
}

// cgroup returns the process's cgroup v2 path (the "0::" line).
func (p procFS) cgroup(pid int) string {
	b, err := readProcFile(p.path(pid, "cgroup"))
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			return rest
		}
	}
	return ""
}

// read reads one process fully. It returns errGone when the process does
// not exist.
func (p procFS) read(pid int) (*proc, error) {
	comm, ppid, kthread, start, err := p.stat(pid)
	if err != nil {
		return nil, err
	}
	pr := &proc{pid: pid, ppid: ppid, start: start, comm: comm, kthread: kthread}
	if err := p.refreshCreds(pr); err != nil {
		return nil, err
	}
	if !kthread {
		pr.exe = p.exe(pid)
		pr.cmdline = p.cmdline(pid)
		pr.cgroup = p.cgroup(pid)
	}
	// The process may have exited and its pid been reused while we read:
	// check the start time again.
	if _, _, _, start2, err := p.stat(pid); err != nil || start2 != start {
		return nil, errGone
	}
	return pr, nil
}

func (p procFS) refreshCreds(pr *proc) error {
	u, err := p.uids(pr.pid)
	if err != nil {
		return err
	}
	pr.uid = u[1]
	pr.owner = u[1]
	if u[0] != u[1] || u[1] != u[2] {
		pr.owner = 0 // mixed credentials (setuid): only an administrator may touch it
	}
	return nil
}
