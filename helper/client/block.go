package client

import (
	"context"
	"fmt"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// SetAppBlock blocks uid's app exe: traffic all, internet or local ("" =
// all), when a schedule ("" = always). It becomes part of the app's rule.
func (c *Client) SetAppBlock(ctx context.Context, exe string, uid uint32, traffic, when string) error {
	return c.call(ctx, api.MethodSetAppBlock, true, nil, exe, uid, traffic, when)
}

// RemoveAppBlock lifts the block of uid's app exe (its rates stay).
func (c *Client) RemoveAppBlock(ctx context.Context, exe string, uid uint32) error {
	return c.call(ctx, api.MethodRemoveAppBlock, true, nil, exe, uid)
}

// SetProcessBlock blocks one process and its children, at the times when
// says ("" = always).
func (c *Client) SetProcessBlock(ctx context.Context, pid int32, traffic, when string) error {
	if pid <= 0 {
		return &Error{Name: api.ErrInvalidArgument, Message: fmt.Sprintf("pid %d is out of range", pid)}
	}
	if when != "" {
		return c.call(ctx, api.MethodSetProcessBlockWhen, true, nil, uint32(pid), traffic, when)
	}
	return c.call(ctx, api.MethodSetProcessBlock, true, nil, uint32(pid), traffic)
}

// RemoveProcessBlock lifts a process's block.
func (c *Client) RemoveProcessBlock(ctx context.Context, pid int32) error {
	if pid <= 0 {
		return &Error{Name: api.ErrInvalidArgument, Message: fmt.Sprintf("pid %d is out of range", pid)}
	}
	return c.call(ctx, api.MethodRemoveProcessBlock, true, nil, uint32(pid))
}
