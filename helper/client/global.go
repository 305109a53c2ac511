package client

import (
	"context"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// GlobalLimit returns the machine's global limit (zero: none).
func (c *Client) GlobalLimit(ctx context.Context) (api.GlobalLimit, error) {
	var g api.GlobalLimit
	return g, c.call(ctx, api.MethodGetGlobalLimit, false, []any{&g})
}

// SetGlobalLimit sets the global limit (manage): payload B/s per
// direction, 0 = uncapped; iface "" = the interfaces the helper shapes.
func (c *Client) SetGlobalLimit(ctx context.Context, g api.GlobalLimit) error {
	return c.call(ctx, api.MethodSetGlobalLimit, true, nil, g.Down, g.Up, g.Interface)
}

// RemoveGlobalLimit removes the global limit (manage).
func (c *Client) RemoveGlobalLimit(ctx context.Context) error {
	return c.call(ctx, api.MethodRemoveGlobalLimit, true, nil)
}

// SetAppPriority sets uid's app exe's share of the global limit: low,
// normal, high or critical. It becomes part of the app's rule.
func (c *Client) SetAppPriority(ctx context.Context, exe string, uid uint32, priority string) error {
	return c.call(ctx, api.MethodSetAppPriority, true, nil, exe, uid, priority)
}
