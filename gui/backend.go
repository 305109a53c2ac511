// Package gui is ChadThrottle's desktop window and tray icon, written with
// Fyne. It talks to the privileged helper only through Backend, a small
// interface it declares here (cmd/chadthrottle adapts helper/client to it;
// Fake stands in for tests), so the whole package runs headless under
// Fyne's test driver with CGO_ENABLED=0.
//
// Threading: widgets are touched only on Fyne's UI goroutine. Helper calls
// run on goroutines of their own and hand results to the UI with fyne.Do.
package gui

import (
	"context"
	"errors"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// Backend is what the window needs from the helper. Every method may block
// on the bus, so the UI calls them off its goroutine with a deadline.
type Backend interface {
	// Status reports the helper's version, its active backends and why
	// download limiting is unavailable, if it is.
	Status(ctx context.Context) (api.Status, error)
	// Backends lists the helper's backends and placement modes (kind
	// "placement"), the active ones marked; the status line names the
	// active placement (do limited processes stay in their cgroups?).
	Backends(ctx context.Context) ([]api.Backend, error)
	// Permissions reports what the caller may do; LimitOwn == api.PermNo
	// makes the window read-only.
	Permissions(ctx context.Context) (api.Permissions, error)
	// Apps returns one 1 Hz snapshot of all apps.
	Apps(ctx context.Context) (api.Snapshot, error)
	// AppDetails returns an app's processes, connections and 60 s history.
	AppDetails(ctx context.Context, appID string) (api.AppDetails, error)
	// SetAppLimit sets (replaces) the persistent limit of an executable run
	// by uid. A zero rate means that direction is unlimited.
	SetAppLimit(ctx context.Context, exe string, uid uint32, l api.Limit) error
	// RemoveAppLimit removes the limit (rule) of an executable run by uid.
	RemoveAppLimit(ctx context.Context, exe string, uid uint32) error
	// SetProcessLimit limits one running process.
	SetProcessLimit(ctx context.Context, pid int32, l api.Limit) error
	// RemoveProcessLimit removes a process limit.
	RemoveProcessLimit(ctx context.Context, pid int32) error
	// SetPaused pauses or resumes the caller's limits.
	SetPaused(ctx context.Context, paused bool) error
	// OnLimitsChanged calls fn (on any goroutine) when a limit or rule
	// changes anywhere; cancel stops the calls.
	OnLimitsChanged(fn func()) (cancel func())
	// Running reports whether the helper runs now, without starting it
	// (the other methods start a D-Bus-activated helper).
	Running(ctx context.Context) (bool, error)
	// OnHelperPresence calls fn (on any goroutine) when the helper appears
	// on or leaves the bus.
	OnHelperPresence(fn func(running bool)) (cancel func())
	// BlockBackend blocks apps (block.go).
	BlockBackend
	// GlobalBackend has the global limit and priorities (global.go).
	GlobalBackend
}

// Errors a Backend wraps so the window can explain the situation in plain
// words; anything else counts as "the helper does not answer".
var (
	// ErrHelperMissing: the helper is not running and cannot be started.
	ErrHelperMissing = errors.New("helper missing")
	// ErrNotAuthorized: polkit refused the call.
	ErrNotAuthorized = errors.New("not authorized")
	// ErrUnavailable: the helper cannot do this here (e.g. download limits).
	ErrUnavailable = errors.New("unavailable")
	// ErrUnreachable: the remote machine cannot be reached (ssh missing,
	// host down, login refused, no systemd-stdio-bridge there).
	ErrUnreachable = errors.New("remote machine unreachable")
)
