package api

import (
	"errors"
	"fmt"
)

// Kind is the kind of a refused call. The helper's packages return errors
// that wrap one of the Kind sentinels below; the server sends the kind's
// D-Bus error name (Kind.DBusName) and the error's text, and clients match
// with errors.Is on their side (helper/client). No one rebuilds a kind from
// an error's text.
type Kind int

const (
	KindFailed      Kind = iota // the kernel or the helper failed; the message says why
	KindInvalid                 // the caller's input is not acceptable
	KindNotFound                // no such process, app or rule
	KindNeedsManage             // the change needs the manage permission; the server asks polkit for it
	KindQuota                   // a user's bound on rules or limits is reached
	KindUnavailable             // the feature is not available with the running backends
)

// DBusName is the D-Bus error name the server sends for k. KindNeedsManage
// is sent as ErrNotAuthorized once the manage permission was refused.
func (k Kind) DBusName() string {
	switch k {
	case KindInvalid:
		return ErrInvalidArgument
	case KindNotFound:
		return ErrNotFound
	case KindNeedsManage:
		return ErrNotAuthorized
	case KindQuota:
		return ErrQuotaExceeded
	case KindUnavailable:
		return ErrUnavailable
	}
	return ErrFailed
}

// KindError is the sentinel of a Kind: errors.Is(err, api.ErrInvalid)
// holds for every error that wraps ErrInvalid.
type KindError struct {
	Kind Kind
	text string
}

func (e *KindError) Error() string { return e.text }

// The sentinels, one per Kind. Wrap them with Errorf (or fmt.Errorf("%w:
// …")); their text starts the message.
var (
	ErrInvalid     = &KindError{KindInvalid, "invalid argument"}
	ErrNoSuch      = &KindError{KindNotFound, "not found"}
	ErrNeedsManage = &KindError{KindNeedsManage, "needs the manage permission"}
	ErrQuota       = &KindError{KindQuota, "quota reached"}
	ErrNotHere     = &KindError{KindUnavailable, "unavailable"}
)

// Errorf returns an error of kind's sentinel with a message: "<sentinel>:
// <format…>".
func Errorf(kind *KindError, format string, args ...any) error {
	return fmt.Errorf("%w: %s", kind, fmt.Sprintf(format, args...))
}

// KindOf returns the kind of err: the Kind of the first sentinel it wraps,
// KindInvalid for a ParseRate error, KindFailed otherwise.
func KindOf(err error) Kind {
	var k *KindError
	switch {
	case errors.As(err, &k):
		return k.Kind
	case errors.Is(err, ErrRate):
		return KindInvalid
	}
	return KindFailed
}

// WithKind gives err the kind of sentinel kind without changing its text:
// for errors from a lower layer (the backends) that do not know the
// contract.
func WithKind(kind *KindError, err error) error {
	if err == nil {
		return nil
	}
	return kindWrap{kind, err}
}

type kindWrap struct {
	kind *KindError
	err  error
}

func (w kindWrap) Error() string   { return w.err.Error() }
func (w kindWrap) Unwrap() []error { return []error{w.kind, w.err} }
