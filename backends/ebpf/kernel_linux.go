//go:build linux

package ebpf

import (
	"errors"
	"fmt"
	"os"

	cilium "github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/kernel/cgroupv2"
	"github.com/chadthrottle/chadthrottle/backends/kernel/procnet"
)

// probeKernel checks what every eBPF backend needs: privileges, the BPF
// program types, BPF links on cgroups and a cgroup2 mount. It returns an
// error wrapping errors.ErrUnsupported that names what is missing.
func probeKernel() error {
	if err := rlimit.RemoveMemlock(); err != nil {
		return backends.Unavailable("cannot lift the memlock limit for BPF maps: %v", err)
	}
	for _, pt := range []struct {
		t    cilium.ProgramType
		name string
	}{
		{cilium.CGroupSKB, "BPF_PROG_TYPE_CGROUP_SKB"},
		{cilium.CGroupSock, "BPF_PROG_TYPE_CGROUP_SOCK"},
	} {
		if err := features.HaveProgramType(pt.t); err != nil {
			if errors.Is(err, unix.EPERM) {
				return backends.Unavailable("loading BPF programs is not permitted (needs CAP_BPF and CAP_NET_ADMIN; euid %d): %v", os.Geteuid(), err)
			}
			if errors.Is(err, cilium.ErrNotSupported) {
				return backends.Unavailable("kernel lacks %s (CONFIG_CGROUP_BPF / CONFIG_BPF_SYSCALL): %v", pt.name, err)
			}
			return fmt.Errorf("probe %s: %w", pt.name, err)
		}
	}
	if err := features.HaveMapType(cilium.LRUHash); err != nil {
		return backends.Unavailable("kernel lacks BPF LRU hash maps: %v", err)
	}
	mount, err := cgroupv2.Mount()
	if err != nil {
		return err
	}
	if _, err := os.Stat(mount + "/cgroup.procs"); err != nil {
		return backends.Unavailable("cgroup2 mount %s is unusable: %v", mount, err)
	}
	return nil
}

// probeLoad loads a collection spec into the kernel and drops it again: the
// verifier is the final word on whether the programs and helpers work here.
func probeLoad(spec *cilium.CollectionSpec, what string) error {
	coll, err := cilium.NewCollection(spec)
	if err != nil {
		var ve *cilium.VerifierError
		if errors.As(err, &ve) {
			return backends.Unavailable("kernel verifier rejected the %s programs: %v", what, err)
		}
		if errors.Is(err, cilium.ErrNotSupported) || errors.Is(err, unix.EINVAL) {
			return backends.Unavailable("kernel cannot load the %s programs: %v", what, err)
		}
		return fmt.Errorf("load %s programs: %w", what, err)
	}
	coll.Close()
	return nil
}

// attachCgroup attaches prog to the cgroup at dir with a BPF link owned by
// this process (never the legacy, process-independent PROG_ATTACH): the
// kernel detaches it when the process exits, even on a crash.
func attachCgroup(dir string, prog *cilium.Program, at cilium.AttachType) (link.Link, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("open cgroup %s: %w", dir, err)
	}
	defer f.Close()
	l, err := link.AttachRawLink(link.RawLinkOptions{Target: int(f.Fd()), Program: prog, Attach: at})
	if err != nil {
		if errors.Is(err, cilium.ErrNotSupported) {
			return nil, backends.Unavailable("kernel lacks BPF links for cgroups: %v", err)
		}
		return nil, fmt.Errorf("attach %s program to cgroup %s: %w", at, dir, err)
	}
	return l, nil
}

// netnsCookie returns the cookie of the network namespace at path ("" = the
// caller's own), as bpf_get_netns_cookie reports it.
func netnsCookie(path string) (uint64, error) {
	fd, err := procnet.SocketAt(path, unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("open socket in network namespace %q: %w", path, err)
	}
	defer unix.Close(fd)
	c, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
	if err != nil {
		return 0, fmt.Errorf("read network namespace cookie: %w", err)
	}
	return c, nil
}

// attachDir is where programs are attached: the given cgroup directory or
// the cgroup2 mount.
func attachDir(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	return cgroupv2.Mount()
}

// monotonicNow returns CLOCK_MONOTONIC in nanoseconds, the clock of
// bpf_ktime_get_ns.
func monotonicNow() uint64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}
