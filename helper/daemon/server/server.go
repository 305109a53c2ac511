// Package server exports the helper's engine on D-Bus as api.Interface at
// api.ObjectPath. The first statement of every method authorizes the caller
// with polkit (monitor to read, limit-own for the caller's own processes and
// rules, manage for anything else); arguments are validated before they
// reach the engine; engine errors become api.Err* D-Bus errors only here, at
// the edge; a panic in a call becomes api.ErrFailed instead of killing the
// helper. LimitsChanged is emitted when the engine reports a change.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"

	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/daemon/polkit"
)

// Engine is what the server needs of helper/daemon/engine.
type Engine interface {
	// Snapshot returns the latest 1 Hz view of all apps.
	Snapshot() api.Snapshot
	// AppDetails expands one app; ErrNotFound when there is no such app.
	AppDetails(appID string) (api.AppDetails, error)
	// Rules returns the persisted rules.
	Rules() []api.Rule
	// Status returns the helper's state as uid sees it.
	Status(uid uint32) api.Status
	// Backends lists every compiled backend.
	Backends() []api.Backend
	// SetAppLimit sets (and persists) the rule of exe for uid, as c.
	SetAppLimit(c api.Caller, exe string, uid uint32, l api.Limit) error
	// RemoveAppLimit removes the rule of exe for uid, as c.
	RemoveAppLimit(c api.Caller, exe string, uid uint32) error
	// SetProcessLimit limits one process (and its children), as c; start
	// is the process's start time the caller was authorized for.
	SetProcessLimit(c api.Caller, pid int, start uint64, l api.Limit) error
	// RemoveProcessLimit removes a process's limit, as c.
	RemoveProcessLimit(c api.Caller, pid int, start uint64) error
	// ProcessIdentity returns the uid owning pid (for own-vs-other
	// decisions) and its start time.
	ProcessIdentity(pid int) (owner uint32, start uint64, err error)
	// SetPaused pauses or resumes uid's limits, or everyone's when all.
	SetPaused(uid uint32, all bool, paused bool) error
	// Idle reports that no limit is active.
	Idle() bool
	// OnChange registers fn, called after any limit or rule change.
	OnChange(fn func())
	// BlockEngine blocks apps and processes (block.go).
	BlockEngine
	// GlobalEngine has the global limit and priorities (global.go).
	GlobalEngine
}

// Authorizer answers polkit questions about bus peers; *polkit.Authority
// implements it.
type Authorizer interface {
	// UID returns the unix uid of a bus peer.
	UID(ctx context.Context, sender string) (uint32, error)
	// Check asks whether sender may perform action, letting polkit
	// interact with the user when interactive is set.
	Check(ctx context.Context, sender, action string, interactive bool) (polkit.Result, error)
	// CallContext returns a context for one call of sender that is
	// cancelled when sender leaves the bus.
	CallContext(sender string) (context.Context, context.CancelFunc)
}

// Config configures a Server.
type Config struct {
	Conn   *dbus.Conn
	Engine Engine
	Auth   Authorizer
	// History serves the history and quota methods; nil: unavailable.
	History History
	Log     *slog.Logger
	// CallRate is how many calls a second one uid other than root may
	// make (bursts of twice that); 0 means DefaultCallRate.
	CallRate float64
}

// DefaultCallRate is the calls per second a user may make: the window and
// tray poll once a second with a few calls each.
const DefaultCallRate = 50

// Server is the exported object.
type Server struct {
	conn    *dbus.Conn
	engine  Engine
	history History
	auth    Authorizer
	log     *slog.Logger

	lastCall atomic.Int64 // unix nanoseconds of the last method call
	calls    atomic.Int64
	limiter  *callLimiter
	mu       sync.Mutex
	closed   bool
}

