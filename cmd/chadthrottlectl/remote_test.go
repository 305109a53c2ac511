//go:build linux

package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/testsupport/bustest"
)

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// chadthrottlectl --host against a real sshd in a test namespace: the
// workstation user's own ssh (config, key, known host key) reaches the
// remote side's private bus through Debian's systemd-stdio-bridge; top,
// limit (measured at the receiver, on the workstation side), rules and
// unlimit work; then every error case says what is wrong.
func TestRemoteOverSSH(t *testing.T) {
	r := newRemoteBed(t)
	host := r.Host(r.Admin)
	ctl := func(args ...string) (string, string, int) {
		t.Helper()
		return r.Ctl(t, "", append([]string{"-H", host, "--bus", r.bus.Address}, args...)...)
	}

	// The remote side sends to the workstation.
	sink := r.bed.StartServer(r.bed.Peer, "sink", "[::]:5201", false)
	load := r.bed.StartClient(r.bed.Local, "send", r.bed.PeerIP+":5201", 60*time.Second, 200*time.Millisecond)
	// The helper scans processes every 250 ms; on a loaded machine the
	// sender once was not listed yet after 600 ms, so ask until it is.
	var out string
	found := false
	for deadline := time.Now().Add(15 * time.Second); !found; {
		var errOut string
		var code int
		out, errOut, code = ctl("top", "--json")
		if code != 0 {
			t.Fatalf("top --json over ssh: exit %d: %s", code, errOut)
		}
		var top struct {
			Apps []struct {
				Exe  string  `json:"exe"`
				PIDs []int32 `json:"pids"`
			} `json:"apps"`
		}
		if err := json.Unmarshal([]byte(out), &top); err != nil {
			t.Fatalf("top --json: %v: %s", err, out)
		}
		for _, a := range top.Apps {
			for _, p := range a.PIDs {
				found = found || int(p) == load.PID
			}
		}
		if !found && time.Now().After(deadline) {
			t.Fatalf("top over ssh does not list the remote sender %d within 15 s: %s", load.PID, out)
		}
		if !found {
			time.Sleep(300 * time.Millisecond)
		}
	}
	if out, errOut, code := ctl("top"); code != 0 || !strings.Contains(out, "ctload") {
		t.Errorf("top table over ssh: exit %d\n%s%s", code, out, errOut)
	}

	// Limit the remote sender; measure what arrives at the receiver.
	rx := testenv.NewTCPCounter(t, r.bed.Peer)
	free := rx.Rate(t, false, time.Second, sink.Process.Pid)
	const limit = 1_000_000
	if out, errOut, code := ctl("limit", "--pid", strconv.Itoa(load.PID), "--up", "1MB/s"); code != 0 {
		t.Fatalf("limit over ssh: exit %d: %s%s", code, out, errOut)
	}
	time.Sleep(2 * time.Second)
	got := rx.Rate(t, false, 3*time.Second, sink.Process.Pid)
	t.Logf("remote sender: unlimited %.0f B/s at the receiver; limited over ssh to %d B/s: %.0f B/s (%.3f × the limit)", free, limit, got, got/limit)
	testenv.Settles(t, "receiver's rate under a limit set over ssh", got, func() float64 {
		return rx.Rate(t, false, 3*time.Second, sink.Process.Pid)
	}, limit, 0.85, 1.15)
	if out, errOut, code := ctl("unlimit", "--pid", strconv.Itoa(load.PID)); code != 0 {
		t.Fatalf("unlimit over ssh: exit %d: %s%s", code, out, errOut)
	}
	time.Sleep(time.Second)
	if after := rx.Rate(t, false, time.Second, sink.Process.Pid); after < 3*limit {
		t.Errorf("after unlimit over ssh the receiver gets %.0f B/s, still limited", after)
	}

	// Rules: --app is the path on the remote host, the default --uid the
	// login user's there.
	exe := testenv.Ctload(t)
	if out, errOut, code := ctl("limit", "--app", exe, "--down", "2MB/s", "--up", "500KB/s"); code != 0 {
		t.Fatalf("limit --app over ssh: exit %d: %s%s", code, out, errOut)
	}
	out, errOut, code := ctl("rules", "--json")
	rules := rulesOf(t, out)
	want := api.Rule{Exe: exe, UID: r.Admin.UID, Limit: api.Limit{Down: 2_000_000, Up: 500_000, Traffic: "all"}}
	if code != 0 || len(rules) != 1 || rules[0] != want {
		t.Fatalf("rules over ssh: exit %d %s %v; want %+v", code, errOut, rules, want)
	}
	if out, _, code := ctl("rules"); code != 0 || !strings.Contains(out, exe) || !strings.Contains(out, strconv.Itoa(int(r.Admin.UID))) {
		t.Errorf("rules table over ssh: %d\n%s", code, out)
	}
	if out, errOut, code := ctl("unlimit", "--app", exe); code != 0 {
		t.Fatalf("unlimit --app over ssh: exit %d: %s%s", code, out, errOut)
	}
	if out, errOut, code := ctl("rules", "--json"); code != 0 {
		t.Errorf("rules --json after unlimit over ssh: exit %d: %s%s", code, out, errOut)
	} else if len(rulesOf(t, out)) != 0 {
		t.Errorf("rules after unlimit over ssh: %s", out)
	}
	// Global flags after the command, short -H.
	if _, errOut, code := r.Ctl(t, "", "backends", "-H", host, "--bus", r.bus.Address); code != 0 {
		t.Errorf("backends -H after the command: %d %s", code, errOut)
	}

	// Error cases, each with the words a person needs.
	other := bustest.StartBus(t) // a bus on the remote side without the helper
	// Exit status 5: the helper cannot be reached; 3: polkit there says no.
	for _, c := range []struct {
		name string
		path string
		args []string
		code int
		want []string
	}{
		{"ssh missing", "/nonexistent", []string{"-H", host, "top"}, 5, []string{"ssh is not installed", "openssh-client"}},
		{"host unreachable", "", []string{"-H", r.Admin.Name + "@" + testenv.LocalIP + ":2999", "top"}, 5,
			[]string{"unreachable", "Connection refused"}},
		{"authentication refused", "", []string{"-H", "ctnosuchuser@" + testenv.LocalIP + ":" + r.port, "top"}, 5,
			[]string{"SSH login was refused", "Permission denied"}},
		{"bridge missing", "", []string{"-H", r.Host(r.NoBridge), "--bus", r.bus.Address, "top"}, 5,
			[]string{"systemd-stdio-bridge is not installed there", "systemd-stdio-bridge: not found"}},
		{"remote bus missing", "", []string{"-H", host, "--bus", "unix:path=" + r.dir + "/no-bus-here", "top"}, 5,
			[]string{"could not connect to the D-Bus bus", "no-bus-here"}},
		{"helper not installed", "", []string{"-H", host, "--bus", other.Address, "top"}, 5,
			[]string{"on " + host, "chadthrottle-helper is not running and could not be started"}},
		{"polkit refuses", "", []string{"-H", r.Host(r.NoRule), "--bus", r.bus.Address, "top"}, 3,
			[]string{"not authorized", "allow_any", "docs/packaging.md"}},
	} {
		out, errOut, code := r.Ctl(t, c.path, c.args...)
		ok := code == c.code
		for _, w := range c.want {
			ok = ok && strings.Contains(errOut, w)
		}
		if !ok {
			t.Errorf("%s: exit %d, stderr %q (stdout %q); want exit %d and %q", c.name, code, errOut, out, c.code, c.want)
		} else {
			t.Logf("%s: %s", c.name, strings.TrimSpace(errOut))
		}
	}
}
