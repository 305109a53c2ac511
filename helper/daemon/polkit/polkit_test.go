//go:build linux

package polkit_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/daemon/polkit"
	"github.com/chadthrottle/chadthrottle/helper/testsupport/bustest"
)

func TestMain(m *testing.M) {
	bustest.MaybeChild()
	os.Exit(m.Run())
}

// A real polkitd decides for bus names of real processes of three users:
// one allowed monitor and limit-own by a rule, one allowed everything, one
// with no rule (the policy's allow_any default applies: auth_admin_keep, a
// challenge no agent can answer here).
func TestCheckAgainstPolkitd(t *testing.T) {
	bus := bustest.StartBus(t)
	own, admin, none := bustest.PolkitUsers(t, bus)

	conn := bus.Conn(t)
	auth, err := polkit.New(conn)
	if err != nil {
		t.Fatal(err)
	}
	defer auth.Close()
	ctx := context.Background()

	type want struct{ authorized, challenge bool }
	yes, challenge := want{true, false}, want{false, true}
	cases := []struct {
		user *bustest.User
		want map[string]want
	}{
		{&own, map[string]want{api.ActionMonitor: yes, api.ActionLimitOwn: yes, api.ActionManage: challenge}},
		{&admin, map[string]want{api.ActionMonitor: yes, api.ActionLimitOwn: yes, api.ActionManage: yes}},
		{&none, map[string]want{api.ActionMonitor: challenge, api.ActionLimitOwn: challenge, api.ActionManage: challenge}},
		{nil, map[string]want{api.ActionMonitor: yes, api.ActionLimitOwn: yes, api.ActionManage: yes}},
	}
	for _, c := range cases {
		name, stop := bustest.NewPeer(t, bus, c.user).Hold(t)
		uid, err := auth.UID(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		wantUID := uint32(0)
		if c.user != nil {
			wantUID = c.user.UID
		}
		if uid != wantUID {
			t.Errorf("UID(%s) = %d, want %d", name, uid, wantUID)
		}
		for _, action := range api.Actions {
			for _, interactive := range []bool{false, true} {
				r, err := auth.Check(ctx, name, action, interactive)
				if err != nil {
					t.Fatalf("Check(%s, %s): %v", name, action, err)
				}
				w := c.want[action]
				if r.Authorized != w.authorized || r.Challenge != w.challenge {
					t.Errorf("uid %d %s interactive=%v: got %+v, want authorized=%v challenge=%v", uid, action, interactive, r, w.authorized, w.challenge)
				}
				if err := r.Err(action); w.authorized != (err == nil) ||
					(w.challenge && !errors.Is(err, polkit.ErrChallenge)) {
					t.Errorf("Err for %s: %v", action, err)
				}
				if (c.user == nil) != r.Root {
					t.Errorf("Root = %v for uid %d", r.Root, uid)
				}
			}
		}
		stop()
	}
}

// Positive answers are cached per sender for a few seconds (the GUI polls
// at 1 Hz) and dropped when the sender leaves the bus.
func TestCacheAndForget(t *testing.T) {
	bus := bustest.StartBus(t)
	bustest.InstallPolicy(t)
	u := bustest.AddUser(t)
	bustest.WriteRules(t, fmt.Sprintf(`polkit.addRule(function(action, subject) {
  if (action.id == %q && subject.user == %q) return polkit.Result.YES;
});
`, api.ActionMonitor, u.Name))
	bustest.StartPolkit(t, bus)
	auth, err := polkit.New(bus.Conn(t))
	if err != nil {
		t.Fatal(err)
	}
	defer auth.Close()
	ctx := context.Background()
	name, stop := bustest.NewPeer(t, bus, &u).Hold(t)
	for i := 0; i < 10; i++ {
		if err := auth.Authorize(ctx, name, api.ActionMonitor, false); err != nil {
			t.Fatal(err)
		}
	}
	if n := auth.Checks.Load(); n != 1 {
		t.Errorf("10 checks within the cache lifetime asked polkit %d times, want 1", n)
	}
	// Denials to non-interactive checks are cached too (the window asks
	// once a second whether its user manages); interactive checks always
	// ask, so the user can authenticate.
	for i := 0; i < 3; i++ {
		if err := auth.Authorize(ctx, name, api.ActionManage, false); !errors.Is(err, polkit.ErrChallenge) {
			t.Fatalf("manage: %v, want a challenge", err)
		}
	}
	if n := auth.Checks.Load(); n != 2 {
		t.Errorf("polkit asked %d times, want 2", n)
	}
	for i := 0; i < 2; i++ {
		if err := auth.Authorize(ctx, name, api.ActionManage, true); !errors.Is(err, polkit.ErrChallenge) {
			t.Fatalf("manage: %v, want a challenge", err)
		}
	}
	if n := auth.Checks.Load(); n != 4 {
		t.Errorf("polkit asked %d times, want 4", n)
	}
	inFlight, done := auth.CallContext(name) // a call the peer is waiting on
	defer done()
	stop()
	deadline := time.Now().Add(5 * time.Second)
	for {
		// After the peer left, its name is unknown: the uid lookup fails.
		if _, err := auth.UID(ctx, name); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("uid of a departed peer is still cached")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := auth.Authorize(ctx, name, api.ActionMonitor, false); err == nil {
		t.Error("a departed peer is still authorized")
	}
	// Its call in flight was cancelled, and nothing about it stays.
	if inFlight.Err() == nil {
		t.Error("the departed peer's call was not cancelled")
	}
	if a, u, c := auth.Cached(); a != 0 || u != 0 || c != 0 {
		t.Errorf("after the peer left: %d answers, %d uids, %d calls kept", a, u, c)
	}
}
