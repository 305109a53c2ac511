package main

import (
	"context"

	"github.com/chadthrottle/chadthrottle/helper/client"
)

// The window's blocking calls (gui.BlockBackend).

func (h *helperBackend) SetAppBlock(ctx context.Context, exe string, uid uint32, traffic, when string) error {
	return h.do(func(c *client.Client) error { return c.SetAppBlock(ctx, exe, uid, traffic, when) })
}

func (h *helperBackend) RemoveAppBlock(ctx context.Context, exe string, uid uint32) error {
	return h.do(func(c *client.Client) error { return c.RemoveAppBlock(ctx, exe, uid) })
}
