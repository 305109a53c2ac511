package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/chadthrottle/chadthrottle/gui"
	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/client"
)

// newBackend returns the helper client adapted to gui.Backend.
func newBackend(bus, host string) (gui.Backend, func(), error) {
	if b, closeB, ok, err := testBackend(); ok { // tests only: testhooks.go
		return b, closeB, err
	}
	h := &helperBackend{bus: bus, host: host}
	if _, err := h.get(); err != nil {
		fmt.Fprintln(os.Stderr, "chadthrottle:", err) // the window says so too, and retries
	}
	return h, h.close, nil
}

// helperBackend adapts *client.Client to gui.Backend: it translates the
// client's errors into the gui's and (re)connects to the bus when needed,
// so the window starts and recovers even when the bus is not there yet.
type helperBackend struct {
	bus  string
	host string // remote machine reached over ssh, "" here
	// startHost is the machine at start once the window switched (its
	// --bus applies only there).
	startHost *string
	mu        sync.Mutex
	c         *client.Client
	changed   []func()
	presence  []func(bool)
}

// get returns a connected client, connecting first if needed.
func (h *helperBackend) get() (*client.Client, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.c != nil && h.c.Conn().Connected() {
		return h.c, nil
	}
	if h.c != nil {
		h.c.Close()
		h.c = nil
	}
	c, err := client.ConnectHost(h.host, h.busFor())
	if err != nil {
		var re *client.RemoteError
		if errors.As(err, &re) {
			return nil, fmt.Errorf("%w: %w", gui.ErrUnreachable, err)
		}
		return nil, fmt.Errorf("%w: %w", gui.ErrHelperMissing, err)
	}
	for _, fn := range h.changed {
		c.OnLimitsChanged(fn)
	}
	for _, fn := range h.presence {
		c.OnHelperPresence(fn)
	}
	h.c = c
	return c, nil
}

// setHost points the backend at another machine ("" = this computer): the
// current connection closes, the next call connects there. The bus stays
// the one given at start for this computer; a remote machine's is its
// system bus unless --host was given with --bus.
func (h *helperBackend) setHost(host string) error {
	if host != "" {
		if _, err := client.ParseHost(host); err != nil {
			return err
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.c != nil {
		h.c.Close()
		h.c = nil
	}
	if h.startHost == nil {
		start := h.host
		h.startHost = &start
	}
	h.host = host
	return nil
}

// busFor is the bus to use on host: the one given at start when host is
// the machine the window started with, the system bus otherwise.
func (h *helperBackend) busFor() string {
	if h.startHost == nil || *h.startHost == h.host {
		return h.bus
	}
	return "system"
}

// switcher returns gui.Options.SwitchHost for b, nil when b cannot switch.
func switcher(b gui.Backend) func(string) error {
	if h, ok := b.(*helperBackend); ok {
		return h.setHost
	}
	return nil
}

func (h *helperBackend) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.c != nil {
		h.c.Close()
	}
}

// do runs f with a connected client and translates its error.
func (h *helperBackend) do(f func(c *client.Client) error) error {
	c, err := h.get()
	if err != nil {
		return err
	}
	return wrap(f(c))
}

func (h *helperBackend) Status(ctx context.Context) (s api.Status, err error) {
	err = h.do(func(c *client.Client) (err error) { s, err = c.Status(ctx); return })
	return
}

func (h *helperBackend) Backends(ctx context.Context) (bs []api.Backend, err error) {
	err = h.do(func(c *client.Client) (err error) { bs, err = c.Backends(ctx); return })
	return
}

func (h *helperBackend) Permissions(ctx context.Context) (p api.Permissions, err error) {
	err = h.do(func(c *client.Client) (err error) { p, err = c.Permissions(ctx); return })
	return
}

func (h *helperBackend) Apps(ctx context.Context) (s api.Snapshot, err error) {
	err = h.do(func(c *client.Client) (err error) { s, err = c.Apps(ctx); return })
	return
}

func (h *helperBackend) AppDetails(ctx context.Context, appID string) (d api.AppDetails, err error) {
	err = h.do(func(c *client.Client) (err error) { d, err = c.AppDetails(ctx, appID); return })
	return
}

func (h *helperBackend) SetAppLimit(ctx context.Context, exe string, uid uint32, l api.Limit) error {
	return h.do(func(c *client.Client) error { return c.SetAppLimit(ctx, exe, uid, l) })
}

func (h *helperBackend) RemoveAppLimit(ctx context.Context, exe string, uid uint32) error {
	return h.do(func(c *client.Client) error { return c.RemoveAppLimit(ctx, exe, uid) })
}

func (h *helperBackend) SetProcessLimit(ctx context.Context, pid int32, l api.Limit) error {
	return h.do(func(c *client.Client) error { return c.SetProcessLimit(ctx, pid, l) })
}

func (h *helperBackend) RemoveProcessLimit(ctx context.Context, pid int32) error {
	return h.do(func(c *client.Client) error { return c.RemoveProcessLimit(ctx, pid) })
}

func (h *helperBackend) SetPaused(ctx context.Context, paused bool) error {
	return h.do(func(c *client.Client) error { return c.SetPaused(ctx, paused) })
}

// Running asks the bus whether the helper runs, without starting it.
func (h *helperBackend) Running(ctx context.Context) (up bool, err error) {
	err = h.do(func(c *client.Client) (err error) { up, err = c.Running(ctx); return })
	return
}

// OnLimitsChanged subscribes fn now and on every reconnection; the window
// subscribes once for its lifetime, so cancel only stops the current one.
func (h *helperBackend) OnLimitsChanged(fn func()) func() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.changed = append(h.changed, fn)
	if h.c != nil {
		return h.c.OnLimitsChanged(fn)
	}
	return func() {}
}

// OnHelperPresence subscribes fn now and on every reconnection.
func (h *helperBackend) OnHelperPresence(fn func(bool)) func() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.presence = append(h.presence, fn)
	if h.c != nil {
		return h.c.OnHelperPresence(fn)
	}
	return func() {}
}

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

// wrap marks the client's errors with the gui's sentinels.
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
