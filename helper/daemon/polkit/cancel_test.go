//go:build linux

package polkit_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/daemon/polkit"
	"github.com/chadthrottle/chadthrottle/helper/testsupport/bustest"
)

// slowAuthority is a polkit authority that never answers until the check
// is cancelled; it records what it was asked.
type slowAuthority struct {
	mu        sync.Mutex
	flags     []uint32
	ids       []string
	subjects  []string
	cancelled chan string
}

func (s *slowAuthority) CheckAuthorization(subject struct {
	Kind    string
	Details map[string]dbus.Variant
}, action string, details map[string]string, flags uint32, id string) (struct {
	A, C bool
	D    map[string]string
}, *dbus.Error) {
	s.mu.Lock()
	name, _ := subject.Details["name"].Value().(string)
	s.subjects = append(s.subjects, subject.Kind+"/"+name)
	s.flags = append(s.flags, flags)
	s.ids = append(s.ids, id)
	s.mu.Unlock()
	select {
	case got := <-s.cancelled:
		s.cancelled <- got
	case <-time.After(10 * time.Second):
	}
	return struct {
		A, C bool
		D    map[string]string
	}{}, dbus.NewError("org.freedesktop.PolicyKit1.Error.Cancelled", []any{"cancelled"})
}

func (s *slowAuthority) CancelCheckAuthorization(id string) *dbus.Error {
	s.cancelled <- id
	return nil
}

// A check that polkit does not answer in time fails with the deadline, and
// polkit is told to cancel it by the same cancellation id (so an agent
// dialog closes). Interactive checks set AllowUserInteraction.
func TestTimeoutCancels(t *testing.T) {
	bus := bustest.StartSessionBus(t)
	fake := bus.Conn(t)
	slow := &slowAuthority{cancelled: make(chan string, 4)}
	if err := fake.Export(slow, "/org/freedesktop/PolicyKit1/Authority", "org.freedesktop.PolicyKit1.Authority"); err != nil {
		t.Fatal(err)
	}
	if r, err := fake.RequestName("org.freedesktop.PolicyKit1", 0); err != nil || r != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own polkit's name: %v %v", r, err)
	}
	u := bustest.AddUser(t)
	name, _ := bustest.NewPeer(t, bus, &u).Hold(t)
	auth, err := polkit.New(bus.Conn(t))
	if err != nil {
		t.Fatal(err)
	}
	defer auth.Close()
	auth.SetTimeouts(300*time.Millisecond, 600*time.Millisecond)
	for _, interactive := range []bool{false, true} {
		t0 := time.Now()
		_, err := auth.Check(context.Background(), name, api.ActionLimitOwn, interactive)
		took := time.Since(t0)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("interactive=%v: %v, want a deadline error", interactive, err)
		}
		if took > 5*time.Second {
			t.Errorf("interactive=%v: took %v", interactive, took)
		}
		select {
		case id := <-slow.cancelled:
			slow.mu.Lock()
			last := slow.ids[len(slow.ids)-1]
			slow.mu.Unlock()
			if id != last {
				t.Errorf("cancelled %q, asked with %q", id, last)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the check was not cancelled")
		}
	}
	slow.mu.Lock()
	defer slow.mu.Unlock()
	if len(slow.flags) != 2 || slow.flags[0] != 0 || slow.flags[1] != 1 {
		t.Errorf("flags %v, want [0 1]", slow.flags)
	}
	if slow.subjects[0] != "system-bus-name/"+name || slow.ids[0] == slow.ids[1] {
		t.Errorf("subjects %v ids %v", slow.subjects, slow.ids)
	}
}
