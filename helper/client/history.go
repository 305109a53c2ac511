package client

import (
	"context"
	"time"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// History returns the apps' bytes over [from, until) in buckets of by
// (api.History*): one app when exe is set, otherwise every app the caller
// may see (monitor: its own; manage: everyone's).
func (c *Client) History(ctx context.Context, exe string, uid uint32, from, until time.Time, by string) ([]api.AppHistory, error) {
	var out []api.AppHistory
	return out, c.call(ctx, api.MethodGetHistory, exe != "" && uid != 0, []any{&out}, exe, uid, from.Unix(), until.Unix(), by)
}

// Quotas returns the data quotas the caller may see, with usage.
func (c *Client) Quotas(ctx context.Context) ([]api.Quota, error) {
	var out []api.Quota
	return out, c.call(ctx, api.MethodGetQuotas, false, []any{&out})
}

// SetQuota creates or replaces the quota on q.Exe of q.UID (limit-own for
// the caller's uid, manage otherwise).
func (c *Client) SetQuota(ctx context.Context, q api.Quota) error {
	return c.call(ctx, api.MethodSetQuota, true, nil, q.Exe, q.UID, q.Period, q.Bytes, q.Direction, q.Action, q.Rate)
}

// RemoveQuota removes the quota on exe of uid.
func (c *Client) RemoveQuota(ctx context.Context, exe string, uid uint32) error {
	return c.call(ctx, api.MethodRemoveQuota, true, nil, exe, uid)
}
