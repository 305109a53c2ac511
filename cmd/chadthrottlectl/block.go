package main

import (
	"context"
	"fmt"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// Blocking and schedules (issue #16): block, unblock, and --when.

// blockHelper is what block and unblock need of *client.Client.
type blockHelper interface {
	api.AppBlocker
	SetProcessBlock(ctx context.Context, pid int32, traffic, when string) error
	RemoveProcessBlock(ctx context.Context, pid int32) error
}

var fWhen = &flagDef{name: "when", arg: "SCHEDULE", values: []string{"Mon-Fri 09:00-17:00"},
	help: "only at these times, local time: windows 'DAYS HH:MM-HH:MM' separated by commas, DAYS a day, " +
		"a range (Mon-Fri) or days joined by + (Sat+Sun), none = daily; a window ending before it starts runs past midnight " +
		"(Fri 22:00-06:00); default always",
	set: setText(func(o *opts) *string { return &o.when }, func(v string) error {
		_, err := api.ParseSchedule(v)
		return err
	})}

var blockCommand = &command{name: "block", synopsis: "(--pid N | --app EXE) [--traffic all|internet|local] [--when SCHEDULE] [--uid N]",
	summary: "block a process or an app from the network (a rule)",
	help: "Blocks a process and its children (--pid) or an app (--app: part of its rule, for its running and future " +
		"processes, kept across restarts) from all traffic, or from internet or local traffic only (--traffic). New " +
		"connections fail at once with 'Operation not permitted' and open ones stop; an app's rates, if it has a limit, " +
		"stay. Blocking your own apps needs the limit-own permission, other users' apps the manage permission.",
	examples: []string{"chadthrottlectl block --app /usr/bin/steam --traffic internet",
		"chadthrottlectl block --app updater --when 'Mon-Fri 09:00-17:00'", "chadthrottlectl block --pid 4242"},
	flags: []*flagDef{fPID, fApp, fTraffic, fWhen, fUID}, check: checkBlock, run: cmdBlock}

var unblockCommand = &command{name: "unblock", synopsis: "(--pid N | --app EXE) [--uid N]",
	summary:  "lift a process's or an app's block",
	help:     "Lifts the block of a process or an app; the app's limit, if it has one, stays.",
	examples: []string{"chadthrottlectl unblock --app /usr/bin/steam", "chadthrottlectl unblock --pid 4242"},
	flags:    []*flagDef{fPID, fApp, fUID}, check: checkTarget, run: cmdUnblock}

func checkBlock(o *opts) error {
	if err := checkTarget(o); err != nil {
		return err
	}
	return checkWhen(o)
}

// checkWhen: a schedule goes with an app's or a process's limit or block,
// not with the global limit.
func checkWhen(o *opts) error {
	if o.seen["when"] && !o.seen["app"] && !o.seen["pid"] {
		return usageErr("%s: --when goes with --app or --pid", o.cmd.name)
	}
	return nil
}

func whenText(when string) string {
	if when == "" {
		return ""
	}
	return " (" + api.Printable(when) + ")"
}

func cmdBlock(c *call) error {
	o := c.o
	what := "all traffic"
	if o.traffic != api.TrafficAll {
		what = o.traffic + " traffic"
	}
	if o.seen["pid"] {
		if err := withAgent(c, func() error { return c.h.SetProcessBlock(c.ctx, o.pid, o.traffic, o.when) }); err != nil {
			return err
		}
		fmt.Fprintf(c.w, "blocked %s of process %d%s\n", what, o.pid, whenText(o.when))
		return nil
	}
	exe, uid, who, err := programTarget(c)
	if err != nil {
		return err
	}
	if err := withAgent(c, func() error { return c.h.SetAppBlock(c.ctx, exe, uid, o.traffic, o.when) }); err != nil {
		return err
	}
	fmt.Fprintf(c.w, "blocked %s of %s (%s)%s\n", what, api.Printable(exe), who, whenText(o.when))
	return nil
}

func cmdUnblock(c *call) error {
	o := c.o
	if o.seen["pid"] {
		if err := withAgent(c, func() error { return c.h.RemoveProcessBlock(c.ctx, o.pid) }); err != nil {
			return err
		}
		fmt.Fprintf(c.w, "unblocked process %d\n", o.pid)
		return nil
	}
	exe, uid, who, err := appTarget(c)
	if err != nil {
		return err
	}
	if err := withAgent(c, func() error { return c.h.RemoveAppBlock(c.ctx, exe, uid) }); err != nil {
		return err
	}
	fmt.Fprintf(c.w, "unblocked %s (%s)\n", api.Printable(exe), who)
	return nil
}

// whenCell is a schedule in a table: "always" for none.
func whenCell(when string) string {
	if when == "" {
		return "always"
	}
	return api.Printable(when)
}

// blockCell is a limit's block in a table: "-" for none, else "blocked"
// with the traffic (when not all) and the schedule.
func blockCell(l api.Limit) string {
	if l.Block == "" {
		return "-"
	}
	s := "blocked"
	if l.Block != api.TrafficAll {
		s += " " + l.Block
	}
	if l.BlockWhen != "" {
		s += " (" + api.Printable(l.BlockWhen) + ")"
	}
	return s
}
