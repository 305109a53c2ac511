package main

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/helper/testsupport/bustest"
)

// TestRealProcessBlockWhen: the real helper with a real dbus-daemon and
// polkitd. Alice blocks her own running curl by pid with a schedule
// (chadthrottlectl block --pid N --when, SetProcessBlockWhen): a window on
// another day changes nothing; a daily window open now blocks it; the same
// on bob's curl is refused (exit 3) and changes nothing. (The switching at
// a boundary is tested with an injected clock in the engine.)
func TestRealProcessBlockWhen(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "curl", "nsenter")
	bed, bus, alice, bob := userBed(t)
	in := realInstance(t, bus, bed)
	h := in.start(t)
	ctl := bustest.BuildBinary(t, "./cmd/chadthrottlectl")
	url := fmt.Sprintf("http://%s:%d/", bed.PeerIP, bed.ServeHTTP(bed.Peer))
	aliceCurl, alicePID := startCurlLoopPID(t, bed, alice, url)
	bobCurl, bobPID := startCurlLoopPID(t, bed, bob, url)
	if !testenv.WaitUntil(5*time.Second, func() bool { a, _ := aliceCurl.Counts(); b, _ := bobCurl.Counts(); return a >= 2 && b >= 2 }) {
		t.Fatal("the curl loops do not fetch")
	}
	run := func(args ...string) (string, int) { return ctlAs(t, alice, ctl, bus.Address, args...) }
	otherDay := time.Now().Add(48 * time.Hour).Weekday().String()[:3] + " 00:00-24:00"
	if out, code := run("block", "--pid", strconv.Itoa(alicePID), "--when", otherDay); code != 0 {
		t.Fatalf("alice blocks her curl on %s: exit %d: %s\n%s", otherDay, code, out, h.out.String())
	}
	okAt, _ := aliceCurl.Counts()
	if !testenv.WaitUntil(3*time.Second, func() bool { a, _ := aliceCurl.Counts(); return a >= okAt+3 }) {
		t.Errorf("a block scheduled for %s stopped alice's curl today", otherDay)
	}
	if _, r := aliceCurl.Counts(); r != 0 {
		t.Errorf("a block scheduled for %s refused %d of alice's fetches today", otherDay, r)
	}
	if out, code := run("block", "--pid", strconv.Itoa(alicePID), "--when", "00:00-24:00"); code != 0 {
		t.Fatalf("alice blocks her curl daily: exit %d: %s", code, out)
	}
	if !testenv.WaitUntil(3*time.Second, func() bool { _, r := aliceCurl.Counts(); return r > 0 }) {
		t.Errorf("alice's curl was not refused within 3 s of a block whose window is open")
	}
	if out, code := run("block", "--pid", strconv.Itoa(bobPID), "--when", "00:00-24:00"); code != exitCodeNotAuthorized {
		t.Errorf("alice blocks bob's curl: exit %d (want %d): %s", code, exitCodeNotAuthorized, out)
	}
	bobOK, _ := bobCurl.Counts()
	time.Sleep(time.Second)
	if b, r := bobCurl.Counts(); b < bobOK+2 || r != 0 {
		t.Errorf("bob's curl hit: %d fetches in 1 s, %d refused", b-bobOK, r)
	}
}
