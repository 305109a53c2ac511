package main

import (
	"context"

	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/client"
)

// The window's global limit and priority calls (gui.GlobalBackend).

func (h *helperBackend) GlobalLimit(ctx context.Context) (api.GlobalLimit, error) {
	var g api.GlobalLimit
	err := h.do(func(c *client.Client) (err error) { g, err = c.GlobalLimit(ctx); return err })
	return g, err
}

func (h *helperBackend) SetGlobalLimit(ctx context.Context, g api.GlobalLimit) error {
	return h.do(func(c *client.Client) error { return c.SetGlobalLimit(ctx, g) })
}

func (h *helperBackend) RemoveGlobalLimit(ctx context.Context) error {
	return h.do(func(c *client.Client) error { return c.RemoveGlobalLimit(ctx) })
}

func (h *helperBackend) SetAppPriority(ctx context.Context, exe string, uid uint32, priority string) error {
	return h.do(func(c *client.Client) error { return c.SetAppPriority(ctx, exe, uid, priority) })
}
