//go:build linux

// Package bustest gives the helper's tests a real system-type D-Bus: a
// dbus-daemon started with a <type>system</type> configuration on a private
// unix socket (with the product's bus policy from packaging/dbus), a real
// polkitd on that bus, and throwaway unprivileged users. The polkitd runs in
// a private mount namespace where /usr/share/polkit-1/actions and
// /etc/polkit-1/rules.d are this test binary's own directories (the
// product's .policy and the test's rules), so test packages running at the
// same time never make each other's polkitd reload or see each other's
// rules, and the system's directories are never written. Everything is
// removed when the test ends. Only tests import it.
package bustest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/helper/api"
)

// Paths polkitd reads; StartPolkit mounts this process's own directories
// over the first two.
const (
	PolkitActionsDir = "/usr/share/polkit-1/actions"
	PolkitRulesDir   = "/etc/polkit-1/rules.d"
	Polkitd          = "/usr/lib/polkit-1/polkitd"
)

// RepoRoot returns the module root (where go.mod is).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// Bus is a running dbus-daemon.
type Bus struct {
	Address string // unix:path=…
	Dir     string // world-readable directory holding the socket
	cmd     *exec.Cmd
}

// PublicDir makes a temporary directory every user can enter and read
// (test users run programs and reach sockets there). It is removed at the
// end of the test.
func PublicDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "chadthrottle-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// StartBus starts a system-type dbus-daemon on a private socket, with the
// bus policy of polkit (from /usr/share/dbus-1/system.d) and the product's
// policy (packaging/dbus). It is stopped when the test ends.
func StartBus(t testing.TB) *Bus {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "dbus-daemon")
	dir := PublicDir(t)
	sock := filepath.Join(dir, "system_bus_socket")
	policyDir := filepath.Join(dir, "system.d")
	if err := os.Mkdir(policyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	product := filepath.Join(RepoRoot(), "packaging", "dbus", api.BusName+".conf")
	b, err := os.ReadFile(product)
	if err != nil {
		t.Fatalf("read the product's bus policy: %v", err)
	}
	if err := os.WriteFile(filepath.Join(policyDir, api.BusName+".conf"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <policy user="root">
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.systemd1.Activator"/>
  </policy>
  <includedir>/usr/share/dbus-1/system.d</includedir>
  <includedir>%s</includedir>
</busconfig>
`, sock, policyDir)
	return startDaemon(t, dir, "system.conf", conf)
}

// startDaemon writes conf into dir and runs a dbus-daemon on it until the
// test ends.
func startDaemon(t testing.TB, dir, confName, conf string) *Bus {
	t.Helper()
	confPath := filepath.Join(dir, confName)
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("dbus-daemon", "--config-file="+confPath, "--nofork", "--nopidfile", "--print-address")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr testenv.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dbus-daemon: %v", err)
	}
	bus := &Bus{Dir: dir, cmd: cmd}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("dbus-daemon did not print its address: %v (%s)", err, stderr.String())
	}
	go io.Copy(io.Discard, out)
	bus.Address = strings.TrimSpace(line)
	return bus
}

// Conn connects to the bus as the test process (root).
func (b *Bus) Conn(t testing.TB) *dbus.Conn {
	t.Helper()
	conn, err := dbus.Connect(b.Address)
	if err != nil {
		t.Fatalf("connect to test bus: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// WaitName waits until name has an owner on the bus.
func (b *Bus) WaitName(t testing.TB, name string, timeout time.Duration) {
	t.Helper()
	conn := b.Conn(t)
	deadline := time.Now().Add(timeout)
	for {
		var has bool
		if err := conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, name).Store(&has); err == nil && has {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear on the bus within %v", name, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var (
	polkitMu   sync.Mutex
	polkitRoot = map[testing.TB]string{} // per test: actions/ and rules.d/
)

// polkitDirs returns the test's actions and rules directories, created on
// first use, readable by polkitd's own user and removed when the test ends.
func polkitDirs(t testing.TB) (actions, rules string) {
	t.Helper()
	polkitMu.Lock()
	defer polkitMu.Unlock()
	dir := polkitRoot[t]
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "chadthrottle-polkit-"); err != nil {
			t.Fatal(err)
		}
		for _, d := range []string{dir, filepath.Join(dir, "actions"), filepath.Join(dir, "rules.d")} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		polkitRoot[t] = dir
		t.Cleanup(func() {
			polkitMu.Lock()
			delete(polkitRoot, t)
			polkitMu.Unlock()
			os.RemoveAll(dir)
		})
	}
	return filepath.Join(dir, "actions"), filepath.Join(dir, "rules.d")
}

// InstallPolicy installs the product's polkit policy (packaging/polkit) in
// the actions directory the test's polkitd reads, removed at the end.
func InstallPolicy(t testing.TB) {
	t.Helper()
	src := filepath.Join(RepoRoot(), "packaging", "polkit", "io.github.chadthrottle.policy")
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatalf("read the product's polkit policy: %v", err)
	}
	actions, _ := polkitDirs(t)
	dst := filepath.Join(actions, "io.github.chadthrottle.test-"+testenv.UniqueName("p")+".policy")
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatalf("install polkit policy: %v", err)
	}
	t.Cleanup(func() { os.Remove(dst) })
}

// WriteRules writes a polkit rules file (JavaScript) into the rules
// directory the test's polkitd reads, removed at the end of the test. Write
// rules before StartPolkit: polkitd reloads on change, but not instantly.
func WriteRules(t testing.TB, js string) string {
	t.Helper()
	_, rules := polkitDirs(t)
	dst := filepath.Join(rules, "10-chadthrottle-test-"+testenv.UniqueName("r")+".rules")
	if err := os.WriteFile(dst, []byte(js), 0o644); err != nil {
		t.Fatalf("write polkit rules: %v", err)
	}
	t.Cleanup(func() { os.Remove(dst) })
	return dst
}

// StartPolkit starts polkitd on the bus (as root; it drops to its own user)
// and waits for org.freedesktop.PolicyKit1.
func StartPolkit(t testing.TB, b *Bus) {
	t.Helper()
	if _, err := os.Stat(Polkitd); err != nil {
		testenv.Skip(t, "needs %s (Debian package polkitd)", Polkitd)
	}
	actions, rules := polkitDirs(t)
	// unshare(1) gives polkitd a private mount namespace; the shell mounts
	// this binary's directories over the ones polkitd reads and becomes
	// polkitd (exec), so cmd.Process is polkitd itself.
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-ec",
		`mount --bind "$1" `+PolkitActionsDir+` && mount --bind "$2" `+PolkitRulesDir+` && exec "$3" --no-debug`,
		"sh", actions, rules, Polkitd)
	cmd.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+b.Address)
	var out testenv.Buffer
	exited := testenv.StartDaemon(t, "polkitd", cmd, &out)
	conn := b.Conn(t)
	testenv.AwaitDaemon(t, "polkitd taking its name", exited, &out, 15*time.Second, func() bool {
		var has bool
		err := conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, "org.freedesktop.PolicyKit1").Store(&has)
		return err == nil && has
	})
}

// User is a throwaway unprivileged user.
type User struct {
	Name     string
	UID, GID uint32
}

// Credential returns the process credential of the user.
func (u User) Credential() *syscall.Credential {
	return &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: []uint32{}}
}

// AddUser creates a system user without home or login (useradd), deleted at
// the end of the test.
func AddUser(t testing.TB) User {
	t.Helper()
	u, _ := addUser(t, false)
	return u
}

// AddUserWithHome creates a throwaway user whose home directory (mode
// 0700, owned by the user, in a public temporary directory) exists, for
// tests of what the helper reads there; both are removed at the end.
func AddUserWithHome(t testing.TB) (User, string) {
	t.Helper()
	return addUser(t, true)
}

func addUser(t testing.TB, withHome bool) (User, string) {
	t.Helper()
	testenv.RequireTool(t, "useradd", "userdel")
	name := testenv.UniqueName("ctu")
	args := []string{"--system", "--no-create-home"}
	home := ""
	if withHome {
		home = filepath.Join(PublicDir(t), name)
		args = []string{"--system", "--home-dir", home, "--create-home"}
	}
	args = append(args, "--shell", "/usr/sbin/nologin", "--user-group", name)
	if out, err := exec.Command("useradd", args...).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() { exec.Command("userdel", name).Run() })
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if withHome {
		os.Chmod(home, 0o700)
	}
	return User{Name: name, UID: uint32(uid), GID: uint32(gid)}, home
}

// PublicCopy copies the executable at src into a directory every user can
// read and returns the copy's path (test binaries live in 0700 directories).
func PublicCopy(t testing.TB, src string) string {
	t.Helper()
	return CopyExe(t, src, filepath.Join(PublicDir(t), filepath.Base(src)))
}

// CopyExe copies the executable at src to dst (mode 0755) and returns dst.
func CopyExe(t testing.TB, src, dst string) string {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// RunAs runs a program as user u with extra environment and returns its
// stdout; the error carries stderr.
func RunAs(ctx context.Context, u *User, env []string, name string, args ...string) (string, string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	if u != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: u.Credential()}
	}
	cmd.Dir = "/"
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

func execAs(u *User, env []string, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	if u != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: u.Credential()}
	}
	cmd.Dir = "/"
	cmd.Stderr = os.Stderr
	return cmd
}

// StartSessionBus starts a session-type dbus-daemon on a private socket
// where anyone may own any name (for fakes of other services, such as a
// polkit authority that never answers).
func StartSessionBus(t testing.TB) *Bus {
	t.Helper()
	testenv.RequireTool(t, "dbus-daemon")
	dir := PublicDir(t)
	sock := filepath.Join(dir, "bus")
	conf := fmt.Sprintf(`<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:path=%s</listen><auth>EXTERNAL</auth>
<policy context="default"><allow user="*"/><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy></busconfig>`, sock)
	return startDaemon(t, dir, "bus.conf", conf)
}

// PolkitUsers installs the policy, adds three throwaway users — own,
// allowed monitor and limit-own by a polkit rule; admin, allowed every
// ChadThrottle action; none, with no rule (the policy's defaults apply) —
// and starts polkitd on b.
func PolkitUsers(t testing.TB, b *Bus) (own, admin, none User) {
	t.Helper()
	InstallPolicy(t)
	own, admin, none = AddUser(t), AddUser(t), AddUser(t)
	WriteRules(t, fmt.Sprintf(`polkit.addRule(function(action, subject) {
  if (action.id.indexOf("io.github.chadthrottle.") != 0) return polkit.Result.NOT_HANDLED;
  if (subject.user == %q && action.id != %q) return polkit.Result.YES;
  if (subject.user == %q) return polkit.Result.YES;
  return polkit.Result.NOT_HANDLED;
});
`, own.Name, api.ActionManage, admin.Name))
	StartPolkit(t, b)
	return own, admin, none
}
