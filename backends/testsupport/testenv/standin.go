package testenv

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// StandIn runs the test binary again with env=value set — the package's
// TestMain turns it into a stand-in (say a helper that holds limits until
// it is killed) — and waits for it to print "ready". It returns the
// process (killed at cleanup) and the lines it printed before "ready"; a
// line starting with "error" fails the test.
func StandIn(t testing.TB, env, value string) (*exec.Cmd, []string) {
	t.Helper()
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), env+"="+value)
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })
	var lines []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "error") {
			t.Fatalf("stand-in (%s): %s", env, line)
		}
		if line == "ready" {
			return child, lines
		}
		lines = append(lines, line)
	}
	t.Fatalf("stand-in (%s) ended before it was ready: %v", env, sc.Err())
	return nil, nil
}

// MountBPF mounts a BPF file system of the test's own (a new instance) in a
// temporary directory, unmounted at cleanup, and returns the directory.
func MountBPF(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		KernelLacks(t, "a BPF file system to pin maps in", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// EstablishedTCP calls fn with a copy (pidfd_getfd) of pid's first
// established TCP connection and reports whether it found one.
func EstablishedTCP(t testing.TB, pid int, fn func(fd int) error) bool {
	t.Helper()
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pidfd)
	dir := "/proc/" + strconv.Itoa(pid) + "/fd/"
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		link, err := os.Readlink(dir + e.Name())
		fd, ferr := strconv.Atoi(e.Name())
		if err != nil || ferr != nil || !strings.HasPrefix(link, "socket:[") {
			continue
		}
		dup, err := unix.PidfdGetfd(pidfd, fd, 0)
		if err != nil {
			continue
		}
		info, err := unix.GetsockoptTCPInfo(dup, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil || info.State != unix.BPF_TCP_ESTABLISHED {
			unix.Close(dup)
			continue
		}
		err = fn(dup)
		unix.Close(dup)
		return err == nil
	}
	return false
}
