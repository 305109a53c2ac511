// Package client is the typed D-Bus client of chadthrottle-helper, used by
// the GUI and chadthrottlectl. Every call has a timeout; limiting calls set
// the allow-interactive-authorization flag so polkit may ask the user for a
// password. Errors from the helper come back as *Error values that match
// the sentinels of this package with errors.Is.
package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// Timeouts of calls whose context has no deadline.
const (
	// ReadTimeout bounds reading calls (status, apps, rules).
	ReadTimeout = 10 * time.Second
	// LimitTimeout bounds limiting calls: polkit may show a password
	// dialog (the helper gives it 30 s).
	LimitTimeout = 45 * time.Second
)

// Error is an error the helper (or the bus) returned.
type Error struct {
	Name    string // D-Bus error name, e.g. api.ErrNotAuthorized
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Name
	}
	return e.Message
}

// Is matches errors with the same Name, so errors.Is(err, ErrNotAuthorized)
// works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Name == e.Name
}

// Sentinels for errors.Is, one per api.Err* name.
var (
	ErrNotAuthorized   = &Error{Name: api.ErrNotAuthorized, Message: "not authorized"}
	ErrInvalidArgument = &Error{Name: api.ErrInvalidArgument, Message: "invalid argument"}
	ErrNotFound        = &Error{Name: api.ErrNotFound, Message: "not found"}
	ErrUnavailable     = &Error{Name: api.ErrUnavailable, Message: "unavailable"}
	ErrFailed          = &Error{Name: api.ErrFailed, Message: "failed"}
	ErrQuotaExceeded   = &Error{Name: api.ErrQuotaExceeded, Message: "quota exceeded"}
	ErrTooManyCalls    = &Error{Name: api.ErrTooManyCalls, Message: "too many calls"}
)

// ErrHelperMissing is returned when the helper's name has no owner and the
// bus cannot start it.
var ErrHelperMissing = errors.New("chadthrottle-helper is not running and could not be started (is it installed?)")

// Client is a connection to the helper. It is safe for concurrent use.
type Client struct {
	conn *dbus.Conn
	obj  dbus.BusObject
	own  bool   // conn is ours to close
	host string // remote host ([USER@]HOST[:PORT]) or "" for this machine

	mu       sync.Mutex
	nextID   int
	changed  map[int]func()
	presence map[int]func(bool)
	signals  chan *dbus.Signal
	done     chan struct{}
	matched  bool
}

// Connect connects to the helper on bus: "system", "session" or a D-Bus
// address (unix:path=…). It does not call the helper yet.
func Connect(bus string) (*Client, error) {
	conn, err := Dial(bus)
	if err != nil {
		return nil, err
	}
	c := newClient(conn)
	c.own = true
	return c, nil
}

// New wraps an existing connection (tests, embedding); Close does not close
// conn.
func New(conn *dbus.Conn) *Client { return newClient(conn) }

func newClient(conn *dbus.Conn) *Client {
	return &Client{
		conn:     conn,
		obj:      conn.Object(api.BusName, api.ObjectPath),
		changed:  map[int]func(){},
		presence: map[int]func(bool){},
	}
}

// Dial connects to a bus: "system" (or ""), "session" or a D-Bus address.
// The helper uses it too, so both ends read --bus the same way.
func Dial(bus string) (*dbus.Conn, error) {
	var (
		conn *dbus.Conn
		err  error
	)
	switch bus {
	case "", "system":
		conn, err = dbus.ConnectSystemBus()
	case "session":
		conn, err = dbus.ConnectSessionBus()
	default:
		if !strings.Contains(bus, ":") {
			return nil, fmt.Errorf("bus %q is not system, session or a D-Bus address (unix:path=…)", bus)
		}
		conn, err = dbus.Connect(bus)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to the %s bus: %w", busLabel(bus), err)
	}
	return conn, nil
}

func busLabel(bus string) string {
	if bus == "" {
		return "system"
	}
	return bus
}

// Conn returns the underlying bus connection.
func (c *Client) Conn() *dbus.Conn { return c.conn }

// Close stops signal delivery and closes the connection if Connect made it.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.signals != nil {
		c.conn.RemoveSignal(c.signals)
		close(c.done)
		c.signals = nil
	}
	c.changed = map[int]func(){}
	c.presence = map[int]func(bool){}
	c.mu.Unlock()
	if c.own {
		return c.conn.Close()
	}
	return nil
}

