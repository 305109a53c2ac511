// Package polkit asks polkit whether a D-Bus caller may perform an action:
// org.freedesktop.PolicyKit1.Authority.CheckAuthorization with the caller's
// unique bus name as a "system-bus-name" subject, under a timeout, cancelled
// when the caller gives up. Callers with uid 0 pass without asking. Positive
// answers are cached per (sender, action) for a few seconds — clients poll at
// 1 Hz — and forgotten when the sender leaves the bus.
package polkit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/godbus/dbus/v5"
)

// polkit's D-Bus names.
const (
	authorityName  = "org.freedesktop.PolicyKit1"
	authorityPath  = "/org/freedesktop/PolicyKit1/Authority"
	authorityIface = "org.freedesktop.PolicyKit1.Authority"

	flagAllowUserInteraction = 1
)

// Timeouts of one check: an interactive check waits for the user to type a
// password.
const (
	InteractiveTimeout = 30 * time.Second
	QuickTimeout       = 5 * time.Second
	// CacheTTL is how long a positive answer is reused for one sender.
	CacheTTL = 5 * time.Second
)

// Result is polkit's answer.
type Result struct {
	Authorized bool
	// Challenge: not authorized now, but would be after authentication
	// (is_challenge); with interaction allowed this means the user
	// dismissed or failed the dialog, or no agent could ask.
	Challenge bool
	// Root: the caller is uid 0 and polkit was not asked.
	Root bool
}

// ErrDenied is wrapped by Authorize when polkit says no.
var ErrDenied = errors.New("not authorized")

// ErrChallenge is wrapped by Authorize when polkit wants authentication the
// caller did not (or could not) provide.
var ErrChallenge = errors.New("authentication required")

type cacheKey struct{ sender, action string }

// maxCache bounds the answers kept; expired ones are swept when it is
// reached.
const maxCache = 4096

// Authority checks callers on one bus connection. It is safe for concurrent
// use.
type Authority struct {
	conn *dbus.Conn
	obj  dbus.BusObject
	now  func() time.Time

	mu       sync.Mutex
	cache    map[cacheKey]time.Time // positive answers: expiry
	denied   map[cacheKey]time.Time // negative answers to non-interactive checks: expiry
	flatNo   map[cacheKey]bool      // of those, the ones polkit said no to without a challenge
	uids     map[string]uint32      // sender → uid
	calls    map[string]map[uint64]context.CancelFunc
	nextCall uint64

	quick, interactive time.Duration // timeouts of one check

	seq     atomic.Uint64
	signals chan *dbus.Signal
	done    chan struct{}
	// Checks counts the questions sent to polkit (for tests and benches).
	Checks atomic.Int64
}

// New returns an authority using conn (the bus polkitd is on). It subscribes
// to NameOwnerChanged to forget callers that leave.
func New(conn *dbus.Conn) (*Authority, error) {
	a := &Authority{
		conn:  conn,
		obj:   conn.Object(authorityName, authorityPath),
		now:   time.Now,
		quick: QuickTimeout, interactive: InteractiveTimeout,
		cache:   map[cacheKey]time.Time{},
		denied:  map[cacheKey]time.Time{},
		flatNo:  map[cacheKey]bool{},
		uids:    map[string]uint32{},
		calls:   map[string]map[uint64]context.CancelFunc{},
		signals: make(chan *dbus.Signal, 64),
		done:    make(chan struct{}),
	}
	if err := conn.AddMatchSignal(
		dbus.WithMatchInterface("org.freedesktop.DBus"),
		dbus.WithMatchMember("NameOwnerChanged"),
		dbus.WithMatchSender("org.freedesktop.DBus"),
	); err != nil {
		return nil, fmt.Errorf("subscribe to NameOwnerChanged: %w", err)
	}
	conn.Signal(a.signals)
	go a.watch()
	return a, nil
}

// SetTimeouts changes the timeouts of a check (tests).
func (a *Authority) SetTimeouts(quick, interactive time.Duration) {
	a.quick, a.interactive = quick, interactive
}

// Close stops watching the bus.
func (a *Authority) Close() {
	a.conn.RemoveSignal(a.signals)
	select {
	case <-a.done:
	default:
		close(a.done)
	}
}

