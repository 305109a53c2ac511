//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/client"
)

// TestQuotaBlocksInBed: a download app (curl, a copy of its own so the
// quota matches this test's runs only) under a 10 MB daily quota with the
// block action fetches a 200 MB file at line rate, no rate rule on it: the
// kernel's byte budget stops it at the cap, so it writes at most 10.6 MB
// and its connection stops; its next connect fails at once with EPERM; the
// quota reads reached; removing the quota lets it download again. With
// either throttler pair (the budget is the blocker's).
func TestQuotaBlocksInBed(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "curl")
	for _, v := range []struct {
		name  string
		extra []string
	}{{"ebpf", nil}, {"tc", []string{"--upload", "tc_htb", "--download", "ifb_tc"}}} {
		t.Run(v.name, func(t *testing.T) { quotaBlocksInBed(t, v.extra) })
	}
}

func quotaBlocksInBed(t *testing.T, extra []string) {
	bed, bus, in := realBed(t, "http", "[::]:8092", extra...)
	h := in.start(t)
	c := connect(t, bus.Address)
	ctx := context.Background()
	if bk := budgetRow(t, c); !bk.Active {
		testenv.KernelLacks(t, "the quotas' byte budgets", fmt.Errorf("%s", bk.Reason))
	}
	prog := testenv.CopyProgram(t, "curl")
	q := api.Quota{Exe: prog, UID: 0, Period: api.QuotaDay, Bytes: 10_000_000, Direction: api.QuotaDown, Action: api.QuotaBlock}
	if err := c.SetQuota(ctx, q); err != nil {
		t.Fatalf("SetQuota: %v", err)
	}
	url := fmt.Sprintf("http://%s:8092/200000000", bed.PeerIP)
	got, out, code := curlInto(t, bed, prog, url)
	t.Logf("under a 10 MB quota with the block action the app wrote %d bytes (curl exit %d)", got, code)
	if got > 10_600_000 || code == 0 {
		t.Errorf("the app wrote %d bytes (curl exit %d) under a 10 MB quota, want ≤ 10.6 MB and a stopped download\n%s", got, code, out)
	}
	reached := waitQuota(t, c, api.QuotaReached, 5*time.Second)
	t.Logf("quota reached, %d bytes used", reached.Used)
	got, out, _ = curlInto(t, bed, prog, url)
	if got != 0 || !strings.Contains(out, "Operation not permitted") {
		t.Errorf("the next download wrote %d bytes, want refused with EPERM:\n%s", got, out)
	}
	if err := c.RemoveQuota(ctx, prog, 0); err != nil {
		t.Fatal(err)
	}
	quotaThrottlesCurl(t, bed, c, prog, reached.Used)
	if t.Failed() {
		t.Log(h.out.String())
	}
}

// quotaThrottlesCurl: the quota removed, the app downloads again; under a
// quota 20 MB above what it used with a 100 KB/s throttle action it writes
// at most 20.6 MB more before the quota is reached, then continues at the
// quota's rate (measured at the client: the file's growth).
func quotaThrottlesCurl(t *testing.T, bed *testenv.Bed, c *client.Client, prog string, used uint64) {
	const more, rate = 20_000_000, 100_000
	q := api.Quota{Exe: prog, UID: 0, Period: api.QuotaDay, Bytes: used + more, Direction: api.QuotaDown, Action: api.QuotaThrottle, Rate: rate}
	if err := c.SetQuota(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "got")
	cmd := bed.Command(bed.Local, prog, "-sS", "-m", "12", "-o", file, fmt.Sprintf("http://%s:8092/200000000", bed.PeerIP))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	size := func() float64 {
		st, err := os.Stat(file)
		if err != nil {
			return 0
		}
		return float64(st.Size())
	}
	stall := make(chan time.Duration, 1)
	go func() { stall <- longestStall(size, more*9/10, 2500*time.Millisecond) }()
	waitQuota(t, c, api.QuotaReached, 6*time.Second)
	atCap := size()
	t.Logf("after the quota was removed the app wrote %.0f bytes until a %d byte throttle quota was reached", atCap, q.Bytes)
	if atCap < more*9/10 || atCap > more+600_000 {
		t.Errorf("the app wrote %.0f bytes before a quota %d bytes above its use was reached, want ≤ %d", atCap, more, more+600_000)
	}
	rateOver := func() float64 {
		a := size()
		time.Sleep(3 * time.Second)
		return (size() - a) / 3
	}
	t.Logf("the download stalled at most %v between its budget and the quota's rate", (<-stall).Round(time.Millisecond))
	got := rateOver()
	t.Logf("then it received at %.0f B/s under the quota's %d B/s (%.2f)", got, rate, got/rate)
	testenv.Settles(t, "download after the quota's cap", got, rateOver, rate, 0.6, 1.2)
}

// longestStall watches size (every 5 ms) from when it passes from for
// span and returns the longest time it did not grow.
func longestStall(size func() float64, from float64, span time.Duration) time.Duration {
	deadline := time.Now().Add(10 * time.Second)
	for size() < from && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	var longest time.Duration
	last, lastAt := size(), time.Now()
	for end := time.Now().Add(span); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if v := size(); v != last {
			longest = max(longest, time.Since(lastAt))
			last, lastAt = v, time.Now()
		}
	}
	return max(longest, time.Since(lastAt))
}

// budgetRow returns the helper's backends row of the quotas' byte budgets.
func budgetRow(t *testing.T, c *client.Client) api.Backend {
	t.Helper()
	bs, err := c.Backends(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if b.Kind == "budget" {
			return b
		}
	}
	t.Fatalf("no budget row among the backends: %+v", bs)
	return api.Backend{}
}

// curlInto has prog (a curl) fetch url into a file in the bed's local
// namespace, giving up after 2 s without progress; it returns the bytes
// written, curl's verbose output and its exit code.
func curlInto(t *testing.T, bed *testenv.Bed, prog, url string) (int64, string, int) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "got")
	out, err := bed.Command(bed.Local, prog, "-v", "-sS", "-m", "15", "--speed-time", "2", "--speed-limit", "1000",
		"-o", file, url).CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(file)
	if err != nil {
		return 0, string(out), code
	}
	return st.Size(), string(out), code
}
