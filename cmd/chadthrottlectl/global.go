package main

import (
	"fmt"
	"strings"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// The global limit and app priorities (issue #16): limit --global,
// unlimit --global, priority.

// globalHelper is what they need of *client.Client.
type globalHelper = api.GlobalLimiter

var (
	fGlobal = &flagDef{name: "global",
		help: "the global limit: one cap for the whole machine (the interfaces the helper shapes, or --interface), " +
			"shared among apps by priority; needs the manage permission",
		set: func(o *opts, _ string) error { o.global = true; return nil }}
	fInterface = &flagDef{name: "interface", arg: "IFACE",
		help: "with --global: cap only this network interface (default: the interfaces the helper shapes)",
		set: setText(func(o *opts) *string { return &o.iface }, func(v string) error {
			if _, err := api.ValidateGlobalLimit(api.GlobalLimit{Interface: v}); err != nil || v == "" {
				return fmt.Errorf("%q is not an interface name", v)
			}
			return nil
		})}
)

var priorityCommand = &command{name: "priority", synopsis: "--app EXE low|normal|high|critical [--uid N]",
	summary: "set an app's share of the global limit (a rule)",
	help: "Sets an app's priority under the global limit (limit --global): apps share it by weight, low 1, normal 2, " +
		"high 4, critical 8, and critical borrows what others leave first; an app's own limit still applies inside. " +
		"Apps without a priority are normal. The priority is part of the app's rule; normal removes it. Your own apps " +
		"need the limit-own permission, other users' apps the manage permission.",
	examples: []string{"chadthrottlectl priority --app /usr/bin/steam high", "chadthrottlectl priority --app apt low --uid 0"},
	flags:    []*flagDef{fApp, fUID}, minArgs: 1, maxArgs: 1, argName: "PRIORITY", argValues: api.Priorities,
	check: checkPriority, run: cmdPriority}

func checkPriority(o *opts) error {
	if !o.seen["app"] {
		return usageErr("priority: give --app EXE")
	}
	if _, err := api.NormalPriority(o.args[0]); err != nil || strings.TrimSpace(o.args[0]) == "" {
		return usageErr("priority: %q is not low, normal, high or critical", o.args[0])
	}
	return nil
}

func cmdPriority(c *call) error {
	p, _ := api.NormalPriority(c.o.args[0])
	exe, uid, who, err := programTarget(c)
	if err != nil {
		return err
	}
	if err := withAgent(c, func() error { return c.h.SetAppPriority(c.ctx, exe, uid, p) }); err != nil {
		return err
	}
	fmt.Fprintf(c.w, "priority of %s (%s): %s\n", api.Printable(exe), who, p)
	return nil
}

// checkGlobal checks limit/unlimit --global: no target flags with it.
func checkGlobal(o *opts) error {
	n := o.cmd.name
	if !o.global {
		if o.seen["interface"] {
			return usageErr("%s: --interface goes with --global", n)
		}
		return nil
	}
	for _, f := range []string{"pid", "app", "uid", "traffic", "down-traffic", "up-traffic", "when"} {
		if o.seen[f] {
			return usageErr("%s: --%s does not go with --global", n, f)
		}
	}
	if n == "limit" && !o.seen["down"] && !o.seen["up"] {
		return usageErr("limit --global: give --down RATE and/or --up RATE (0 or none = uncapped)")
	}
	if n == "unlimit" && o.seen["interface"] {
		return usageErr("unlimit --global: --interface does not go with it (the global limit goes)")
	}
	return nil
}

func cmdGlobalLimit(c *call) error {
	g := api.GlobalLimit{Down: c.o.down, Up: c.o.up, Interface: c.o.iface}
	if g.IsZero() {
		return cmdGlobalUnlimit(c)
	}
	if err := withAgent(c, func() error { return c.h.SetGlobalLimit(c.ctx, g) }); err != nil {
		return err
	}
	where := "all shaped interfaces"
	if g.Interface != "" {
		where = api.Printable(g.Interface)
	}
	fmt.Fprintf(c.w, "global limit on %s: down %s, up %s\n", where, api.FormatRate(g.Down), api.FormatRate(g.Up))
	return nil
}

func cmdGlobalUnlimit(c *call) error {
	if err := withAgent(c, func() error { return c.h.RemoveGlobalLimit(c.ctx) }); err != nil {
		return err
	}
	fmt.Fprintln(c.w, "removed the global limit")
	return nil
}

// globalCell is the global limit in status: "none" or its rates.
func globalCell(g api.GlobalLimit) string {
	if g.IsZero() {
		return "none"
	}
	s := fmt.Sprintf("down %s, up %s", api.FormatRate(g.Down), api.FormatRate(g.Up))
	if g.Interface != "" {
		s += " on " + g.Interface
	}
	return s
}
