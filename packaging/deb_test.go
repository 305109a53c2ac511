//go:build linux

package packaging

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/helper/api"
)

// The system bus socket. dbus-daemon-launch-helper hands activated services
// this address whatever bus started them, so the bus this test starts must
// listen here for activation to work.
const systemBusSocket = "/run/dbus/system_bus_socket"

const polkitd = "/usr/lib/polkit-1/polkitd"

// Where the packaged files and the helper's state may appear.
var watchedRoots = []string{"/usr/bin", "/usr/libexec", "/usr/share/applications", "/usr/share/metainfo",
	"/usr/share/icons/hicolor", "/usr/share/dbus-1", "/usr/share/polkit-1/actions", "/usr/lib/systemd/system",
	"/lib/systemd/system", "/etc/xdg/autostart", "/etc/systemd/system", "/etc/dbus-1", "/usr/share/man/man1", "/usr/share/man/man8",
	"/usr/share/bash-completion/completions", "/usr/share/zsh/vendor-completions", "/usr/share/fish/vendor_completions.d", StateDir, RuntimeDir}

// systemFiles lists the product's paths on the system: everything in
// watchedRoots whose path names chadthrottle, except the polkit policies
// other packages' tests install under test names.
func systemFiles(t testing.TB) []string {
	t.Helper()
	var paths []string
	for _, root := range watchedRoots {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // a missing root is fine
			}
			base := filepath.Base(p)
			if strings.Contains(p, "chadthrottle") && !strings.Contains(base, ".test-") && !strings.Contains(base, "-test-") {
				paths = append(paths, p)
			}
			return nil
		})
	}
	sort.Strings(paths)
	return slices.Compact(paths)
}

// kernelState lists the kernel objects a production helper (Tag "") owns:
// its cgroup below the cgroup2 root, IFB devices and HTB roots in the root
// network namespace (names and handles from backends/kernel/cgroupv2 and
// backends/throttle/tc).
func kernelState(t testing.TB) []string {
	t.Helper()
	var state []string
	if root := cgroup2Root(t); root != "" {
		if _, err := os.Stat(filepath.Join(root, "chadthrottle")); err == nil {
			state = append(state, "cgroup "+filepath.Join(root, "chadthrottle"))
		}
	}
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ifs {
		if strings.HasPrefix(i.Name, "ctifb") {
			state = append(state, "link "+i.Name)
		}
	}
	out, err := exec.Command("tc", "qdisc", "show").CombinedOutput()
	if err != nil {
		t.Fatalf("tc qdisc show: %v\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, " c7a1:") || strings.Contains(l, " c7a2:") {
			state = append(state, "qdisc "+l)
		}
	}
	return state
}

func cgroup2Root(t testing.TB) string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		for i, fld := range fields {
			if fld == "-" && i+1 < len(fields) && fields[i+1] == "cgroup2" {
				return fields[4]
			}
		}
	}
	return ""
}

// bpfObjects lists the BPF programs, maps and links a process holds open
// (from /proc/PID/fdinfo), as "prog 12", "map 7", "link 3".
func bpfObjects(t testing.TB, pid int) []string {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fdinfo", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	var objs []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		for _, l := range strings.Split(string(b), "\n") {
			for _, kind := range []string{"prog", "map", "link"} {
				if v, ok := strings.CutPrefix(l, kind+"_id:"); ok {
					objs = append(objs, kind+" "+strings.TrimSpace(v))
				}
			}
		}
	}
	sort.Strings(objs)
	return slices.Compact(objs)
}

// bpfAlive returns the objects of bpfObjects that still exist in the
// kernel (IDs are allocated cyclically, so a gone ID is not reused soon).
func bpfAlive(t testing.TB, objs []string) []string {
	t.Helper()
	var alive []string
	for _, o := range objs {
		kind, v, _ := strings.Cut(o, " ")
		id, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			t.Fatalf("bpf object %q: %v", o, err)
		}
		var closer interface{ Close() error }
		switch kind {
		case "prog":
			closer, err = ebpf.NewProgramFromID(ebpf.ProgramID(id))
		case "map":
			closer, err = ebpf.NewMapFromID(ebpf.MapID(id))
		case "link":
			closer, err = link.NewFromID(link.ID(id))
		}
		if err == nil {
			closer.Close()
			alive = append(alive, o)
		} else if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("look up bpf %s: %v", o, err)
		}
	}
	return alive
}

