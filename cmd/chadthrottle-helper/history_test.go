//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/client"
	"github.com/chadthrottle/chadthrottle/helper/daemon/history"
	"github.com/chadthrottle/chadthrottle/helper/testsupport/bustest"
)

// History and quotas against the real helper, a real dbus-daemon, a real
// polkitd and real unprivileged users: a user with monitor and limit-own
// sets and sees quotas on its own apps and reads its own history; another
// user's app needs manage; bad arguments are InvalidArgument; the database is 0600 in the state directory.
func TestHistoryAndQuotasAuthorization(t *testing.T) {
	bus := bustest.StartBus(t)
	bustest.InstallPolicy(t)
	own, other := bustest.AddUser(t), bustest.AddUser(t)
	bustest.WriteRules(t, fmt.Sprintf(`polkit.addRule(function(action, subject) {
  if (action.id.indexOf("io.github.chadthrottle.") != 0) return polkit.Result.NOT_HANDLED;
  if ((subject.user == %q || subject.user == %q) && action.id != %q) return polkit.Result.YES;
  return polkit.Result.NOT_HANDLED;
});
`, own.Name, other.Name, api.ActionManage))
	bustest.StartPolkit(t, bus)
	in := newInstance(t, bus, "--monitor", "fake", "--upload", "fake_upload", "--download", "fake_download")
	in.start(t)

	const exe = "/usr/bin/sleep"
	u := func(x uint32) string { return strconv.FormatUint(uint64(x), 10) }
	now := time.Now().Unix()
	from, until := strconv.FormatInt(now-86400, 10), strconv.FormatInt(now+60, 10)
	quota := func(uid uint32, action, rate string) bustest.Call {
		return bustest.Call{Method: api.MethodSetQuota, Args: []string{exe, u(uid), "day", "1000000", "down", action, rate}}
	}
	for _, c := range []struct {
		label string
		call  bustest.Call
		want  string
	}{
		{"own quota", quota(own.UID, "throttle", "100000"), ""},
		{"other's quota", quota(other.UID, "throttle", "100000"), api.ErrNotAuthorized},
		{"block", quota(own.UID, "block", "0"), ""}, // the fake backends include a blocker
		{"bad period", bustest.Call{Method: api.MethodSetQuota, Args: []string{exe, u(own.UID), "year", "1", "down", "throttle", "1"}}, api.ErrInvalidArgument},
		{"no rate", quota(own.UID, "throttle", "0"), api.ErrInvalidArgument},
		{"relative exe", bustest.Call{Method: api.MethodSetQuota, Args: []string{"sleep", u(own.UID), "day", "1", "down", "throttle", "1"}}, api.ErrInvalidArgument},
		{"own history", bustest.Call{Method: api.MethodGetHistory, Args: []string{exe, u(own.UID), from, until, "hour"}}, ""},
		{"all history", bustest.Call{Method: api.MethodGetHistory, Args: []string{"", "0", from, until, "minute"}}, ""},
		{"other's history", bustest.Call{Method: api.MethodGetHistory, Args: []string{exe, u(other.UID), from, until, "hour"}}, api.ErrNotAuthorized},
		{"history too long", bustest.Call{Method: api.MethodGetHistory, Args: []string{"", "0", strconv.FormatInt(now-400*86400, 10), until, "minute"}}, api.ErrInvalidArgument},
		{"history backwards", bustest.Call{Method: api.MethodGetHistory, Args: []string{"", "0", until, from, "day"}}, api.ErrInvalidArgument},
		{"bad resolution", bustest.Call{Method: api.MethodGetHistory, Args: []string{"", "0", from, until, "fortnight"}}, api.ErrInvalidArgument},
	} {
		a := bustest.NewPeer(t, bus, &own).Calls(t, c.call)[0]
		if (c.want == "" && !a.OK) || (c.want != "" && a.Error != c.want) {
			t.Errorf("%s: ok=%v %s %s, want %q", c.label, a.OK, a.Error, a.Message, c.want)
		}
	}
	// Root sets a quota on the other user; the own user sees only its own.
	root := connect(t, bus.Address)
	ctx := context.Background()
	if err := root.SetQuota(ctx, api.Quota{Exe: exe, UID: other.UID, Period: api.QuotaMonth, Bytes: 5e9, Action: api.QuotaThrottle, Rate: 1000}); err != nil {
		t.Fatal(err)
	}
	a := bustest.NewPeer(t, bus, &own).Calls(t, bustest.Call{Method: api.MethodGetQuotas})[0]
	var qs []api.Quota
	if err := json.Unmarshal(a.Result, &qs); err != nil || len(qs) != 1 || qs[0].UID != own.UID || qs[0].State != api.QuotaOK {
		t.Errorf("own user's quotas: %s (%v)", a.Result, err)
	}
	all, err := root.Quotas(ctx)
	if err != nil || len(all) != 2 {
		t.Errorf("root sees %d quotas (%v), want 2", len(all), err)
	}
	st, err := os.Stat(filepath.Join(in.stateDir, history.FileName))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("history database: %v, %v; want mode 0600", st, err)
	}
}