// New validates cfg and returns a server; Export puts it on the bus.
func New(cfg Config) (*Server, error) {
	if cfg.Engine == nil || cfg.Auth == nil {
		return nil, errors.New("server: Engine and Auth are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.CallRate <= 0 {
		cfg.CallRate = DefaultCallRate
	}
	s := &Server{conn: cfg.Conn, engine: cfg.Engine, history: cfg.History, auth: cfg.Auth, log: cfg.Log,
		limiter: newCallLimiter(cfg.CallRate, 2*cfg.CallRate)}
	s.lastCall.Store(time.Now().UnixNano())
	return s, nil
}

// Export exports the object and its introspection data and subscribes to
// the engine's changes. It does not request the bus name.
func (s *Server) Export() error {
	if s.conn == nil {
		return errors.New("server: no bus connection to export on")
	}
	methods := map[string]any{
		api.MethodGetStatus:          s.GetStatus,
		api.MethodGetPermissions:     s.GetPermissions,
		api.MethodListBackends:       s.ListBackends,
		api.MethodGetApps:            s.GetApps,
		api.MethodGetAppDetails:      s.GetAppDetails,
		api.MethodGetRules:           s.GetRules,
		api.MethodSetAppLimit:        s.SetAppLimit,
		api.MethodRemoveAppLimit:     s.RemoveAppLimit,
		api.MethodSetProcessLimit:    s.SetProcessLimit,
		api.MethodRemoveProcessLimit: s.RemoveProcessLimit,
		api.MethodSetPaused:          s.SetPaused,
		// Blocking and schedules (block.go).
		api.MethodSetAppBlock:         s.SetAppBlock,
		api.MethodRemoveAppBlock:      s.RemoveAppBlock,
		api.MethodSetProcessBlock:     s.SetProcessBlock,
		api.MethodRemoveProcessBlock:  s.RemoveProcessBlock,
		api.MethodSetAppLimitWhen:     s.SetAppLimitWhen,
		api.MethodSetProcessLimitWhen: s.SetProcessLimitWhen,
		api.MethodSetProcessBlockWhen: s.SetProcessBlockWhen,
	}
	for _, e := range s.groupMethods() {
		methods[e.name] = e.handler
	}
	if len(methods) != len(api.Methods) {
		return fmt.Errorf("server exports %d methods, api.Methods lists %d", len(methods), len(api.Methods))
	}
	for _, m := range api.Methods {
		if methods[m.Name] == nil {
			return fmt.Errorf("server does not export %s", m.Name)
		}
	}
	if err := s.conn.ExportMethodTable(methods, api.ObjectPath, api.Interface); err != nil {
		return fmt.Errorf("export %s: %w", api.Interface, err)
	}
	if err := s.conn.Export(introspect.NewIntrospectable(s.introspectNode()), api.ObjectPath, "org.freedesktop.DBus.Introspectable"); err != nil {
		return fmt.Errorf("export introspection: %w", err)
	}
	s.engine.OnChange(s.emitChanged)
	return nil
}

// Close stops emitting signals.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

func (s *Server) emitChanged() {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed || s.conn == nil {
		return
	}
	if err := s.conn.Emit(api.ObjectPath, api.Interface+"."+api.SignalLimitsChanged); err != nil {
		s.log.Warn("emit LimitsChanged", "err", err)
	}
}

// LastCall returns when a client last called a method.
func (s *Server) LastCall() time.Time { return time.Unix(0, s.lastCall.Load()) }

// Calls returns the number of method calls served.
func (s *Server) Calls() int64 { return s.calls.Load() }

// caller is an authorized call's context: ctx is cancelled when the
// caller leaves the bus.
type caller struct {
	sender string
	uid    uint32
	ctx    context.Context
}

// interactive reports whether the caller allowed interactive authorization
// for msg (D-Bus's ALLOW_INTERACTIVE_AUTHORIZATION flag): only then may
// polkit show a password dialog.
func interactive(msg dbus.Message) bool {
	return msg.Flags&dbus.FlagAllowInteractiveAuthorization != 0
}

// begin records the call and returns the caller; it fails when the sender's
// uid cannot be found, and when the uid made too many calls. The caller's
// context lives until done is called.
func (s *Server) begin(msg dbus.Message) (c caller, done func(), derr *dbus.Error) {
	s.lastCall.Store(time.Now().UnixNano())
	s.calls.Add(1)
	sender, _ := msg.Headers[dbus.FieldSender].Value().(string)
	ctx, cancel := s.auth.CallContext(sender)
	c = caller{sender: sender, ctx: ctx}
	uid, err := s.auth.UID(c.ctx, sender)
	if err != nil {
		cancel()
		return c, func() {}, s.fail(fmt.Errorf("identify caller: %w", err))
	}
	c.uid = uid
	if uid != 0 && !s.limiter.allow(uid, time.Now()) {
		cancel()
		return c, func() {}, newError(api.ErrTooManyCalls, fmt.Sprintf("uid %d made more than %.0f calls a second; try again in a second", uid, s.limiter.rate))
	}
	return c, cancel, nil
}

// authorize checks action for the caller; on "no" it returns
// api.ErrNotAuthorized saying which action was missing and whether
// authentication was asked for.
func (s *Server) authorize(msg dbus.Message, action string) (caller, func(), *dbus.Error) {
	c, done, derr := s.begin(msg)
	if derr != nil {
		return c, done, derr
	}
	if derr := s.check(c, msg, action); derr != nil {
		done()
		return c, func() {}, derr
	}
	return c, done, nil
}

func (s *Server) check(c caller, msg dbus.Message, action string) *dbus.Error {
	r, err := s.auth.Check(c.ctx, c.sender, action, interactive(msg))
	if err != nil {
		return s.fail(fmt.Errorf("authorization check: %w", err))
	}
	if err := r.Err(action); err != nil {
		return newError(api.ErrNotAuthorized, fmt.Sprintf("uid %d: %v", c.uid, err))
	}
	return nil
}

// manages reports, without interaction, whether the caller holds manage
// (root does): it then sees every user's apps in full.
func (s *Server) manages(c caller) bool {
	if c.uid == 0 {
		return true
	}
	r, err := s.auth.Check(c.ctx, c.sender, api.ActionManage, false)
	return err == nil && r.Authorized
}

// authorizeOwner authorizes a limiting call on a target owned by owner:
// limit-own when owner is the caller's uid, manage otherwise, and manage
// when the target cannot be found — so a caller without manage learns
// nothing about targets that are not its own (not even whether a pid
// exists). It returns whether manage was granted.
func (s *Server) authorizeOwner(msg dbus.Message, owner func() (uint32, error)) (c caller, done func(), admin bool, derr *dbus.Error) {
	c, done, derr = s.begin(msg)
	if derr != nil {
		return c, done, false, derr
	}
	uid, err := owner()
	action := api.ActionManage
	if err == nil && uid == c.uid {
		action = api.ActionLimitOwn
	}
	if derr := s.check(c, msg, action); derr != nil {
		done()
		return c, func() {}, false, derr
	}
	if err != nil {
		done()
		return c, func() {}, false, s.mapErr(err)
	}
	return c, done, action == api.ActionManage || c.uid == 0, nil
}

// ownerChange is the shape of a change to one owner's target (a limit,
// a rule): authorize with limit-own when owner() is the caller's uid and
// manage otherwise, then check the arguments (nothing is done when check
// fails), then make the change with change.
func (s *Server) ownerChange(msg dbus.Message, owner func() (uint32, error), check func() error, fn func(api.Caller) error) *dbus.Error {
	c, done, admin, derr := s.authorizeOwner(msg, owner)
	if derr != nil {
		return derr
	}
	defer done()
	if err := check(); err != nil {
		return s.mapErr(err)
	}
	return s.change(c, msg, admin, fn)
}

// uidOwner is the owner of a change to uid's own targets.
func uidOwner(uid uint32) func() (uint32, error) {
	return func() (uint32, error) { return uid, nil }
}

// change runs an engine change as the caller. When the engine says it
// needs manage (the limit was set by an administrator) and the call was
// not authorized with it, manage is asked for (interactively when the
// caller allows it) and the change tried again as an administrator. A
// caller that left the bus meanwhile gets nothing applied.
func (s *Server) change(c caller, msg dbus.Message, admin bool, fn func(api.Caller) error) *dbus.Error {
	if c.ctx.Err() != nil {
		return s.fail(errors.New("the caller left the bus before the change was made"))
	}
	err := fn(api.Caller{UID: c.uid, Admin: admin || c.uid == 0})
	if err != nil && !admin && api.KindOf(err) == api.KindNeedsManage {
		if derr := s.check(c, msg, api.ActionManage); derr != nil {
			return newError(api.ErrNotAuthorized, fmt.Sprintf("%v; %s", err, derr.Body[0]))
		}
		if c.ctx.Err() != nil {
			return s.fail(errors.New("the caller left the bus before the change was made"))
		}
		err = fn(api.Caller{UID: c.uid, Admin: true})
	}
	return s.mapErr(err)
}

// guard turns a panic into api.ErrFailed; every method defers it.
func (s *Server) guard(method string, derr **dbus.Error) {
	if r := recover(); r != nil {
		s.log.Error("panic in D-Bus method", "method", method, "panic", r, "stack", string(debug.Stack()))
		*derr = newError(api.ErrFailed, fmt.Sprintf("internal error in %s: %v", method, r))
	}
}

func invalid(format string, args ...any) error {
	return api.Errorf(api.ErrInvalid, format, args...)
}

// mapErr converts an engine or validation error to its D-Bus error: the
// contract's kind it wraps (api.KindOf) names it.
func (s *Server) mapErr(err error) *dbus.Error {
	if err == nil {
		return nil
	}
	name := api.KindOf(err).DBusName()
	if errors.Is(err, errOthersApp) {
		name = api.ErrNotAuthorized
	}
	return newError(name, err.Error())
}

func (s *Server) fail(err error) *dbus.Error {
	return newError(api.ErrFailed, err.Error())
}

// newError makes a D-Bus error whose message is valid UTF-8 (godbus cannot
// send anything else, and the caller would only see a timeout).
func newError(name, msg string) *dbus.Error {
	return dbus.NewError(name, []any{strings.ToValidUTF8(msg, "\ufffd")})
}

// maxAppIDLen bounds an app id ("<uid>:<exe>").
const maxAppIDLen = api.MaxExeLen + 16

func validExe(exe string) error {
	switch {
	case exe == "":
		return invalid("exe is empty")
	case len(exe) > maxAppIDLen:
		return invalid("exe is %d bytes long (at most %d)", len(exe), api.MaxExeLen)
	case !utf8.ValidString(exe):
		return invalid("exe is not valid UTF-8")
	case strings.ContainsRune(exe, 0):
		return invalid("exe contains a NUL byte")
	case strings.HasPrefix(exe, "/"):
		return nil
	}
	// The app id form "<uid>:<exe>" names the same executable.
	if uid, rest, ok := strings.Cut(exe, ":"); ok && uid != "" && strings.Trim(uid, "0123456789") == "" && strings.HasPrefix(rest, "/") {
		return nil
	}
	return invalid("exe %q is not an absolute path (or an app id UID:/path)", exe)
}

func validAppID(id string) error {
	switch {
	case id == "":
		return invalid("app id is empty")
	case len(id) > maxAppIDLen:
		return invalid("app id is %d bytes long (at most %d)", len(id), maxAppIDLen)
	case !utf8.ValidString(id):
		return invalid("app id is not valid UTF-8")
	}
	uid, _, ok := strings.Cut(id, ":")
	if !ok || uid == "" || strings.Trim(uid, "0123456789") != "" {
		return invalid("app id %q is not of the form UID:EXE", id)
	}
	return nil
}

func validPID(pid uint32) error {
	return api.ValidatePID(int64(pid))
}

// validLimit checks rates and the traffic type and returns the limit.
func validLimit(down, up uint64, traffic string) (api.Limit, error) {
	if len(traffic) > 32 {
		traffic = traffic[:32] + "..."
	}
	return api.ValidateLimit(api.Limit{Down: down, Up: up, Traffic: traffic})
}