// running reports whether a process runs (exists and is not a zombie).
func running(pid int) bool {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && !strings.Contains(string(st), ") Z ")
}

// setAside moves dir (if it exists) out of the way for the test and puts
// it back at the end.
func setAside(t testing.TB, dir string) {
	t.Helper()
	if _, err := os.Lstat(dir); err != nil {
		return
	}
	aside := filepath.Join(tmpRoot, "aside-"+filepath.Base(dir)+"-"+strconv.Itoa(int(time.Now().UnixNano())))
	if err := os.Rename(dir, aside); err != nil {
		t.Fatalf("set %s aside: %v", dir, err)
	}
	t.Logf("moved the existing %s aside for the test", dir)
	t.Cleanup(func() {
		os.RemoveAll(dir)
		if err := os.Rename(aside, dir); err != nil {
			t.Errorf("put %s back: %v (it is in %s)", dir, err, aside)
		}
	})
}

// busRunning reports whether something answers on the system bus socket.
func busRunning() bool {
	c, err := net.DialTimeout("unix", systemBusSocket, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// dbusSend runs dbus-send on the system bus.
func dbusSend(args ...string) (string, error) {
	out, err := exec.Command("dbus-send", append([]string{"--system", "--print-reply=literal"}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func nameOwnerPID(name string) (int, error) {
	out, err := dbusSend("--dest=org.freedesktop.DBus", "/org/freedesktop/DBus",
		"org.freedesktop.DBus.GetConnectionUnixProcessID", "string:"+name)
	if err != nil {
		return 0, fmt.Errorf("%w: %s", err, out)
	}
	f := strings.Fields(out) // "uint32 1234"
	if len(f) != 2 {
		return 0, fmt.Errorf("unexpected reply %q", out)
	}
	return strconv.Atoi(f[1])
}

func waitFor(t testing.TB, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startDaemon starts a long-running root daemon, stopped (SIGTERM, then
// SIGKILL) at the end of the test; its output goes to the test log then.
func startDaemon(t testing.TB, env []string, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	log, err := os.CreateTemp(tmpRoot, filepath.Base(name)+"-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		out, _ := os.ReadFile(log.Name())
		t.Logf("%s output:\n%s", name, out)
		log.Close()
	})
	return cmd
}

// TestDebInstall builds the .deb, installs it for real with dpkg, checks the
// installed desktop files, AppStream metadata and polkit actions, lets a
// system bus started with the installed configuration activate the helper
// on the first call, then removes and purges the package and checks that no
// file and no kernel state is left.
func TestDebInstall(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "dpkg", "dpkg-deb", "dpkg-query", "dbus-daemon", "dbus-send", "pkaction",
		"desktop-file-validate", "appstreamcli", "tc", "sleep")
	if _, err := os.Stat(polkitd); err != nil {
		testenv.Skip(t, "needs %s (Debian package polkitd)", polkitd)
	}
	if out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", "chadthrottle").Output(); err == nil && strings.Contains(string(out), "installed") {
		t.Fatalf("chadthrottle is already installed here (%s); this test installs and purges it, so it will not touch an existing installation", out)
	}
	deb := onlyFile(t, filepath.Join(built(t), "dist"), "*.deb")
	// A test binary that times out exits without running cleanups, which
	// would leave the package installed: start only with time to spare.
	if dl, ok := t.Deadline(); ok && time.Until(dl) < 2*time.Minute {
		t.Fatalf("only %v left before the test deadline; installing and purging needs more (go test -timeout 20m)", time.Until(dl).Round(time.Second))
	}
	// Purge deletes the state directories: keep a developer's rules (from
	// make run or an earlier install) safe and out of the comparison.
	for _, dir := range []string{StateDir, RuntimeDir} {
		setAside(t, dir)
	}

	filesBefore := systemFiles(t)
	kernelBefore := kernelState(t)
	if len(kernelBefore) > 0 {
		t.Fatalf("production kernel state exists before the test (another helper runs?): %q", kernelBefore)
	}

	installed := false
	t.Cleanup(func() {
		if installed { // the test failed half way: leave the machine as it was
			if out, err := exec.Command("dpkg", "--purge", "chadthrottle").CombinedOutput(); err != nil {
				t.Errorf("cleanup: dpkg --purge: %v\n%s", err, out)
			}
		}
	})

	// Install.
	installed = true
	t.Logf("dpkg -i %s:\n%s", filepath.Base(deb), run(t, nil, "dpkg", "-i", deb))

	list := strings.Fields(run(t, nil, "dpkg-query", "-L", "chadthrottle"))
	for _, f := range Files() {
		if !slices.Contains(list, f.Dst) {
			t.Errorf("dpkg -L lacks %s", f.Dst)
		}
		info, err := os.Stat(f.Dst)
		if err != nil {
			t.Errorf("installed file: %v", err)
		} else if info.Mode().Perm() != f.Mode {
			t.Errorf("%s: mode %v, want %v", f.Dst, info.Mode().Perm(), f.Mode)
		}
	}
	if info, err := os.Stat(StateDir); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("state directory %s: %v (mode %v), want mode 0700", StateDir, err, info.Mode().Perm())
	}

	// Desktop integration.
	for _, f := range Files() {
		switch {
		case strings.HasSuffix(f.Dst, ".desktop"):
			run(t, nil, "desktop-file-validate", f.Dst)
		case strings.HasSuffix(f.Dst, ".metainfo.xml"):
			run(t, nil, "appstreamcli", "validate", "--no-net", f.Dst)
		}
	}

	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		run(t, nil, "systemd-analyze", "verify", "/usr/lib/systemd/system/"+UnitName)
	} else {
		t.Logf("systemd-analyze is not installed: the unit is not verified")
	}

	// A system bus with the installed configuration (system.conf includes
	// system.d and the standard system-services directories), and polkitd.
	var busEnv []string
	if busRunning() {
		t.Logf("a system bus already runs on %s: using it (the package's postinst asked it to reload)", systemBusSocket)
	} else {
		startDaemon(t, nil, "dbus-daemon", "--system", "--nofork", "--nopidfile", "--nosyslog")
		waitFor(t, "the system bus", 10*time.Second, busRunning)
		t.Cleanup(func() { os.Remove(systemBusSocket) }) // dbus-daemon leaves it behind
	}
	busEnv = []string{"DBUS_SYSTEM_BUS_ADDRESS=unix:path=" + systemBusSocket}
	if _, err := nameOwnerPID("org.freedesktop.PolicyKit1"); err != nil {
		startDaemon(t, busEnv, polkitd, "--no-debug")
		waitFor(t, "polkitd on the bus", 20*time.Second, func() bool {
			_, err := nameOwnerPID("org.freedesktop.PolicyKit1")
			return err == nil
		})
	}

	// polkit loads the installed actions with the contract's defaults.
	wantImplicit := map[string]string{api.ActionMonitor: "yes", api.ActionLimitOwn: "yes", api.ActionManage: "auth_admin_keep"}
	for _, id := range api.Actions {
		out := run(t, busEnv, "pkaction", "--action-id", id, "--verbose")
		fields := map[string]string{}
		for _, l := range strings.Split(out, "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok {
				fields[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		}
		if fields["implicit active"] != wantImplicit[id] || fields["vendor"] != "ChadThrottle" || fields["message"] == "" {
			t.Errorf("pkaction %s: want implicit active %s, vendor ChadThrottle and a message:\n%s", id, wantImplicit[id], out)
		}
	}

	// The first call by name activates the helper through
	// dbus-daemon-launch-helper (or systemd, where it runs).
	if pid, err := nameOwnerPID(api.BusName); err == nil {
		t.Fatalf("%s already has an owner (pid %d) before the first call", api.BusName, pid)
	}
	start := time.Now()
	if out, err := dbusSend("--dest="+api.BusName, api.ObjectPath, "org.freedesktop.DBus.Peer.Ping"); err != nil {
		t.Fatalf("first call to %s did not activate the helper: %v\n%s", api.BusName, err, out)
	}
	t.Logf("activation + Ping took %v", time.Since(start).Round(time.Millisecond))
	pid, err := nameOwnerPID(api.BusName)
	if err != nil {
		t.Fatalf("after activation: %v", err)
	}
	if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); exe != HelperPath {
		t.Errorf("%s is owned by pid %d running %q, want %s", api.BusName, pid, exe, HelperPath)
	}

	// Reinstalling (what an upgrade does) stops the running helper and
	// starts the new binary, so rules apply again at once.
	t.Logf("dpkg -i again (reinstall):\n%s", run(t, busEnv, "dpkg", "-i", deb))
	if running(pid) {
		t.Errorf("helper pid %d still runs after the package was reinstalled", pid)
	}
	newPID, err := nameOwnerPID(api.BusName)
	if err != nil {
		t.Fatalf("no helper on the bus after reinstall (postinst should start it again): %v", err)
	}
	if newPID == pid {
		t.Errorf("the helper was not restarted by the reinstall (pid %d)", pid)
	}
	pid = newPID
	if _, err := os.Stat(filepath.Join(RuntimeDir, "restart-after-upgrade")); err == nil {
		t.Errorf("postinst left its restart mark")
	}

	// The installed CLI talks to it: as root (uid 0 passes polkit) and as
	// an unprivileged user without a session, whom polkit's defaults refuse.
	ctl := "/usr/bin/chadthrottlectl"
	out := run(t, busEnv, ctl, "backends")
	t.Logf("chadthrottlectl backends:\n%s", out)
	nobody := exec.Command(ctl, "top")
	nobody.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=/nonexistent"}, busEnv...)
	nobody.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	nout, err := nobody.CombinedOutput()
	if err == nil || !strings.Contains(string(nout), "not authorized") {
		t.Errorf("chadthrottlectl top as nobody (no active session): want a polkit refusal, got %v:\n%s", err, nout)
	}

	// Give the helper kernel state: limit a process of ours.
	sleeper := exec.Command("sleep", "600")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })
	cgBefore, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", sleeper.Process.Pid))
	run(t, busEnv, ctl, "limit", "--pid", strconv.Itoa(sleeper.Process.Pid), "--up", "1MB/s", "--down", "1MB/s")
	during := kernelState(t)
	t.Logf("kernel state with a limit: %q", during)
	helperBPF := bpfObjects(t, pid)
	t.Logf("BPF objects the helper holds: %d (%q)", len(helperBPF), helperBPF)
	if len(during) == 0 && len(helperBPF) == 0 {
		t.Errorf("no production kernel state while a limit is active: the no-leftovers check below proves nothing")
	}

	// Remove: prerm stops the helper, which cleans its kernel state.
	t.Logf("dpkg -r:\n%s", run(t, busEnv, "dpkg", "-r", "chadthrottle"))
	if _, err := nameOwnerPID(api.BusName); err == nil {
		t.Errorf("%s still has an owner after dpkg -r", api.BusName)
	}
	if running(pid) {
		t.Errorf("helper pid %d still runs after dpkg -r", pid)
	}
	if left := kernelState(t); len(left) > 0 {
		t.Errorf("kernel state left after dpkg -r: %q", left)
	}
	if alive := bpfAlive(t, helperBPF); len(alive) > 0 {
		t.Errorf("BPF objects of the helper still loaded after dpkg -r: %q", alive)
	}
	if cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", sleeper.Process.Pid)); string(cg) != string(cgBefore) {
		t.Errorf("limited process not moved back: cgroup %q, was %q", cg, cgBefore)
	}
	var left []string
	for _, p := range systemFiles(t) {
		if !slices.Contains(filesBefore, p) {
			left = append(left, p)
		}
	}
	// dpkg -r keeps conffiles and the state directory until purge
	wantLeft := []string{StateDir}
	for _, f := range Files() {
		if f.Config {
			wantLeft = append(wantLeft, f.Dst)
		}
	}
	sort.Strings(wantLeft)
	var unexpected []string
	for _, p := range left {
		if !slices.Contains(wantLeft, p) && !strings.HasPrefix(p, StateDir+"/") {
			unexpected = append(unexpected, p)
		}
	}
	if len(unexpected) > 0 {
		t.Errorf("dpkg -r left %q (only conffiles and %s may stay until purge)", unexpected, StateDir)
	}

	// Purge: nothing is left.
	t.Logf("dpkg --purge:\n%s", run(t, busEnv, "dpkg", "--purge", "chadthrottle"))
	installed = false
	if after := systemFiles(t); !slices.Equal(after, filesBefore) {
		t.Errorf("files after purge differ from before install:\nbefore %q\n after %q", filesBefore, after)
	}
	if out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", "chadthrottle").CombinedOutput(); err == nil && strings.Contains(string(out), "installed") {
		t.Errorf("dpkg still knows the package after purge: %s", out)
	}
	if left := kernelState(t); len(left) > 0 {
		t.Errorf("kernel state left after purge: %q", left)
	}
}