// call invokes a method; limiting calls allow interactive authorization.
func (c *Client) call(ctx context.Context, method string, limiting bool, out []any, args ...any) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if _, ok := ctx.Deadline(); !ok {
		timeout := ReadTimeout
		if limiting {
			timeout = LimitTimeout
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var flags dbus.Flags
	if limiting {
		flags |= dbus.FlagAllowInteractiveAuthorization
	}
	call := c.obj.CallWithContext(ctx, api.Interface+"."+method, flags, args...)
	if call.Err != nil {
		return c.onHost(convert(method, call.Err, ctx))
	}
	if len(out) > 0 {
		if err := call.Store(out...); err != nil {
			return fmt.Errorf("decode reply of %s: %w", method, err)
		}
	}
	return nil
}

func convert(method string, err error, ctx context.Context) error {
	var de dbus.Error
	var dep *dbus.Error
	switch {
	case errors.As(err, &de):
	case errors.As(err, &dep):
		de = *dep
	default:
		if ctx.Err() != nil {
			return fmt.Errorf("call %s: %w", method, ctx.Err())
		}
		return fmt.Errorf("call %s: %w", method, err)
	}
	switch de.Name {
	case "org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner",
		"org.freedesktop.DBus.Error.Spawn.ServiceNotFound", "org.freedesktop.DBus.Error.Spawn.ChildExited",
		"org.freedesktop.DBus.Error.Spawn.ExecFailed", "org.freedesktop.DBus.Error.Spawn.Failed":
		return fmt.Errorf("%w: %s", ErrHelperMissing, errorBody(de))
	}
	return &Error{Name: de.Name, Message: errorBody(de)}
}

// onHost adds the remote host to errors of a remote client: the helper
// missing there, or polkit there refusing the login user (who is in no
// active session over SSH).
func (c *Client) onHost(err error) error {
	if c.host == "" || err == nil {
		return err
	}
	var e *Error
	switch {
	case errors.Is(err, ErrHelperMissing):
		return fmt.Errorf("on %s: %w", c.host, err)
	case errors.As(err, &e) && e.Name == api.ErrNotAuthorized:
		return &Error{Name: e.Name, Message: e.Message + " (polkit on " + hostName(c.host) + "; " + RemotePolkitHint(c.host) + ")"}
	case !c.conn.Connected():
		return fmt.Errorf("the ssh connection to %s ended: %w", c.host, err)
	}
	return err
}

func errorBody(e dbus.Error) string {
	if len(e.Body) > 0 {
		if s, ok := e.Body[0].(string); ok {
			return s
		}
	}
	return e.Name
}

// Status returns the helper's state (needs monitor).
func (c *Client) Status(ctx context.Context) (api.Status, error) {
	var s api.Status
	return s, c.call(ctx, api.MethodGetStatus, false, []any{&s})
}

// Permissions returns what the caller may do; it never asks for a password.
func (c *Client) Permissions(ctx context.Context) (api.Permissions, error) {
	var p api.Permissions
	return p, c.call(ctx, api.MethodGetPermissions, false, []any{&p})
}

// Backends lists every compiled backend (needs monitor).
func (c *Client) Backends(ctx context.Context) ([]api.Backend, error) {
	var bs []api.Backend
	return bs, c.call(ctx, api.MethodListBackends, false, []any{&bs})
}

// Apps returns the current snapshot of all apps (needs monitor). Clients
// poll it at 1 Hz.
func (c *Client) Apps(ctx context.Context) (api.Snapshot, error) {
	var s api.Snapshot
	return s, c.call(ctx, api.MethodGetApps, false, []any{&s})
}

// AppDetails expands one app: processes, connections, history.
func (c *Client) AppDetails(ctx context.Context, appID string) (api.AppDetails, error) {
	var d api.AppDetails
	return d, c.call(ctx, api.MethodGetAppDetails, false, []any{&d}, appID)
}

// Rules returns the persisted per-app rules.
func (c *Client) Rules(ctx context.Context) ([]api.Rule, error) {
	var rs []api.Rule
	return rs, c.call(ctx, api.MethodGetRules, false, []any{&rs})
}

// SetAppLimit sets a persisted rule on exe for uid (limit-own for the
// caller's uid, manage otherwise). Zero rates are unlimited.
func (c *Client) SetAppLimit(ctx context.Context, exe string, uid uint32, l api.Limit) error {
	if l.When != "" {
		return c.call(ctx, api.MethodSetAppLimitWhen, true, nil, exe, uid, l.Down, l.Up, l.WireTraffic(), l.When)
	}
	return c.call(ctx, api.MethodSetAppLimit, true, nil, exe, uid, l.Down, l.Up, l.WireTraffic())
}

// RemoveAppLimit removes the rule on exe for uid.
func (c *Client) RemoveAppLimit(ctx context.Context, exe string, uid uint32) error {
	return c.call(ctx, api.MethodRemoveAppLimit, true, nil, exe, uid)
}

// SetProcessLimit limits one process and its children.
func (c *Client) SetProcessLimit(ctx context.Context, pid int32, l api.Limit) error {
	if pid <= 0 {
		return &Error{Name: api.ErrInvalidArgument, Message: fmt.Sprintf("pid %d is out of range", pid)}
	}
	if l.When != "" {
		return c.call(ctx, api.MethodSetProcessLimitWhen, true, nil, uint32(pid), l.Down, l.Up, l.WireTraffic(), l.When)
	}
	return c.call(ctx, api.MethodSetProcessLimit, true, nil, uint32(pid), l.Down, l.Up, l.WireTraffic())
}

// RemoveProcessLimit removes a process's limit.
func (c *Client) RemoveProcessLimit(ctx context.Context, pid int32) error {
	if pid <= 0 {
		return &Error{Name: api.ErrInvalidArgument, Message: fmt.Sprintf("pid %d is out of range", pid)}
	}
	return c.call(ctx, api.MethodRemoveProcessLimit, true, nil, uint32(pid))
}

// SetPaused pauses or resumes the caller's limits (everyone's with manage).
func (c *Client) SetPaused(ctx context.Context, paused bool) error {
	return c.call(ctx, api.MethodSetPaused, true, nil, paused)
}

// OnLimitsChanged calls fn (on a goroutine of the client) whenever the
// helper emits LimitsChanged. cancel unregisters it.
func (c *Client) OnLimitsChanged(fn func()) (cancel func()) {
	return c.register(func(id int) { c.changed[id] = fn }, func(id int) { delete(c.changed, id) })
}

// OnHelperPresence calls fn(true) when the helper's name gains an owner and
// fn(false) when it loses it (the helper exited or crashed).
func (c *Client) OnHelperPresence(fn func(running bool)) (cancel func()) {
	return c.register(func(id int) { c.presence[id] = fn }, func(id int) { delete(c.presence, id) })
}

func (c *Client) register(add, del func(id int)) func() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.startSignalsLocked()
	id := c.nextID
	c.nextID++
	add(id)
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			del(id)
			c.mu.Unlock()
		})
	}
}

