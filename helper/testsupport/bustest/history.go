package bustest

import (
	"context"
	"strconv"
	"time"

	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/client"
)

// doHistory makes the history and quota calls: GetHistory (exe, uid, from
// and until in unix seconds, by), GetQuotas, SetQuota (exe, uid, period,
// bytes, direction, action, rate), RemoveQuota (exe, uid). ok is false for
// another method.
func doHistory(ctx context.Context, c *client.Client, call Call, arg func(int) string) (res any, err error, ok bool) {
	num := func(i int) uint64 { n, _ := strconv.ParseUint(arg(i), 10, 64); return n }
	sec := func(i int) time.Time { n, _ := strconv.ParseInt(arg(i), 10, 64); return time.Unix(n, 0) }
	switch call.Method {
	case api.MethodGetHistory:
		res, err = c.History(ctx, arg(0), uint32(num(1)), sec(2), sec(3), arg(4))
	case api.MethodGetQuotas:
		res, err = c.Quotas(ctx)
	case api.MethodSetQuota:
		err = c.SetQuota(ctx, api.Quota{Exe: arg(0), UID: uint32(num(1)), Period: arg(2), Bytes: num(3), Direction: arg(4),
			Action: arg(5), Rate: num(6)})
	case api.MethodRemoveQuota:
		err = c.RemoveQuota(ctx, arg(0), uint32(num(1)))
	default:
		return nil, nil, false
	}
	return res, err, true
}

var fuzzWords = []string{"minute", "hour", "day", "week", "month", "year", "down", "up", "both", "throttle", "block", ""}

// historyArgs are random arguments of the history and quota methods.
func (g *fuzzArgs) historyArgs(method string) []any {
	word := func() string {
		if g.rng.Intn(4) == 0 {
			return g.str()
		}
		return fuzzWords[g.rng.Intn(len(fuzzWords))]
	}
	when := func() int64 {
		return []int64{0, -1, time.Now().Unix(), time.Now().Unix() - 86400, time.Now().Unix() - 400*86400, 1 << 62}[g.rng.Intn(6)]
	}
	switch method {
	case api.MethodGetHistory:
		return []any{g.str(), g.uid(), when(), when(), word()}
	case api.MethodSetQuota:
		return []any{g.str(), g.uid(), word(), g.rate(), word(), word(), g.rate()}
	case api.MethodRemoveQuota:
		return []any{g.str(), g.uid()}
	}
	return nil
}
