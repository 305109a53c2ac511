//go:build linux

package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Files a user controls (their .desktop files, paths they give) are read
// by the root helper only:
//   - on a thread of its own whose file-system uid and gid are the user's
//     and which has no supplementary groups, so the kernel checks access as
//     for that user (a link to another user's private file fails); the
//     thread is never handed back to the Go runtime, so its credentials die
//     with it;
//   - with O_NONBLOCK (a FIFO does not block the open), regular files only
//     (fstat), up to a size cap;
//   - never while holding an engine lock: callers wait with a time budget
//     or not at all.

// errNotRegular: the path is not a regular file (FIFO, device, directory).
var errNotRegular = errors.New("not a regular file")

// asUser runs fn on a fresh OS thread with uid's file-system credentials
// (gid as its group, no supplementary groups) and returns once fn returns
// or after timeout, whichever comes first; fn may go on running after a
// timeout (a hung file system), so it must only hand results back through
// what it closes over safely. A helper that is not root reads as itself.
func asUser(uid, gid uint32, timeout time.Duration, fn func()) error {
	done := make(chan error, 1)
	go func() {
		if os.Geteuid() == 0 {
			// Never unlocked: the runtime ends the thread with this
			// goroutine, so the changed credentials are never reused.
			runtime.LockOSThread()
			if err := dropFSCreds(uid, gid); err != nil {
				done <- err
				return
			}
		}
		fn()
		done <- nil
	}()
	if timeout <= 0 {
		return <-done
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return fmt.Errorf("reading as uid %d took longer than %v", uid, timeout)
	}
}

// dropFSCreds sets this thread's (not the process's: raw system calls, not
// the libc or Go wrappers that change every thread) supplementary groups,
// fs gid and fs uid, and checks that the kernel took them.
func dropFSCreds(uid, gid uint32) error {
	if _, _, e := syscall.RawSyscall(syscall.SYS_SETGROUPS, 0, 0, 0); e != 0 {
		return fmt.Errorf("drop supplementary groups: %w", e)
	}
	syscall.RawSyscall(syscall.SYS_SETFSGID, uintptr(gid), 0, 0)
	syscall.RawSyscall(syscall.SYS_SETFSUID, uintptr(uid), 0, 0)
	// setfs[ug]id return the previous value and never fail; asking with
	// an invalid id (-1) returns the current one.
	curGID, _, _ := syscall.RawSyscall(syscall.SYS_SETFSGID, ^uintptr(0), 0, 0)
	curUID, _, _ := syscall.RawSyscall(syscall.SYS_SETFSUID, ^uintptr(0), 0, 0)
	if uint32(curUID) != uid || uint32(curGID) != gid {
		return fmt.Errorf("could not take uid %d / gid %d to read that user's files (have %d/%d)", uid, gid, curUID, curGID)
	}
	return nil
}

// readRegular reads a regular file of at most limit bytes. The open never
// blocks (O_NONBLOCK: a FIFO opens at once and is then refused).
func readRegular(path string, limit int64) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, &fs.PathError{Op: "open", Path: path, Err: errNotRegular}
	}
	if st.Size > limit {
		return nil, &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("file is %d bytes (at most %d read)", st.Size, limit)}
	}
	buf, err := readFD(fd, int(min(st.Size+1, limit+1)), int(limit+1))
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	if int64(len(buf)) > limit {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("file grew past %d bytes", limit)}
	}
	return buf, nil
}

// readDirNames lists at most max entries of a directory without blocking
// on a FIFO in its place.
func readDirNames(dir string, max int) ([]os.DirEntry, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	f := os.NewFile(uintptr(fd), dir)
	defer f.Close()
	return f.ReadDir(max)
}

// pidfdOpen returns a pidfd for pid, or -1 when the kernel has none
// (before Linux 5.3); errESRCH when there is no such process.
func pidfdOpen(pid int) (int, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err == unix.ESRCH {
		return -1, errESRCH
	}
	if err != nil {
		return -1, nil
	}
	return fd, nil
}

// pidfdAlive reports whether the pidfd's process has not exited (true
// without a pidfd).
func pidfdAlive(fd int) bool {
	if fd < 0 {
		return true
	}
	return unix.PidfdSendSignal(fd, 0, nil, 0) != unix.ESRCH
}

func pidfdClose(fd int) {
	if fd >= 0 {
		unix.Close(fd)
	}
}