func (a *Authority) watch() {
	for {
		select {
		case <-a.done:
			return
		case s, ok := <-a.signals:
			if !ok {
				return
			}
			if s.Name != "org.freedesktop.DBus.NameOwnerChanged" || len(s.Body) != 3 {
				continue
			}
			name, _ := s.Body[0].(string)
			newOwner, _ := s.Body[2].(string)
			if newOwner == "" && name != "" {
				a.Forget(name)
			}
		}
	}
}

// Forget drops everything cached about sender and cancels its calls in
// flight: a caller that left the bus gets nothing applied, and answers
// that arrive for it afterwards are not stored.
func (a *Authority) Forget(sender string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.uids, sender)
	for k := range a.cache {
		if k.sender == sender {
			delete(a.cache, k)
		}
	}
	for k := range a.denied {
		if k.sender == sender {
			delete(a.denied, k)
			delete(a.flatNo, k)
		}
	}
	for _, cancel := range a.calls[sender] {
		cancel()
	}
	delete(a.calls, sender)
}

// CallContext returns a context for one call of sender, cancelled when
// sender leaves the bus (or cancel is called, which the caller must do).
func (a *Authority) CallContext(sender string) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	a.mu.Lock()
	defer a.mu.Unlock()
	a.nextCall++
	id := a.nextCall
	if a.calls[sender] == nil {
		a.calls[sender] = map[uint64]context.CancelFunc{}
	}
	a.calls[sender][id] = cancel
	return ctx, func() {
		cancel()
		a.mu.Lock()
		defer a.mu.Unlock()
		if m := a.calls[sender]; m != nil {
			delete(m, id)
			if len(m) == 0 {
				delete(a.calls, sender)
			}
		}
	}
}

// Cached reports how many answers and uids are cached and calls tracked
// (for tests: nothing may stay behind for callers that left).
func (a *Authority) Cached() (answers, uids, calls int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.cache) + len(a.denied), len(a.uids), len(a.calls)
}

// storeLocked keeps an answer unless the call's caller has left; expired
// answers are swept when the cache is full.
func (a *Authority) storeLocked(ctx context.Context, m map[cacheKey]time.Time, k cacheKey) {
	if ctx.Err() != nil {
		return
	}
	now := a.now()
	if len(a.cache)+len(a.denied) >= maxCache {
		for _, mm := range []map[cacheKey]time.Time{a.cache, a.denied} {
			for k, exp := range mm {
				if !now.Before(exp) {
					delete(mm, k)
					delete(a.flatNo, k)
				}
			}
		}
		if len(a.cache)+len(a.denied) >= maxCache {
			return
		}
	}
	m[k] = now.Add(CacheTTL)
}

// UID returns the unix uid of the connection sender
// (org.freedesktop.DBus.GetConnectionUnixUser), cached until it leaves.
func (a *Authority) UID(ctx context.Context, sender string) (uint32, error) {
	a.mu.Lock()
	uid, ok := a.uids[sender]
	a.mu.Unlock()
	if ok {
		return uid, nil
	}
	ctx, cancel := context.WithTimeout(ctx, QuickTimeout)
	defer cancel()
	if err := a.conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.GetConnectionUnixUser", 0, sender).Store(&uid); err != nil {
		return 0, fmt.Errorf("uid of bus peer %s: %w", sender, err)
	}
	a.mu.Lock()
	if ctx.Err() == nil && len(a.uids) < maxCache {
		a.uids[sender] = uid
	}
	a.mu.Unlock()
	return uid, nil
}

