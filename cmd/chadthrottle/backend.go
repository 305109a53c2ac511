package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/chadthrottle/chadthrottle/gui"
	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/client"
)

// Test-only: CHADTHROTTLE_TEST_SYNTHETIC_APPS=N replaces the helper with
// gui.NewSyntheticFake(N) (benchmarks, screenshots and the tray test run
// without a helper); CHADTHROTTLE_TEST_CALL_LOG=FILE then appends every
// limit call the fake receives to FILE as a JSON line.
const (
	envSynthetic = "CHADTHROTTLE_TEST_SYNTHETIC_APPS"
	envCallLog   = "CHADTHROTTLE_TEST_CALL_LOG"
)

// Test-only: CHADTHROTTLE_TEST_CPUPROFILE=FILE writes a CPU profile of the
// run from 10 s after start (steady state) to SIGTERM or Quit, for
// benchmarks.
const envCPUProfile = "CHADTHROTTLE_TEST_CPUPROFILE"

func startProfile() (stop func()) {
	path := os.Getenv(envCPUProfile)
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chadthrottle: cpu profile:", err)
		return func() {}
	}
	var mu sync.Mutex
	started, stopped := false, false
	time.AfterFunc(10*time.Second, func() {
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			started = pprof.StartCPUProfile(f) == nil
		}
	})
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		if started {
			pprof.StopCPUProfile()
		}
		f.Close()
	}
}

// newBackend returns the helper client adapted to gui.Backend.
func newBackend(bus string) (gui.Backend, func(), error) {
	if v := os.Getenv(envSynthetic); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 100000 {
			return nil, nil, fmt.Errorf("%s=%q: want a number of apps", envSynthetic, v)
		}
		fmt.Fprintf(os.Stderr, "chadthrottle: TEST MODE: %d synthetic apps, no helper\n", n)
		f := gui.NewSyntheticFake(n)
		if path := os.Getenv(envCallLog); path != "" {
			log, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
			if err != nil {
				return nil, nil, fmt.Errorf("open %s: %w", envCallLog, err)
			}
			var mu sync.Mutex
			f.SetCallHook(func(c gui.FakeCall) {
				mu.Lock()
				defer mu.Unlock()
				json.NewEncoder(log).Encode(c)
			})
			return f, func() { log.Close() }, nil
		}
		return f, func() {}, nil
	}
	c, err := client.Connect(bus)
	if err != nil {
		return nil, nil, err
	}
	return helperBackend{c}, func() { c.Close() }, nil
}

// helperBackend adapts *client.Client to gui.Backend, translating the
// client's errors into the gui's.
type helperBackend struct{ c *client.Client }

func wrap(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, client.ErrHelperMissing):
		return fmt.Errorf("%w: %w", gui.ErrHelperMissing, err)
	case errors.Is(err, client.ErrNotAuthorized):
		return fmt.Errorf("%w: %w", gui.ErrNotAuthorized, err)
	case errors.Is(err, client.ErrUnavailable):
		return fmt.Errorf("%w: %w", gui.ErrUnavailable, err)
	}
	return err
}

func (h helperBackend) Status(ctx context.Context) (api.Status, error) {
	s, err := h.c.Status(ctx)
	return s, wrap(err)
}

func (h helperBackend) Permissions(ctx context.Context) (api.Permissions, error) {
	p, err := h.c.Permissions(ctx)
	return p, wrap(err)
}

func (h helperBackend) Apps(ctx context.Context) (api.Snapshot, error) {
	s, err := h.c.Apps(ctx)
	return s, wrap(err)
}

func (h helperBackend) AppDetails(ctx context.Context, appID string) (api.AppDetails, error) {
	d, err := h.c.AppDetails(ctx, appID)
	return d, wrap(err)
}

func (h helperBackend) SetAppLimit(ctx context.Context, exe string, uid uint32, l api.Limit) error {
	return wrap(h.c.SetAppLimit(ctx, exe, uid, l))
}

func (h helperBackend) RemoveAppLimit(ctx context.Context, exe string, uid uint32) error {
	return wrap(h.c.RemoveAppLimit(ctx, exe, uid))
}

func (h helperBackend) SetProcessLimit(ctx context.Context, pid int32, l api.Limit) error {
	return wrap(h.c.SetProcessLimit(ctx, pid, l))
}

func (h helperBackend) RemoveProcessLimit(ctx context.Context, pid int32) error {
	return wrap(h.c.RemoveProcessLimit(ctx, pid))
}

func (h helperBackend) SetPaused(ctx context.Context, paused bool) error {
	return wrap(h.c.SetPaused(ctx, paused))
}

func (h helperBackend) OnLimitsChanged(fn func()) func() { return h.c.OnLimitsChanged(fn) }

func (h helperBackend) OnHelperPresence(fn func(bool)) func() { return h.c.OnHelperPresence(fn) }

// trayAvailable reports whether a StatusNotifierWatcher (tray host) owns
// its name on the session bus; the answer is cached for a few seconds.
var trayAvailable = func() func() bool {
	var (
		mu   sync.Mutex
		last time.Time
		ok   bool
	)
	return func() bool {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(last) < 3*time.Second {
			return ok
		}
		last = time.Now()
		ok = false
		conn, err := dbus.SessionBus()
		if err != nil {
			return false
		}
		var has bool
		err = conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, "org.kde.StatusNotifierWatcher").Store(&has)
		ok = err == nil && has
		return ok
	}
}()