// A download app under a daily quota with a throttle action, in the netns
// bed against the real kernel: after the cap the app receives at the
// quota's rate; raising the quota lifts the throttle at once; the history
// shows what the app counted (≤ 1 %) and keeps it across a SIGTERM
// restart and a SIGKILL.
func TestQuotaThrottlesInBed(t *testing.T) {
	testenv.RequireRoot(t)
	bed, bus, in := realBed(t, "source", "[::]:5201")
	h := in.start(t)
	c := connect(t, bus.Address)
	ctx := context.Background()
	exe, err := filepath.EvalSymlinks(testenv.Ctload(t))
	if err != nil {
		t.Fatal(err)
	}
	const capBytes, rate = 10_000_000, 100_000
	q := api.Quota{Exe: exe, UID: 0, Period: api.QuotaDay, Bytes: capBytes, Direction: api.QuotaDown, Action: api.QuotaThrottle, Rate: rate}
	if err := c.SetQuota(ctx, q); err != nil {
		t.Fatalf("SetQuota: %v", err)
	}
	load := bed.StartClient(bed.Local, "recv", bed.PeerIP+":5201", 18*time.Second, 200*time.Millisecond)
	reached := waitQuota(t, c, api.QuotaReached, 6*time.Second)
	t.Logf("quota reached: %d of %d bytes", reached.Used, reached.Bytes)
	time.Sleep(time.Second)
	got := load.RateOver(t, 3*time.Second)
	t.Logf("throttled to %d B/s: %.0f B/s (%.2f)", rate, got, got/rate)
	testenv.Settles(t, "download after the quota's cap", got, func() float64 { return load.RateOver(t, 3*time.Second) }, rate, 0.6, 1.2)
	q.Bytes = 100 * capBytes * 1000
	if err := c.SetQuota(ctx, q); err != nil {
		t.Fatal(err)
	}
	raised := time.Now()
	var after float64
	if !testenv.WaitUntil(8*time.Second, func() bool { after = load.RateOver(t, 500*time.Millisecond); return after > 10*rate }) {
		t.Errorf("after raising the quota: %.0f B/s, still throttled 8 s later", after)
	}
	t.Logf("raising the quota lifted the throttle within %v (%.0f B/s)", time.Since(raised).Round(100*time.Millisecond), after)
	samples := load.Wait()
	counted := samples[len(samples)-1].Total
	time.Sleep(2 * time.Second) // the helper's next samples
	if code := h.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("SIGTERM: exit %d", code)
	}
	h = in.start(t)
	h.stop(t, syscall.SIGKILL) // a killed helper's database opens as it was (WAL), not set aside
	in.start(t)
	c2 := connect(t, bus.Address)
	hs, err := c2.History(ctx, exe, 0, time.Now().Add(-time.Hour), time.Now().Add(time.Minute), api.HistoryMinute)
	if err != nil || len(hs) != 1 {
		t.Fatalf("history after restart: %+v, %v", hs, err)
	}
	diff := math.Abs(float64(hs[0].RxBytes)-float64(counted)) / float64(counted)
	t.Logf("the app counted %d bytes, the history after a restart holds %d (%.3f %%)", counted, hs[0].RxBytes, 100*diff)
	if diff > 0.01 {
		t.Errorf("history differs from what the app counted by %.2f %%, want ≤ 1 %%", 100*diff)
	}
	if aside, _ := filepath.Glob(filepath.Join(in.stateDir, history.FileName+".corrupt-*")); len(aside) > 0 {
		t.Errorf("the database was set aside after SIGKILL: %v", aside)
	}
	qs, err := c2.Quotas(ctx)
	if err != nil || len(qs) != 1 || qs[0].Used < counted*99/100 {
		t.Errorf("quota after restart: %+v, %v; want usage ≥ %d", qs, err, counted*99/100)
	}
}

func waitQuota(t *testing.T, c *client.Client, state string, d time.Duration) api.Quota {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		qs, err := c.Quotas(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(qs) == 1 && qs[0].State == state {
			return qs[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("quota not %s within %v: %+v", state, d, qs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