// Check asks whether sender may perform action. interactive lets polkit
// ask the user to authenticate (an agent dialog); otherwise a "challenge"
// answer comes back at once. uid 0 passes without asking.
func (a *Authority) Check(ctx context.Context, sender, action string, interactive bool) (Result, error) {
	if sender == "" {
		return Result{}, errors.New("check authorization: message has no sender")
	}
	uid, err := a.UID(ctx, sender)
	if err != nil {
		return Result{}, err
	}
	if uid == 0 {
		return Result{Authorized: true, Root: true}, nil
	}
	key := cacheKey{sender, action}
	a.mu.Lock()
	exp, ok := a.cache[key]
	dexp, dok := a.denied[key]
	flat := a.flatNo[key]
	a.mu.Unlock()
	if ok && a.now().Before(exp) {
		return Result{Authorized: true}, nil
	}
	if dok && !interactive && a.now().Before(dexp) {
		// A non-interactive "no" (the window asking once a second
		// whether its user may manage) is reused; an interactive check
		// always asks, so the user can authenticate.
		return Result{Challenge: !flat}, nil
	}
	timeout := a.quick
	var flags uint32
	if interactive {
		flags = flagAllowUserInteraction
		timeout = a.interactive
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	subject := struct {
		Kind    string
		Details map[string]dbus.Variant
	}{"system-bus-name", map[string]dbus.Variant{"name": dbus.MakeVariant(sender)}}
	cancelID := "chadthrottle-" + strconv.FormatUint(a.seq.Add(1), 10)
	a.Checks.Add(1)
	var reply struct {
		Authorized bool
		Challenge  bool
		Details    map[string]string
	}
	call := a.obj.CallWithContext(ctx, authorityIface+".CheckAuthorization", 0,
		subject, action, map[string]string{}, flags, cancelID)
	if err := call.Store(&reply); err != nil {
		if ctx.Err() != nil {
			// Tell polkit to close the dialog it may be showing.
			cctx, ccancel := context.WithTimeout(context.Background(), QuickTimeout)
			a.obj.CallWithContext(cctx, authorityIface+".CancelCheckAuthorization", 0, cancelID)
			ccancel()
			return Result{}, fmt.Errorf("polkit check of %s for %s: %w", action, sender, ctx.Err())
		}
		return Result{}, fmt.Errorf("polkit check of %s for %s: %w", action, sender, err)
	}
	r := Result{Authorized: reply.Authorized, Challenge: reply.Challenge}
	a.mu.Lock()
	switch {
	case r.Authorized:
		delete(a.denied, key)
		delete(a.flatNo, key)
		a.storeLocked(ctx, a.cache, key)
	case !interactive:
		a.storeLocked(ctx, a.denied, key)
		if _, stored := a.denied[key]; stored && !r.Challenge {
			a.flatNo[key] = true
		}
	}
	a.mu.Unlock()
	return r, nil
}

// Authorize is Check that returns an error wrapping ErrDenied or
// ErrChallenge when the answer is no.
func (a *Authority) Authorize(ctx context.Context, sender, action string, interactive bool) error {
	r, err := a.Check(ctx, sender, action, interactive)
	if err != nil {
		return err
	}
	return r.Err(action)
}

// Err returns nil when r is authorized, otherwise an error wrapping
// ErrChallenge or ErrDenied that names the action.
func (r Result) Err(action string) error {
	switch {
	case r.Authorized:
		return nil
	case r.Challenge:
		return fmt.Errorf("%w for %s (polkit asked for authentication and none was given)", ErrChallenge, action)
	}
	return fmt.Errorf("%w for %s (polkit denied it)", ErrDenied, action)
}

// SameUser authorizes only root and one uid: the policy of a session bus,
// which belongs to one user and has no polkit subject of its own
// (development and tests with --bus session).
type SameUser struct {
	conn *dbus.Conn
	uid  uint32
}

// NewSameUser returns a SameUser authority for uid on conn.
func NewSameUser(conn *dbus.Conn, uid uint32) *SameUser { return &SameUser{conn: conn, uid: uid} }

// UID returns the unix uid of sender.
func (s *SameUser) UID(ctx context.Context, sender string) (uint32, error) {
	var uid uint32
	ctx, cancel := context.WithTimeout(ctx, QuickTimeout)
	defer cancel()
	if err := s.conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.GetConnectionUnixUser", 0, sender).Store(&uid); err != nil {
		return 0, fmt.Errorf("uid of bus peer %s: %w", sender, err)
	}
	return uid, nil
}

// Check allows root and the session's user, and denies everyone else.
func (s *SameUser) Check(ctx context.Context, sender, action string, interactive bool) (Result, error) {
	uid, err := s.UID(ctx, sender)
	if err != nil {
		return Result{}, err
	}
	return Result{Authorized: uid == 0 || uid == s.uid, Root: uid == 0}, nil
}

// CallContext returns a context for one call (not tied to the caller's
// presence on a session bus).
func (s *SameUser) CallContext(string) (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

// Close does nothing; it matches Authority.
func (s *SameUser) Close() {}