func (c *Client) startSignalsLocked() {
	if c.signals != nil {
		return
	}
	if !c.matched {
		// Errors here only mean no notifications; calls still work.
		_ = c.conn.AddMatchSignal(dbus.WithMatchObjectPath(api.ObjectPath),
			dbus.WithMatchInterface(api.Interface), dbus.WithMatchMember(api.SignalLimitsChanged))
		_ = c.conn.AddMatchSignal(dbus.WithMatchSender("org.freedesktop.DBus"),
			dbus.WithMatchInterface("org.freedesktop.DBus"), dbus.WithMatchMember("NameOwnerChanged"),
			dbus.WithMatchArg(0, api.BusName))
		c.matched = true
	}
	c.signals = make(chan *dbus.Signal, 32)
	c.done = make(chan struct{})
	c.conn.Signal(c.signals)
	go c.dispatch(c.signals, c.done)
}

func (c *Client) dispatch(ch chan *dbus.Signal, done chan struct{}) {
	for {
		select {
		case <-done:
			return
		case s, ok := <-ch:
			if !ok {
				return
			}
			c.deliver(s)
		}
	}
}

func (c *Client) deliver(s *dbus.Signal) {
	switch {
	case s.Name == api.Interface+"."+api.SignalLimitsChanged && s.Path == api.ObjectPath:
		c.mu.Lock()
		fns := make([]func(), 0, len(c.changed))
		for _, fn := range c.changed {
			fns = append(fns, fn)
		}
		c.mu.Unlock()
		for _, fn := range fns {
			fn()
		}
	case s.Name == "org.freedesktop.DBus.NameOwnerChanged" && len(s.Body) == 3:
		name, _ := s.Body[0].(string)
		newOwner, _ := s.Body[2].(string)
		if name != api.BusName {
			return
		}
		c.mu.Lock()
		fns := make([]func(bool), 0, len(c.presence))
		for _, fn := range c.presence {
			fns = append(fns, fn)
		}
		c.mu.Unlock()
		for _, fn := range fns {
			fn(newOwner != "")
		}
	}
}

// Running reports whether the helper's name has an owner now (without
// starting it).
func (c *Client) Running(ctx context.Context) (bool, error) {
	var has bool
	err := c.conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, api.BusName).Store(&has)
	if err != nil {
		return false, fmt.Errorf("ask the bus about %s: %w", api.BusName, err)
	}
	return has, nil
}
