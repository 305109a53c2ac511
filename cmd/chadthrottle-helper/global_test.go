package main

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/helper/testsupport/bustest"
)

// TestRealGlobalAsUser: the real helper in a bed with a real dbus-daemon
// and polkitd. An unprivileged user gives their own app a priority
// (limit-own) but may not set the global limit or another user's
// priority (exit 3); root sets the global limit with chadthrottlectl and
// the global HTB appears on the bed's interface; it is persisted and comes
// back with the next helper (also after one was killed), refuses an interface whose root qdisc is the
// user's, and unlimit --global removes every object it made.
func TestRealGlobalAsUser(t *testing.T) {
	testenv.RequireRoot(t)
	bed, bus, alice, bob := userBed(t)
	in := realInstance(t, bus, bed)
	h := in.start(t)
	ctl := bustest.BuildBinary(t, "./cmd/chadthrottlectl")
	ctx := context.Background()
	code := func(err error) int {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return 0
	}
	asAlice := func(args ...string) (string, int) {
		out, errOut, err := bustest.RunAs(ctx, &alice, nil, ctl, append(args, "--bus", bus.Address)...)
		return out + errOut, code(err)
	}
	asRoot := func(args ...string) (string, int) {
		out, err := exec.Command(ctl, append(args, "--bus", bus.Address)...).CombinedOutput()
		return string(out), code(err)
	}
	if out, c := asAlice("priority", "--app", "/usr/bin/curl", "high"); c != 0 {
		t.Fatalf("alice sets her app's priority: exit %d: %s\n%s", c, out, h.out.String())
	}
	if out, _ := asAlice("rules", "--json"); !strings.Contains(out, `"priority": "high"`) {
		t.Errorf("alice's rules lack the priority:\n%s", out)
	}
	if out, c := asAlice("priority", "--app", "/usr/bin/curl", "low", "--uid", strconv.Itoa(int(bob.UID))); c != exitCodeNotAuthorized {
		t.Errorf("alice sets bob's priority: exit %d (want %d): %s", c, exitCodeNotAuthorized, out)
	}
	if out, c := asAlice("limit", "--global", "--down", "10MB/s"); c != exitCodeNotAuthorized {
		t.Errorf("alice sets the global limit: exit %d (want %d): %s", c, exitCodeNotAuthorized, out)
	}
	qdiscs := func() string {
		out, err := bed.Command(bed.Local, "tc", "qdisc", "show").CombinedOutput()
		if err != nil {
			t.Fatalf("tc qdisc show: %v: %s", err, out)
		}
		return string(out)
	}
	if out, c := asRoot("limit", "--global", "--down", "10MB/s", "--up", "5MB/s"); c != 0 {
		t.Fatalf("root sets the global limit: exit %d: %s\n%s", c, out, h.out.String())
	}
	if q := qdiscs(); !strings.Contains(q, "c7a3:") || !strings.Contains(q, "c7a4:") {
		t.Errorf("no global HTB roots after limit --global:\n%s", q)
	}
	h.stop(t, syscall.SIGTERM)
	if q := qdiscs(); strings.Contains(q, "c7a3:") || strings.Contains(q, "c7a4:") {
		t.Errorf("the stopped helper left its global HTB roots:\n%s", q)
	}
	h = in.start(t)
	if q := qdiscs(); !strings.Contains(q, "c7a3:") || !strings.Contains(q, "c7a4:") {
		t.Errorf("the global limit was not restored at start:\n%s\n%s", q, h.out.String())
	}
	// A killed helper leaves its objects; the next one removes them and
	// puts the limit back once.
	h.stop(t, syscall.SIGKILL)
	h = in.start(t)
	if q := qdiscs(); strings.Count(q, "htb c7a3:") != 1 || strings.Count(q, "htb c7a4:") != 1 {
		t.Errorf("after a killed helper, the next one has:\n%s\n%s", q, h.out.String())
	}
	if out, c := asRoot("unlimit", "--global"); c != 0 {
		t.Fatalf("unlimit --global: exit %d: %s", c, out)
	}
	if q := qdiscs(); strings.Contains(q, "c7a3:") || strings.Contains(q, "c7a4:") || strings.Contains(q, "clsact") {
		t.Errorf("unlimit --global left kernel objects:\n%s", q)
	}
	// The user's own root qdisc is never replaced.
	testenv.Run(t, "ip", "netns", "exec", bed.Local, "tc", "qdisc", "add", "dev", bed.LocalDev, "root", "handle", "77:", "pfifo")
	if out, c := asRoot("limit", "--global", "--up", "1MB/s"); c != 1 || !strings.Contains(out, "root qdisc of its own") {
		t.Errorf("global limit over the user's root qdisc: exit %d: %s", c, out)
	}
	if q := qdiscs(); !strings.Contains(q, "pfifo 77:") || strings.Contains(q, "c7a") {
		t.Errorf("the user's root qdisc was touched:\n%s", q)
	}
}

// userBed is a bed with a real bus and polkitd, two throwaway users, and
// the limit-own permission for alice.
func userBed(t *testing.T) (*testenv.Bed, *bustest.Bus, bustest.User, bustest.User) {
	t.Helper()
	bed := testenv.NewBed(t)
	bus := bustest.StartBus(t)
	bustest.InstallPolicy(t)
	alice, bob := bustest.AddUser(t), bustest.AddUser(t)
	bustest.WriteRules(t, ownRules(alice, false))
	bustest.StartPolkit(t, bus)
	return bed, bus, alice, bob
}
