//go:build linux

package procnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// EventKind says what happened to a process.
type EventKind int

// Process events. Lost means the kernel dropped events (the listener fell
// behind): a consumer should rescan /proc.
const (
	EventFork EventKind = iota + 1
	EventExec
	EventExit
	EventLost
	// EventCreds: the process changed its uid or gid (setuid, setgid).
	EventCreds
)

func (k EventKind) String() string {
	switch k {
	case EventFork:
		return "fork"
	case EventExec:
		return "exec"
	case EventExit:
		return "exit"
	case EventLost:
		return "lost"
	case EventCreds:
		return "creds"
	}
	return fmt.Sprintf("event(%d)", int(k))
}

// ProcEvent is one proc connector event about a process (thread-group
// leader; thread events are not reported).
type ProcEvent struct {
	Kind EventKind
	PID  int
	PPID int // fork: the parent
}

// proc connector constants (linux/connector.h, linux/cn_proc.h).
const (
	cnIdxProc         = 1
	cnValProc         = 1
	procCnMcastListen = 1
	procEventFork     = 0x1
	procEventExec     = 0x2
	procEventUID      = 0x4
	procEventGID      = 0x40
	procEventExit     = 0x80000000
	sizeofCnMsg       = 20
)

// Watcher listens to the kernel's proc connector (PROC_EVENTS) for fork,
// exec and exit of processes. Events are delivered on C.
type Watcher struct {
	// C receives events; when the consumer falls behind, events are
	// dropped and an EventLost is delivered instead.
	C      <-chan ProcEvent
	c      chan ProcEvent
	f      *os.File
	fd     int
	mu     sync.RWMutex // Drain vs Close
	closed bool
	once   sync.Once
	done   chan struct{}
}

// ProbeConnector reports whether the proc connector can be used here.
func ProbeConnector() error {
	w, err := WatchProcesses()
	if err != nil {
		return err
	}
	return w.Close()
}

// WatchProcesses subscribes to the proc connector. The caller must Close the
// watcher. It needs CAP_NET_ADMIN and the init user namespace.
func WatchProcesses() (*Watcher, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_CONNECTOR)
	if err != nil {
		return nil, fmt.Errorf("open proc connector socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: cnIdxProc, Pid: 0}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind proc connector socket: %w", err)
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
	msg := make([]byte, unix.NLMSG_HDRLEN+sizeofCnMsg+4)
	binary.NativeEndian.PutUint32(msg[0:], uint32(len(msg)))
	binary.NativeEndian.PutUint16(msg[4:], unix.NLMSG_DONE)
	binary.NativeEndian.PutUint32(msg[12:], uint32(os.Getpid()))
	cn := msg[unix.NLMSG_HDRLEN:]
	binary.NativeEndian.PutUint32(cn[0:], cnIdxProc)
	binary.NativeEndian.PutUint32(cn[4:], cnValProc)
	binary.NativeEndian.PutUint16(cn[16:], 4)
	binary.NativeEndian.PutUint32(cn[20:], procCnMcastListen)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("subscribe to proc connector: %w", err)
	}
	c := make(chan ProcEvent, 8192)
	w := &Watcher{C: c, c: c, f: os.NewFile(uintptr(fd), "proc-connector"), fd: fd, done: make(chan struct{})}
	go w.run()
	return w, nil
}

// Close stops the watcher; C is closed once the reader has finished.
func (w *Watcher) Close() error {
	var err error
	w.once.Do(func() {
		w.mu.Lock()
		w.closed = true
		err = w.f.Close()
		w.mu.Unlock()
		<-w.done
	})
	return err
}

// Drain reads, on the caller's goroutine and without blocking, the events
// the kernel has queued but the watcher's goroutine has not read yet, and
// passes them to fn (not to C). Use it when an event must not be missed
// because the watcher's goroutine was slow to be scheduled.
func (w *Watcher) Drain(fn func(ProcEvent)) {
	// The raw descriptor is read directly: going through w.f would wait
	// for the goroutine's pending Read.
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return
	}
	buf := make([]byte, 16<<10)
	for {
		n, _, err := unix.Recvfrom(w.fd, buf, unix.MSG_DONTWAIT)
		if err != nil || n <= 0 {
			return
		}
		parseEvents(buf[:n], fn)
	}
}

func parseEvents(b []byte, fn func(ProcEvent)) {
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(binary.NativeEndian.Uint32(b[0:]))
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			return
		}
		if e, ok := parseProcEvent(b[unix.NLMSG_HDRLEN:l]); ok {
			fn(e)
		}
		b = b[min(nlmAlign(l), len(b)):]
	}
}

func (w *Watcher) run() {
	defer close(w.done)
	defer close(w.c)
	buf := make([]byte, 64<<10)
	lost := false
	send := func(e ProcEvent) {
		if lost {
			select {
			case w.c <- ProcEvent{Kind: EventLost}:
				lost = false
			default:
				return
			}
		}
		select {
		case w.c <- e:
		default:
			lost = true
		}
	}
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			if errors.Is(err, unix.ENOBUFS) {
				lost = true
				send(ProcEvent{Kind: EventLost})
				continue
			}
			if errors.Is(err, os.ErrClosed) {
				return
			}
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
				continue
			}
			return
		}
		parseEvents(buf[:n], send)
	}
}

func parseProcEvent(b []byte) (ProcEvent, bool) {
	if len(b) < sizeofCnMsg+16 {
		return ProcEvent{}, false
	}
	if binary.NativeEndian.Uint32(b[0:]) != cnIdxProc || binary.NativeEndian.Uint32(b[4:]) != cnValProc {
		return ProcEvent{}, false
	}
	ev := b[sizeofCnMsg:]
	what := binary.NativeEndian.Uint32(ev[0:])
	data := ev[16:]
	u32 := func(i int) int {
		if len(data) < 4*(i+1) {
			return -1
		}
		return int(int32(binary.NativeEndian.Uint32(data[4*i:])))
	}
	switch what {
	case procEventFork:
		// parent_pid, parent_tgid, child_pid, child_tgid
		if u32(2) != u32(3) || u32(3) <= 0 {
			return ProcEvent{}, false // a new thread
		}
		return ProcEvent{Kind: EventFork, PID: u32(3), PPID: u32(1)}, true
	case procEventExec:
		// process_pid, process_tgid
		if u32(1) <= 0 {
			return ProcEvent{}, false
		}
		return ProcEvent{Kind: EventExec, PID: u32(1)}, true
	case procEventUID, procEventGID:
		// process_pid, process_tgid, ruid/rgid, euid/egid
		if u32(0) != u32(1) || u32(1) <= 0 {
			return ProcEvent{}, false // one thread's credentials
		}
		return ProcEvent{Kind: EventCreds, PID: u32(1)}, true
	case procEventExit:
		// process_pid, process_tgid, exit_code, exit_signal, parent_pid, parent_tgid
		if u32(0) != u32(1) || u32(1) <= 0 {
			return ProcEvent{}, false // a thread ended
		}
		return ProcEvent{Kind: EventExit, PID: u32(1), PPID: u32(5)}, true
	}
	return ProcEvent{}, false
}
