//go:build linux

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends/kernel/cgroupv2"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/client"
	"github.com/chadthrottle/chadthrottle/helper/testsupport/bustest"
)

func TestMain(m *testing.M) {
	bustest.MaybeChild()
	if os.Getenv(envLatency) != "" {
		os.Exit(latencyChild())
	}
	code := m.Run()
	bustest.RemoveBuilt()
	os.Exit(code)
}

// The latency child (make bench): the test binary re-run as a user,
// connected to the helper here or over ssh, times calls and prints them.
const (
	envLatency = "CHADTHROTTLE_LATENCY_CHILD" // host ("-" for this machine)
	envLatBus  = "CHADTHROTTLE_LATENCY_BUS"
	envLatPID  = "CHADTHROTTLE_LATENCY_PID" // a process to limit
	envLatN    = "CHADTHROTTLE_LATENCY_N"
)

// latencies is what a latency child prints (nanoseconds).
type latencies struct {
	Connect int64              `json:"connect"`
	Calls   map[string][]int64 `json:"calls"`
}

func latencyChild() int {
	host := os.Getenv(envLatency)
	if host == "-" {
		host = ""
	}
	pid, _ := strconv.Atoi(os.Getenv(envLatPID))
	n, _ := strconv.Atoi(os.Getenv(envLatN))
	t0 := time.Now()
	c, err := client.ConnectHost(host, os.Getenv(envLatBus))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	ctx := context.Background()
	if _, err := c.Status(ctx); err != nil { // includes the first polkit check
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	out := latencies{Connect: int64(time.Since(t0)), Calls: map[string][]int64{}}
	timed := func(name string, f func() error) bool {
		t0 := time.Now()
		if err := f(); err != nil {
			fmt.Fprintln(os.Stderr, name, err)
			return false
		}
		out.Calls[name] = append(out.Calls[name], int64(time.Since(t0)))
		return true
	}
	for i := 0; i < n; i++ {
		ok := timed(api.MethodGetStatus, func() error { _, err := c.Status(ctx); return err }) &&
			timed(api.MethodGetApps, func() error { _, err := c.Apps(ctx); return err }) &&
			timed(api.MethodSetProcessLimit, func() error {
				return c.SetProcessLimit(ctx, int32(pid), api.Limit{Up: uint64(1_000_000 + i), Down: 2_000_000})
			}) &&
			timed(api.MethodRemoveProcessLimit, func() error { return c.RemoveProcessLimit(ctx, int32(pid)) })
		if !ok {
			return 1
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		return 1
	}
	return 0
}

// remoteBed is a "remote machine" and a "workstation" in one test bed:
//
//   - remote (bed.Local, 10.77.0.1): a private system-type bus with polkitd,
//     the real chadthrottle-helper shaping the bed's veth, and Debian's
//     sshd on 10.77.0.1:2222 only, with a throwaway host key; its users log
//     in with a throwaway client key;
//   - workstation (bed.Peer, 10.77.0.2): a throwaway local user whose own
//     ~/.ssh (config, key, known_hosts) the plain `ssh` of the product
//     reads, as a person's would.
//
// Namespaces, processes, users and keys go when the test ends.
type remoteBed struct {
	bed  *testenv.Bed
	bus  *bustest.Bus
	dir  string // keys, sshd config, homes
	ctl  string // chadthrottlectl
	port string

	// Remote users: Admin may do everything (polkit rule); NoRule has no
	// rule (polkit's allow_any defaults apply); NoBridge logs in with a
	// PATH that has no systemd-stdio-bridge.
	Admin, NoRule, NoBridge bustest.User
	// Local is the workstation user that runs chadthrottlectl and ssh.
	Local     bustest.User
	LocalHome string

	sshdOut *testenv.Buffer
}

func must(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// loginUser makes a throwaway user able to log in with a key: a shell and
// a password field that is not locked ("*": no password works, but sshd
// does not treat the account as locked).
func loginUser(t testing.TB, shell string) bustest.User {
	t.Helper()
	u := bustest.AddUser(t)
	must(t, "usermod", "-s", shell, "-p", "*", u.Name)
	return u
}

func newRemoteBed(t testing.TB) *remoteBed {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "ssh", "ssh-keygen", "nsenter", "usermod", "chown")
	if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
		testenv.Skip(t, "needs /usr/sbin/sshd (Debian package openssh-server)")
	}
	if _, err := exec.LookPath("systemd-stdio-bridge"); err != nil {
		testenv.Skip(t, "needs systemd-stdio-bridge (Debian package systemd)")
	}
	r := &remoteBed{port: "2222"}
	r.bed = testenv.NewBed(t)
	r.bus = bustest.StartBus(t)
	r.dir = bustest.PublicDir(t)

	// Remote users and polkit there.
	r.Admin = loginUser(t, "/bin/sh")
	r.NoRule = loginUser(t, "/bin/sh")
	noBridgeShell := filepath.Join(r.dir, "shell-without-bridge")
	if err := os.WriteFile(noBridgeShell, []byte("#!/bin/sh\nPATH=/nonexistent\nexport PATH\nexec /bin/sh \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r.NoBridge = loginUser(t, noBridgeShell)
	bustest.InstallPolicy(t)
	bustest.WriteRules(t, fmt.Sprintf(`polkit.addRule(function(action, subject) {
  if (action.id.indexOf("io.github.chadthrottle.") == 0 && (subject.user == %q || subject.user == %q)) return polkit.Result.YES;
  return polkit.Result.NOT_HANDLED;
});
`, r.Admin.Name, r.NoBridge.Name))
	bustest.StartPolkit(t, r.bus)
	r.startHelper(t)

	// Keys: the remote host's and the workstation user's.
	hostKey := filepath.Join(r.dir, "ssh_host_ed25519_key")
	must(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "chadthrottle-test-host", "-f", hostKey)
	r.LocalHome = filepath.Join(r.dir, "home")
	sshDir := filepath.Join(r.LocalHome, ".ssh")
	if err := os.MkdirAll(sshDir, 0o700); err != nil {
		t.Fatal(err)
	}
	must(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "chadthrottle-test-client", "-f", filepath.Join(sshDir, "id_ed25519"))
	clientPub, err := os.ReadFile(filepath.Join(sshDir, "id_ed25519.pub"))
	if err != nil {
		t.Fatal(err)
	}
	authKeys := filepath.Join(r.dir, "authorized_keys")
	if err := os.WriteFile(authKeys, clientPub, 0o644); err != nil {
		t.Fatal(err)
	}
	hostPub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(hostPub))
	known := fmt.Sprintf("[%s]:%s %s %s\n", testenv.LocalIP, r.port, f[0], f[1])
	if err := os.WriteFile(filepath.Join(sshDir, "known_hosts"), []byte(known), 0o600); err != nil {
		t.Fatal(err)
	}
	// The workstation user's own ssh configuration: no prompts (a test
	// has no one to answer them), a short connect timeout.
	conf := "Host *\n  BatchMode yes\n  StrictHostKeyChecking yes\n  ConnectTimeout 5\n  IdentitiesOnly yes\n  IdentityFile ~/.ssh/id_ed25519\n"
	if err := os.WriteFile(filepath.Join(sshDir, "config"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	r.Local = loginUser(t, "/bin/sh")
	must(t, "usermod", "-d", r.LocalHome, r.Local.Name)
	must(t, "chown", "-R", fmt.Sprintf("%d:%d", r.Local.UID, r.Local.GID), r.LocalHome)
	os.Chmod(r.LocalHome, 0o755)

	// sshd on the remote side only, on the bed's address.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // its privilege separation directory
		t.Fatal(err)
	}
	sshdConf := filepath.Join(r.dir, "sshd_config")
	cfg := strings.Join([]string{
		"ListenAddress " + testenv.LocalIP + ":" + r.port,
		"HostKey " + hostKey,
		"AuthorizedKeysFile " + authKeys,
		"StrictModes no",
		"UsePAM no",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PermitRootLogin no",
		"AllowUsers " + strings.Join([]string{r.Admin.Name, r.NoRule.Name, r.NoBridge.Name}, " "),
		"X11Forwarding no",
		"PidFile none",
		"LogLevel VERBOSE",
		"",
	}, "\n")
	if err := os.WriteFile(sshdConf, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	r.sshdOut = &testenv.Buffer{}
	exited := testenv.StartDaemon(t, "sshd", r.bed.Command(r.bed.Local, "/usr/sbin/sshd", "-D", "-e", "-f", sshdConf), r.sshdOut)
	testenv.AwaitDaemon(t, "sshd listening", exited, r.sshdOut, 15*time.Second, func() bool {
		return strings.Contains(r.sshdOut.String(), "Server listening on")
	})
	r.ctl = bustest.BuildBinary(t, "./cmd/chadthrottlectl")
	return r
}

// startHelper runs the real helper on the remote side's bus, shaping the
// bed's veth in the remote namespace.
func (r *remoteBed) startHelper(t testing.TB) {
	t.Helper()
	bin := bustest.BuildBinary(t, "./cmd/chadthrottle-helper")
	tag := testenv.UniqueName("r")
	runDir := t.TempDir()
	// Registered first, so it runs after the helper is stopped: the
	// placer's reconcile moves processes back and removes the subtree.
	t.Cleanup(func() {
		if _, err := cgroupv2.Mount(); err != nil {
			return // no cgroup2 here: the helper made none either
		}
		if err := cgroupv2.RemoveLeftovers(tag); err != nil {
			t.Errorf("remove the helper's leftover cgroups: %v", err)
		}
	})
	out := &testenv.Buffer{}
	cmd := r.bed.Command(r.bed.Local, bin, "--bus", r.bus.Address, "--state-dir", t.TempDir(), "--run-dir", runDir,
		"--tag", tag, "--interface", r.bed.LocalDev)
	exited := testenv.StartDaemon(t, "helper", cmd, out)
	c, err := client.Connect(r.bus.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	testenv.AwaitDaemon(t, "helper taking its name", exited, out, 20*time.Second, func() bool {
		up, _ := c.Running(context.Background())
		return up
	})
}

// Host returns user@10.77.0.1:2222 for a remote user.
func (r *remoteBed) Host(u bustest.User) string {
	return u.Name + "@" + testenv.LocalIP + ":" + r.port
}

// Ctl runs chadthrottlectl on the workstation as the workstation user with
// a plain environment (PATH as given, "" for /usr/bin:/bin) and returns
// stdout, stderr and the exit code.
func (r *remoteBed) Ctl(t testing.TB, path string, args ...string) (string, string, int) {
	t.Helper()
	if path == "" {
		path = "/usr/bin:/bin"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := r.AsLocal(ctx, path, r.ctl, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run chadthrottlectl: %v", err)
	}
	return stdout.String(), stderr.String(), code
}

// AsLocal returns a command that runs in the workstation namespace as the
// workstation user with HOME, USER and PATH set.
func (r *remoteBed) AsLocal(ctx context.Context, path, name string, args ...string) *exec.Cmd {
	a := append([]string{"--net=" + testenv.Path(r.bed.Peer), "--setgid", strconv.Itoa(int(r.Local.GID)),
		"--setuid", strconv.Itoa(int(r.Local.UID)), "--", name}, args...)
	cmd := exec.CommandContext(ctx, "nsenter", a...)
	cmd.Env = []string{"PATH=" + path, "HOME=" + r.LocalHome, "USER=" + r.Local.Name, "LOGNAME=" + r.Local.Name, "LANG=C.UTF-8"}
	cmd.Dir = "/"
	return cmd
}

// ruleFor finds the rule on exe in `rules --json` output.
func rulesOf(t testing.TB, out string) []api.Rule {
	t.Helper()
	var doc struct{ Rules []api.Rule }
	if err := jsonUnmarshal(out, &doc); err != nil {
		t.Fatalf("rules --json: %v: %s", err, out)
	}
	return doc.Rules
}
