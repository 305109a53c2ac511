package api

import (
	"context"
	"time"
)

// Stats is the client side of the helper's traffic history and data
// quotas (helper/client implements it): what the window's Statistics view
// and the CLI's stats and quota commands use.
type Stats interface {
	// History returns the apps' bytes over [from, until) in buckets of by
	// (History*), most used first; exe "" means every app.
	History(ctx context.Context, exe string, uid uint32, from, until time.Time, by string) ([]AppHistory, error)
	// Quotas returns the data quotas the caller may see, with usage.
	Quotas(ctx context.Context) ([]Quota, error)
	// SetQuota creates or replaces a quota.
	SetQuota(ctx context.Context, q Quota) error
	// RemoveQuota removes the quota on exe of uid.
	RemoveQuota(ctx context.Context, exe string, uid uint32) error
}
