package main

import (
	"context"
	"time"

	"github.com/chadthrottle/chadthrottle/gui"
	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/client"
)

// The helper's history and quotas for the Statistics window (gui.StatsBackend).

var _ gui.StatsBackend = (*helperBackend)(nil)

func (h *helperBackend) History(ctx context.Context, exe string, uid uint32, from, until time.Time, by string) (out []api.AppHistory, err error) {
	err = h.do(func(c *client.Client) (e error) { out, e = c.History(ctx, exe, uid, from, until, by); return e })
	return out, err
}

func (h *helperBackend) Quotas(ctx context.Context) (out []api.Quota, err error) {
	err = h.do(func(c *client.Client) (e error) { out, e = c.Quotas(ctx); return e })
	return out, err
}

func (h *helperBackend) SetQuota(ctx context.Context, q api.Quota) error {
	return h.do(func(c *client.Client) error { return c.SetQuota(ctx, q) })
}

func (h *helperBackend) RemoveQuota(ctx context.Context, exe string, uid uint32) error {
	return h.do(func(c *client.Client) error { return c.RemoveQuota(ctx, exe, uid) })
}
