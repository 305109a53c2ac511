package main

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/helper/testsupport/bustest"
)

// curlLoop is a long-running curl of a user in the bed's local namespace
// fetching a page five times a second (a new connection each time); it
// counts the fetches that succeeded and those refused with EPERM.
type curlLoop struct {
	mu            sync.Mutex
	ok, refused   int
	firstRefusal  time.Time
	lastSuccessAt time.Time
}

func (c *curlLoop) counts() (ok, refused int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ok, c.refused
}

func startCurlLoop(t *testing.T, bed *testenv.Bed, u bustest.User, url string) *curlLoop {
	t.Helper()
	args := []string{"--net=" + testenv.Path(bed.Local), "--setuid", strconv.Itoa(int(u.UID)), "--setgid", strconv.Itoa(int(u.GID)),
		"--", "curl", "-v", "-sS", "-m", "2", "--rate", "5/s", "-o", "/dev/null"}
	for i := 0; i < 200; i++ { // 40 s at most
		args = append(args, url)
	}
	cmd := exec.Command("nsenter", args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	c := &curlLoop{}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			c.mu.Lock()
			switch {
			case strings.HasPrefix(line, "< HTTP/1.1 200"):
				c.ok++
				c.lastSuccessAt = time.Now()
			case strings.Contains(line, "Operation not permitted"):
				if c.refused == 0 {
					c.firstRefusal = time.Now()
				}
				c.refused++
			}
			c.mu.Unlock()
		}
	}()
	return c
}

// waitFor polls cond every 20 ms for up to d.
func waitFor(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// TestRealBlockAsUser: the real helper (auto selection: ebpf_block) in a
// bed, with a real dbus-daemon and polkitd. An unprivileged user blocks
// their own running curl with chadthrottlectl (limit-own): its next
// connections fail with EPERM while another user's curl keeps working;
// blocking the other user's curl is refused (exit 3, needs manage) and
// changes nothing; unblock restores.
func TestRealBlockAsUser(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "curl", "nsenter")
	bed := testenv.NewBed(t)
	bus := bustest.StartBus(t)
	bustest.InstallPolicy(t)
	alice, bob := bustest.AddUser(t), bustest.AddUser(t)
	bustest.WriteRules(t, ownRules(alice, false))
	bustest.StartPolkit(t, bus)
	in := realInstance(t, bus, bed)
	h := in.start(t)
	ctl := buildBinary(t, "./cmd/chadthrottlectl")
	curl, err := filepath.EvalSymlinks("/usr/bin/curl")
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("http://%s:%d/", bed.PeerIP, bed.ServeHTTP(bed.Peer))
	aliceCurl, bobCurl := startCurlLoop(t, bed, alice, url), startCurlLoop(t, bed, bob, url)
	if !waitFor(5*time.Second, func() bool { a, _ := aliceCurl.counts(); b, _ := bobCurl.counts(); return a >= 2 && b >= 2 }) {
		t.Fatalf("curl loops do not fetch: alice %v, bob %v", aliceCurl, bobCurl)
	}
	ctx := context.Background()
	run := func(args ...string) (string, int) {
		out, errOut, err := bustest.RunAs(ctx, &alice, nil, ctl, append(args, "--bus", bus.Address)...)
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out + errOut, code
	}
	if out, code := run("block", "--app", curl); code != 0 {
		t.Fatalf("alice blocks her curl: exit %d: %s\n%s", code, out, h.out.String())
	}
	blockedAt := time.Now()
	if !waitFor(3*time.Second, func() bool { _, r := aliceCurl.counts(); return r > 0 }) {
		t.Fatalf("alice's curl was not refused within 3 s of the block")
	}
	aliceCurl.mu.Lock()
	t.Logf("alice's curl refused %.0f ms after chadthrottlectl block returned (it fetches every 200 ms)",
		float64(aliceCurl.firstRefusal.Sub(blockedAt).Microseconds())/1000)
	aliceCurl.mu.Unlock()
	okBefore, _ := aliceCurl.counts()
	if out, code := run("block", "--app", curl, "--uid", strconv.Itoa(int(bob.UID))); code != exitCodeNotAuthorized {
		t.Errorf("alice blocks bob's curl: exit %d (want %d): %s", code, exitCodeNotAuthorized, out)
	}
	bobOK, _ := bobCurl.counts()
	time.Sleep(time.Second)
	if b, r := bobCurl.counts(); b < bobOK+2 || r != 0 {
		t.Errorf("bob's curl hit by alice's block: %d fetches in 1 s, %d refused", b-bobOK, r)
	}
	if a, _ := aliceCurl.counts(); a > okBefore {
		t.Errorf("alice's blocked curl fetched %d pages", a-okBefore)
	}
	// New processes of the blocked app join its target when the engine
	// sees their exec (proc connector): one that connects before that is
	// not refused. Logged, not asserted (see the report of issue #16).
	fresh := 0
	for i := 0; i < 10; i++ {
		cmd := exec.Command("nsenter", "--net="+testenv.Path(bed.Local), "--setuid", strconv.Itoa(int(alice.UID)),
			"--setgid", strconv.Itoa(int(alice.GID)), "--", "curl", "-sS", "-m", "2", "-o", "/dev/null", url)
		if cmd.Run() != nil {
			fresh++
		}
	}
	t.Logf("fresh curls of the blocked app refused: %d of 10", fresh)
	if out, code := run("unblock", "--app", curl); code != 0 {
		t.Fatalf("unblock: exit %d: %s", code, out)
	}
	if !waitFor(3*time.Second, func() bool { a, _ := aliceCurl.counts(); return a >= okBefore+2 }) {
		t.Errorf("alice's curl does not fetch again within 3 s of unblock")
	}
}

// exitCodeNotAuthorized is chadthrottlectl's exit status for polkit's no.
const exitCodeNotAuthorized = 3
