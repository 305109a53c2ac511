package client

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/godbus/dbus/v5"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

func TestErrorIs(t *testing.T) {
	sentinels := map[string]*Error{
		api.ErrNotAuthorized: ErrNotAuthorized, api.ErrInvalidArgument: ErrInvalidArgument,
		api.ErrNotFound: ErrNotFound, api.ErrUnavailable: ErrUnavailable, api.ErrFailed: ErrFailed,
	}
	for name, s := range sentinels {
		err := fmt.Errorf("set limit: %w", convert("SetAppLimit", dbus.Error{Name: name, Body: []any{"the reason"}}, context.Background()))
		for other, o := range sentinels {
			if got := errors.Is(err, o); got != (other == name) {
				t.Errorf("errors.Is(%s error, %s) = %v", name, other, got)
			}
		}
		var ce *Error
		if !errors.As(err, &ce) || ce.Message != "the reason" || ce.Name != name || !errors.Is(err, s) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestHelperMissing(t *testing.T) {
	for _, name := range []string{"org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner",
		"org.freedesktop.DBus.Error.Spawn.ChildExited"} {
		err := convert("GetApps", &dbus.Error{Name: name, Body: []any{"no"}}, context.Background())
		if !errors.Is(err, ErrHelperMissing) {
			t.Errorf("%s: %v, want ErrHelperMissing", name, err)
		}
	}
	if err := convert("GetApps", errors.New("broken pipe"), context.Background()); errors.Is(err, ErrHelperMissing) || err == nil {
		t.Errorf("transport error: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := convert("GetApps", errors.New("x"), ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestConnectRejectsBadBus(t *testing.T) {
	if _, err := Connect("nonsense"); err == nil {
		t.Fatal("Connect(nonsense) succeeded")
	}
}
