//go:build linux

package procnet

import (
	"errors"
	"net/netip"
	"os/exec"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// TestDumpAndLookup runs a dual-stack server and TCP/UDP clients in a test
// bed and checks the dump, the per-process view and single lookups.
func TestDumpAndLookup(t *testing.T) {
	bed := testenv.NewBed(t)
	srv := bed.StartServer(bed.Local, "sink", "[::]:5201", false)
	usrv := bed.StartServer(bed.Local, "sink", "[::]:5202", true)
	// Peer → local over IPv4 into the [::] listener (dual stack), and local
	// → peer over IPv6 and UDP.
	peerIn := bed.StartClient(bed.Peer, "send", testenv.LocalIP+":5201", 20*time.Second, time.Second)
	bed.StartServer(bed.Peer, "sink", "[::]:5203", false)
	out6 := bed.StartClient(bed.Local, "send", "["+testenv.PeerIP6+"]:5203", 20*time.Second, time.Second)
	bed.StartServer(bed.Peer, "sink", "0.0.0.0:5204", true)
	udp := bed.StartClient(bed.Local, "send", testenv.PeerIP+":5204", 20*time.Second, time.Second, "-udp", "-size", "1000")
	_ = peerIn
	time.Sleep(500 * time.Millisecond)

	socks, err := Dump(testenv.Path(bed.Local))
	if err != nil {
		t.Fatalf("Dump: %v", err)
	}
	l4 := netip.MustParseAddr(testenv.LocalIP)
	var accepted *Socket
	for i, s := range socks {
		if s.Proto == backends.TCP && s.Local == netip.AddrPortFrom(l4, 5201) && s.Remote.Addr() == netip.MustParseAddr(testenv.PeerIP) {
			accepted = &socks[i]
		}
	}
	if accepted == nil {
		t.Fatalf("dual-stack accepted socket with normalised IPv4 addresses not in dump: %v", socks)
	}
	if ns, err := NetNSInode(testenv.Path(bed.Local)); err != nil {
		t.Error(err)
	} else if got, err := NetNSOf(srv.Process.Pid); err != nil || got != ns {
		t.Errorf("NetNSOf(server in %s) = %d, %v; want %d", bed.Local, got, err, ns)
	}
	if accepted.Family != 10 || accepted.Inode == 0 || accepted.Cookie == 0 {
		t.Errorf("accepted socket: %+v (want family 10, inode and cookie set)", *accepted)
	}

	// The server process holds the accepted socket.
	mine, err := SocketsOf(testenv.Path(bed.Local), []int{srv.Process.Pid})
	if err != nil {
		t.Fatalf("SocketsOf: %v", err)
	}
	if !containsInode(mine, accepted.Inode) {
		t.Errorf("SocketsOf(server) = %v; lacks inode %d", mine, accepted.Inode)
	}
	m, err := ScanInodes()
	if err != nil {
		t.Fatal(err)
	}
	if m[accepted.Inode] != srv.Process.Pid {
		t.Errorf("inode map says %d holds inode %d; want server %d", m[accepted.Inode], accepted.Inode, srv.Process.Pid)
	}

	d, err := OpenDiag(testenv.Path(bed.Local))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// Single lookup of the dual-stack socket by its IPv4 addresses.
	got, err := d.Lookup(backends.TCP, accepted.Local, accepted.Remote)
	if err != nil || got.Cookie != accepted.Cookie {
		t.Errorf("Lookup(tcp %v→%v) = %+v, %v; want cookie %d", accepted.Local, accepted.Remote, got, err, accepted.Cookie)
	}
	// Also by the IPv4-mapped form.
	mapped := netip.AddrPortFrom(netip.AddrFrom16(l4.As16()), 5201)
	if got, err := d.Lookup(backends.TCP, mapped, accepted.Remote); err != nil || got.Cookie != accepted.Cookie {
		t.Errorf("Lookup with mapped local address = %+v, %v", got, err)
	}

	// IPv6 client socket of out6.
	six, err := SocketsOf(testenv.Path(bed.Local), []int{out6.PID})
	if err != nil || len(six) != 1 {
		t.Fatalf("SocketsOf(ipv6 client) = %v, %v; want one socket", six, err)
	}
	if six[0].Remote != netip.MustParseAddrPort("["+testenv.PeerIP6+"]:5203") || !six[0].Local.Addr().Is6() {
		t.Errorf("ipv6 client socket %v", six[0])
	}
	if got, err := d.Lookup(backends.TCP, six[0].Local, six[0].Remote); err != nil || got.Inode != six[0].Inode {
		t.Errorf("Lookup(ipv6) = %+v, %v", got, err)
	}

	// UDP: the connected client socket and the unconnected [::] server.
	us, err := SocketsOf(testenv.Path(bed.Local), []int{udp.PID})
	if err != nil || len(us) != 1 || us[0].Proto != backends.UDP {
		t.Fatalf("SocketsOf(udp client) = %v, %v", us, err)
	}
	if got, err := d.Lookup(backends.UDP, us[0].Local, us[0].Remote); err != nil || got.Inode != us[0].Inode {
		t.Errorf("Lookup(udp connected) = %+v, %v; want inode %d", got, err, us[0].Inode)
	}
	userv, _ := SocketsOf(testenv.Path(bed.Local), []int{usrv.Process.Pid})
	if len(userv) != 1 {
		t.Fatalf("udp server sockets %v", userv)
	}
	got, err = d.Lookup(backends.UDP, netip.AddrPortFrom(l4, 5202), netip.MustParseAddrPort(testenv.PeerIP+":40000"))
	if err != nil || got.Inode != userv[0].Inode {
		t.Errorf("Lookup(udp to wildcard listener) = %+v, %v; want inode %d", got, err, userv[0].Inode)
	}
	// Nothing there.
	if _, err := d.Lookup(backends.TCP, netip.AddrPortFrom(l4, 1), netip.MustParseAddrPort(testenv.PeerIP+":2")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lookup of nothing: err %v; want ErrNotFound", err)
	}
}

func containsInode(s []Socket, inode uint64) bool {
	for _, x := range s {
		if x.Inode == inode {
			return true
		}
	}
	return false
}

func TestBadInput(t *testing.T) {
	if _, err := SocketInodes(-1); err == nil {
		t.Error("SocketInodes(-1) succeeded")
	}
	if _, err := SocketInodes(1 << 30); err == nil {
		t.Error("SocketInodes of a missing pid succeeded")
	}
	if _, err := Dump("/nonexistent/netns"); err == nil {
		t.Error("Dump of a missing namespace succeeded")
	}
	if _, err := ReadProcess(1 << 30); err == nil {
		t.Error("ReadProcess of a missing pid succeeded")
	}
	d, err := OpenDiag("")
	if err != nil {
		testenv.Skip(t, "sock_diag: %v", err)
	}
	defer d.Close()
	a := netip.MustParseAddrPort("10.0.0.1:1")
	b := netip.MustParseAddrPort("[fd00::1]:2")
	if _, err := d.Lookup(backends.TCP, a, b); err == nil {
		t.Error("Lookup with mixed families succeeded")
	}
	if _, err := d.Lookup("sctp", a, a); err == nil {
		t.Error("Lookup of an unknown protocol succeeded")
	}
}

// TestWatchProcesses starts a short process and expects its fork, exec and
// exit events.
func TestWatchProcesses(t *testing.T) {
	testenv.RequireRoot(t)
	w, err := WatchProcesses()
	if err != nil {
		t.Fatalf("WatchProcesses: %v", err)
	}
	defer w.Close()
	cmd := exec.Command("/bin/true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	cmd.Wait()
	seen := map[EventKind]bool{}
	timeout := time.After(5 * time.Second)
	for !(seen[EventFork] && seen[EventExec] && seen[EventExit]) {
		select {
		case e := <-w.C:
			if e.PID == pid {
				seen[e.Kind] = true
			}
		case <-timeout:
			t.Fatalf("events for pid %d: %v; want fork, exec and exit", pid, seen)
		}
	}
	if err := w.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	for range w.C {
	}
}

// TestWatcherDrain: events can be read synchronously, before the watcher's
// goroutine gets to them.
func TestWatcherDrain(t *testing.T) {
	testenv.RequireRoot(t)
	w, err := WatchProcesses()
	if err != nil {
		t.Fatalf("WatchProcesses: %v", err)
	}
	defer w.Close()
	seen := map[int]bool{}
	var pids []int
	for i := 0; i < 20; i++ {
		cmd := exec.Command("/bin/true")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, cmd.Process.Pid)
		cmd.Wait()
		w.Drain(func(e ProcEvent) {
			if e.Kind == EventExec {
				seen[e.PID] = true
			}
		})
	}
	// Events the goroutine got first arrive on C.
	timeout := time.After(2 * time.Second)
	missing := func() int {
		n := 0
		for _, pid := range pids {
			if !seen[pid] {
				n++
			}
		}
		return n
	}
	for done := false; !done && missing() > 0; {
		select {
		case e := <-w.C:
			if e.Kind == EventExec {
				seen[e.PID] = true
			}
		case <-timeout:
			done = true
		}
	}
	for _, pid := range pids {
		if !seen[pid] {
			t.Errorf("exec of pid %d neither drained nor delivered", pid)
		}
	}
}

func TestReadProcess(t *testing.T) {
	cmd := exec.Command("/bin/sleep", "5")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	// exec sets the comm before the new program's arguments are in place:
	// read again while the command line is not there yet (seen once in CI).
	var info backends.ProcessInfo
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var err error
		if info, err = ReadProcess(cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
		if len(info.Cmdline) > 0 || time.Now().After(deadline) {
			break
		}
	}
	if info.Comm != "sleep" || info.Exe == "" || len(info.Cmdline) != 2 || info.Cmdline[1] != "5" || info.StartTime == 0 || info.PPID == 0 {
		t.Errorf("ReadProcess = %+v", info)
	}
	own, err1 := NetNSInode("")
	its, err2 := NetNSOf(cmd.Process.Pid)
	if err1 != nil || err2 != nil || own != its || own == 0 {
		t.Errorf("NetNSInode(\"\") = %d, %v; NetNSOf(child) = %d, %v; want equal", own, err1, its, err2)
	}
	st, err := StartTime(cmd.Process.Pid)
	if err != nil || st != info.StartTime {
		t.Errorf("StartTime = %d, %v; want %d", st, err, info.StartTime)
	}
}
