package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/helper/testsupport/bustest"
)

// startCurlLoop starts u's curl in the bed's local namespace fetching url
// five times a second for at most 40 s.
func startCurlLoop(t *testing.T, bed *testenv.Bed, u bustest.User, url string) *testenv.CurlLoop {
	t.Helper()
	l, _ := startCurlLoopPID(t, bed, u, url)
	return l
}

// startCurlLoopPID is startCurlLoop that also returns the curl's pid.
func startCurlLoopPID(t *testing.T, bed *testenv.Bed, u bustest.User, url string) (*testenv.CurlLoop, int) {
	t.Helper()
	args := append([]string{"--net=" + testenv.Path(bed.Local), "--setuid", strconv.Itoa(int(u.UID)),
		"--setgid", strconv.Itoa(int(u.GID)), "--", "curl"}, testenv.CurlLoopArgs(url, 200, 5)...)
	cmd := exec.Command("nsenter", args...)
	l := testenv.StartCurlLoop(t, cmd)
	return l, cmd.Process.Pid
}

// TestRealBlockAsUser: the real helper (auto selection: ebpf_block) in a
// bed, with a real dbus-daemon and polkitd. An unprivileged user blocks
// their own running curl with chadthrottlectl (limit-own): its next
// connections fail with EPERM while another user's curl keeps working;
// blocking the other user's curl is refused (exit 3, needs manage) and
// changes nothing; unblock restores.
func TestRealBlockAsUser(t *testing.T) {
	testenv.RequireRoot(t)
	// The blocker is its own backend (ebpf_block): it works beside either
	// throttler pair.
	for _, v := range []struct {
		name  string
		extra []string
	}{{"ebpf", nil}, {"tc", []string{"--upload", "tc_htb", "--download", "ifb_tc"}}} {
		t.Run(v.name, func(t *testing.T) { realBlockAsUser(t, v.extra) })
	}
}

func realBlockAsUser(t *testing.T, extra []string) {
	testenv.RequireTool(t, "curl", "nsenter")
	bed, bus, alice, bob := userBed(t)
	in := realInstance(t, bus, bed, extra...)
	h := in.start(t)
	ctl := bustest.BuildBinary(t, "./cmd/chadthrottlectl")
	curl, err := filepath.EvalSymlinks("/usr/bin/curl")
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("http://%s:%d/", bed.PeerIP, bed.ServeHTTP(bed.Peer))
	aliceCurl, bobCurl := startCurlLoop(t, bed, alice, url), startCurlLoop(t, bed, bob, url)
	if !testenv.WaitUntil(5*time.Second, func() bool { a, _ := aliceCurl.Counts(); b, _ := bobCurl.Counts(); return a >= 2 && b >= 2 }) {
		t.Fatal("the curl loops do not fetch")
	}
	run := func(args ...string) (string, int) { return ctlAs(t, alice, ctl, bus.Address, args...) }
	if out, code := run("block", "--app", curl); code != 0 {
		t.Fatalf("alice blocks her curl: exit %d: %s\n%s", code, out, h.out.String())
	}
	blockedAt := time.Now()
	if !testenv.WaitUntil(3*time.Second, func() bool { _, r := aliceCurl.Counts(); return r > 0 }) {
		t.Fatalf("alice's curl was not refused within 3 s of the block")
	}
	t.Logf("alice's curl refused %.0f ms after chadthrottlectl block returned (it fetches every 200 ms)",
		float64(aliceCurl.FirstRefused().Sub(blockedAt).Microseconds())/1000)
	okBefore, _ := aliceCurl.Counts()
	if out, code := run("block", "--app", curl, "--uid", strconv.Itoa(int(bob.UID))); code != exitCodeNotAuthorized {
		t.Errorf("alice blocks bob's curl: exit %d (want %d): %s", code, exitCodeNotAuthorized, out)
	}
	bobOK, _ := bobCurl.Counts()
	time.Sleep(time.Second)
	if b, r := bobCurl.Counts(); b < bobOK+2 || r != 0 {
		t.Errorf("bob's curl hit by alice's block: %d fetches in 1 s, %d refused", b-bobOK, r)
	}
	if a, _ := aliceCurl.Counts(); a > okBefore {
		t.Errorf("alice's blocked curl fetched %d pages", a-okBefore)
	}
	// New processes of the blocked app are refused at once, before the
	// engine has placed them in the app's cgroup (the block programs know
	// the app's executable and uid).
	if n := freshRefused(bed, alice, "curl", url); n != 10 {
		t.Errorf("fresh curls of the blocked app refused: %d of 10", n)
	}
	// So is the first process of an app blocked while it does not run.
	other := bustest.CopyExe(t, curl, filepath.Join(bustest.PublicDir(t), "ct-curl2"))
	if out, code := run("block", "--app", other); code != 0 {
		t.Fatalf("alice blocks a program that does not run: exit %d: %s", code, out)
	}
	if n := freshRefused(bed, alice, other, url); n != 10 {
		t.Errorf("first runs of an app blocked before it ran refused: %d of 10\n%s", n, h.out.String())
	}
	if out, code := run("unblock", "--app", curl); code != 0 {
		t.Fatalf("unblock: exit %d: %s", code, out)
	}
	if !testenv.WaitUntil(3*time.Second, func() bool { a, _ := aliceCurl.Counts(); return a >= okBefore+2 }) {
		t.Errorf("alice's curl does not fetch again within 3 s of unblock")
	}
}

// ctlAs runs chadthrottlectl as u on the bus at addr and returns its
// output and exit status.
func ctlAs(t *testing.T, u bustest.User, ctl, addr string, args ...string) (string, int) {
	t.Helper()
	out, errOut, err := bustest.RunAs(context.Background(), &u, nil, ctl, append(args, "--bus", addr)...)
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out + errOut, code
}

// exitCodeNotAuthorized is chadthrottlectl's exit status for polkit's no.
const exitCodeNotAuthorized = 3

// freshRefused runs program (a curl) ten times as u in the bed's local
// namespace and counts the runs that failed.
func freshRefused(bed *testenv.Bed, u bustest.User, program, url string) int {
	n := 0
	for i := 0; i < 10; i++ {
		cmd := exec.Command("nsenter", "--net="+testenv.Path(bed.Local), "--setuid", strconv.Itoa(int(u.UID)),
			"--setgid", strconv.Itoa(int(u.GID)), "--", program, "-sS", "-m", "2", "-o", "/dev/null", url)
		if cmd.Run() != nil {
			n++
		}
	}
	return n
}
