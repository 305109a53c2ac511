//go:build linux

package server

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/client"
	"github.com/chadthrottle/chadthrottle/helper/daemon/polkit"
	"github.com/chadthrottle/chadthrottle/helper/testsupport/bustest"
)

func TestMain(m *testing.M) {
	bustest.MaybeChild()
	os.Exit(m.Run())
}

// serveOnBus exports a server with the fake engine on a real system-type
// bus and takes the helper's name; uid lookups are real (root passes).
func serveOnBus(t *testing.T, bus *bustest.Bus) (*Server, *fakeEngine, *dbus.Conn) {
	t.Helper()
	conn := bus.Conn(t)
	auth, err := polkit.New(conn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(auth.Close)
	eng := newFakeEngine()
	eng.procs[alicePID] = alice
	s, err := New(Config{Conn: conn, Engine: eng, Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Export(); err != nil {
		t.Fatal(err)
	}
	if r, err := conn.RequestName(api.BusName, dbus.NameFlagDoNotQueue); err != nil || r != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("request name: %v %v", r, err)
	}
	return s, eng, conn
}

func TestOverTheBus(t *testing.T) {
	bus := bustest.StartBus(t)
	_, eng, _ := serveOnBus(t, bus)
	c, err := client.Connect(bus.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	changed := make(chan struct{}, 10)
	cancel := c.OnLimitsChanged(func() { changed <- struct{}{} })
	defer cancel()

	st, err := c.Status(ctx)
	if err != nil || st.Monitor != "fake" {
		t.Fatalf("Status: %+v %v", st, err)
	}
	perms, err := c.Permissions(ctx)
	if err != nil || perms != (api.Permissions{Monitor: api.PermYes, LimitOwn: api.PermYes, Manage: api.PermYes}) {
		t.Fatalf("root's permissions: %+v %v", perms, err)
	}
	bs, err := c.Backends(ctx)
	if err != nil || len(bs) != 1 || bs[0].Name != "fake" {
		t.Fatalf("Backends: %+v %v", bs, err)
	}
	if err := c.SetProcessLimit(ctx, alicePID, api.Limit{Up: 5000, Traffic: api.TrafficInternet}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("no LimitsChanged signal after SetProcessLimit")
	}
	snap, err := c.Apps(ctx)
	if err != nil || len(snap.Apps) != 1 || snap.Apps[0].Limit.Up != 5000 || snap.Apps[0].Limit.Traffic != api.TrafficInternet {
		t.Fatalf("Apps: %+v %v", snap, err)
	}
	if err := c.SetAppLimit(ctx, "/usr/bin/curl", 1000, api.Limit{Down: 100_000}); err != nil {
		t.Fatal(err)
	}
	rules, err := c.Rules(ctx)
	if err != nil || len(rules) != 1 || rules[0].Exe != "/usr/bin/curl" || rules[0].UID != 1000 || rules[0].Limit.Down != 100_000 {
		t.Fatalf("Rules: %+v %v", rules, err)
	}
	d, err := c.AppDetails(ctx, "1000:/usr/bin/curl")
	if err != nil || d.App.ID != "1000:/usr/bin/curl" {
		t.Fatalf("AppDetails: %+v %v", d, err)
	}
	if err := c.SetPaused(ctx, true); err != nil {
		t.Fatal(err)
	}
	if !eng.allPause {
		t.Error("root's SetPaused did not pause everyone")
	}
	// Errors arrive typed.
	err = c.SetProcessLimit(ctx, alicePID, api.Limit{Up: 1, Traffic: "dark"})
	var ce *client.Error
	if !errors.Is(err, client.ErrInvalidArgument) || !errors.As(err, &ce) || !strings.Contains(ce.Message, "dark") {
		t.Fatalf("bad traffic: %v", err)
	}
	if err := c.RemoveAppLimit(ctx, "/usr/bin/never", 1000); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("missing rule: %v", err)
	}
	if err := c.SetAppLimit(ctx, "/bin/nodown", 0, api.Limit{Down: 1}); !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("download unavailable: %v", err)
	}
	if errors.Is(err, client.ErrNotAuthorized) {
		t.Fatal("errors.Is matched the wrong sentinel")
	}
}

func TestIntrospection(t *testing.T) {
	bus := bustest.StartBus(t)
	serveOnBus(t, bus)
	conn := bus.Conn(t)
	var xml string
	if err := conn.Object(api.BusName, api.ObjectPath).Call("org.freedesktop.DBus.Introspectable.Introspect", 0).Store(&xml); err != nil {
		t.Fatal(err)
	}
	for _, m := range api.Methods {
		if !strings.Contains(xml, `<method name="`+m.Name+`">`) {
			t.Errorf("introspection lacks %s", m.Name)
		}
	}
	if !strings.Contains(xml, `<signal name="`+api.SignalLimitsChanged+`">`) {
		t.Error("introspection lacks the signal")
	}
	// The declared signatures are what godbus really accepts: call
	// SetProcessLimit with exactly the introspected types.
	if err := conn.Object(api.BusName, api.ObjectPath).Call(api.Interface+"."+api.MethodSetProcessLimit, 0,
		uint32(alicePID), uint64(0), uint64(1000), "all").Err; err != nil {
		t.Fatalf("call with introspected signature: %v", err)
	}
	// Wrong argument types are refused by the bus layer, not a panic.
	err := conn.Object(api.BusName, api.ObjectPath).Call(api.Interface+"."+api.MethodSetProcessLimit, 0, "4000").Err
	if err == nil || !strings.Contains(err.Error(), "Invalid") {
		t.Fatalf("wrong types: %v", err)
	}
}

func TestHelperPresenceAndMissing(t *testing.T) {
	bus := bustest.StartBus(t)
	c, err := client.Connect(bus.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if _, err := c.Status(ctx); !errors.Is(err, client.ErrHelperMissing) {
		t.Fatalf("no helper: %v, want ErrHelperMissing", err)
	}
	presence := make(chan bool, 4)
	cancel := c.OnHelperPresence(func(up bool) { presence <- up })
	defer cancel()
	_, _, conn := serveOnBus(t, bus)
	if up := waitBool(t, presence); !up {
		t.Fatal("presence: got false, want true")
	}
	if running, err := c.Running(ctx); err != nil || !running {
		t.Fatalf("Running: %v %v", running, err)
	}
	if _, err := conn.ReleaseName(api.BusName); err != nil {
		t.Fatal(err)
	}
	if up := waitBool(t, presence); up {
		t.Fatal("presence: got true, want false")
	}
}

func waitBool(t *testing.T, ch chan bool) bool {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("no presence change")
	}
	return false
}
