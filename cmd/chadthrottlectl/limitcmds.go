package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

func cmdDetails(c *call) error {
	id, err := appID(c, c.o.args[0])
	if err != nil {
		return err
	}
	d, err := c.h.AppDetails(c.ctx, id)
	if err != nil {
		return err
	}
	if d.Processes == nil {
		d.Processes = []api.Process{}
	}
	if d.Connections == nil {
		d.Connections = []api.Connection{}
	}
	if d.History == nil {
		d.History = []api.Sample{}
	}
	if d.App.PIDs == nil {
		d.App.PIDs = []int32{}
	}
	if c.o.json {
		return writeJSON(c.w, d)
	}
	a := d.App
	tw := newTable(c.w)
	fmt.Fprintf(tw, "app:\t%s\n", appLabel(a))
	fmt.Fprintf(tw, "id:\t%s\n", api.Printable(a.ID))
	fmt.Fprintf(tw, "user:\t%s (uid %d)\n", userLabel(a), a.UID)
	fmt.Fprintf(tw, "rate:\tdown %s, up %s\n", rateText(a.RxRate), rateText(a.TxRate))
	fmt.Fprintf(tw, "total:\tdown %s, up %s\n", api.FormatBytes(a.RxBytes), api.FormatBytes(a.TxBytes))
	lim := "none"
	if a.Limit.Down != 0 || a.Limit.Up != 0 {
		lim = describe(a.Limit)
		if a.Rule {
			lim += " (saved as a rule)"
		}
	}
	fmt.Fprintf(tw, "limit:\t%s\n", lim)
	tw.Flush()
	fmt.Fprintf(c.w, "\nprocesses (%d):\n", len(d.Processes))
	tw = newTable(c.w)
	fmt.Fprintln(tw, "PID\tPPID\tUID\tPROCESS\tDOWN\tUP\tTOTAL DOWN\tTOTAL UP\tLIMIT DOWN\tLIMIT UP\tCOMMAND LINE")
	for _, p := range d.Processes {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.PID, p.PPID, p.UID, api.Printable(p.Comm),
			rateCell(p.RxRate), rateCell(p.TxRate), api.FormatBytes(p.RxBytes), api.FormatBytes(p.TxBytes),
			limitCell(p.Limit, p.Limit.Down, p.Limit.DownZone(), false), limitCell(p.Limit, p.Limit.Up, p.Limit.UpZone(), false), api.Printable(p.Cmdline))
	}
	tw.Flush()
	fmt.Fprintf(c.w, "\nconnections (%d):\n", len(d.Connections))
	tw = newTable(c.w)
	fmt.Fprintln(tw, "PID\tPROTO\tREMOTE\tLOCAL\tWHERE\tDOWN\tUP\tTOTAL DOWN\tTOTAL UP")
	for _, n := range d.Connections {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.PID, api.Printable(n.Proto), api.Printable(n.Remote),
			api.Printable(n.Local), api.Printable(n.Traffic), rateCell(n.RxRate), rateCell(n.TxRate),
			api.FormatBytes(n.RxBytes), api.FormatBytes(n.TxBytes))
	}
	return tw.Flush()
}

// appID turns APP into an app id: an id ("UID:/path", "UID:#hash") as
// given; otherwise the one running app whose executable path, executable
// name or display name it is.
func appID(c *call, arg string) (string, error) {
	if before, _, ok := strings.Cut(arg, ":"); ok {
		if _, err := strconv.ParseUint(before, 10, 32); err != nil {
			return "", usageErr("details: %q is not an app id (UID:/path or UID:#hash, as top shows)", arg)
		}
		return arg, nil
	}
	snap, err := c.h.Apps(c.ctx)
	if err != nil {
		return "", err
	}
	// The closest kind of match wins: the path, the executable's name,
	// the display name (other users' apps show only that); then one's own
	// app among several.
	var ids []string
	for _, match := range []func(a api.App) bool{
		func(a api.App) bool { return a.Exe == arg },
		func(a api.App) bool { return a.Exe != "" && filepath.Base(a.Exe) == arg },
		func(a api.App) bool { return strings.EqualFold(a.Name, arg) },
	} {
		var own []string
		for _, a := range snap.Apps {
			if match(a) {
				ids = append(ids, a.ID)
				if c.o.host == "" && a.UID == uint32(sys.getuid()) {
					own = append(own, a.ID)
				}
			}
		}
		if len(ids) > 1 && len(own) == 1 {
			ids = own
		}
		if len(ids) > 0 {
			break
		}
	}
	switch len(ids) {
	case 0:
		return "", fmt.Errorf("%w: no running app %q (see chadthrottlectl top)", errNotFound, arg)
	case 1:
		return ids[0], nil
	}
	return "", usageErr("details: %q names %d apps; give one of their ids: %s", arg, len(ids), strings.Join(ids, " "))
}

func describe(l api.Limit) string {
	if d, u := l.DownZone(), l.UpZone(); d != u {
		return fmt.Sprintf("down %s (%s traffic), up %s (%s traffic)", api.FormatRate(l.Down), d, api.FormatRate(l.Up), u)
	}
	s := fmt.Sprintf("down %s, up %s", api.FormatRate(l.Down), api.FormatRate(l.Up))
	if t := l.DownZone(); t != api.TrafficAll {
		s += ", " + t + " traffic only"
	}
	return s
}

// resolveExe turns EXE into the path the helper sees in /proc/PID/exe: a
// bare name is looked up in PATH, symlinks are resolved. A path that does
// not exist here is kept as given (a rule for a program not installed yet).
//
// On a remote host nothing can be looked up here: EXE must be the full path
// there, taken as given.
func resolveExe(exe, host string) (string, error) {
	if host != "" {
		if !strings.HasPrefix(exe, "/") {
			return "", usageErr("--app %q: on a remote host give the full path of the executable there", exe)
		}
		return filepath.Clean(exe), nil
	}
	if !strings.Contains(exe, "/") {
		p, err := exec.LookPath(exe)
		if err != nil {
			return "", usageErr("--app %q: not found in PATH; give the full path of the executable", exe)
		}
		exe = p
	}
	abs, err := filepath.Abs(exe)
	if err != nil {
		return "", usageErr("--app %q: %v", exe, err)
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	return abs, nil
}

// ruleUID is whose rule --app means, and how to say it: --uid; on a
// remote host the login user there (uids differ between machines); under
// sudo the user who ran sudo, not root; else the caller.
func ruleUID(c *call) (uint32, string, error) {
	o := c.o
	switch {
	case o.seen["uid"]:
		return o.uid, fmt.Sprintf("uid %d", o.uid), nil
	case o.host != "":
		uid, err := c.h.CallerUID(c.ctx)
		return uid, fmt.Sprintf("uid %d, your login on %s", uid, o.host), err
	}
	uid := sys.getuid()
	if uid == 0 {
		if s := sys.getenv("SUDO_UID"); s != "" {
			if n, err := strconv.ParseUint(s, 10, 32); err == nil && n != 0 && n <= 0xfffffffe {
				who := sys.getenv("SUDO_USER")
				if who == "" {
					who = "uid " + s
				}
				return uint32(n), fmt.Sprintf("uid %d, %s, who ran sudo; --uid 0 makes it root's", n, api.Printable(who)), nil
			}
		}
	}
	return uint32(uid), fmt.Sprintf("uid %d", uid), nil
}

func cmdLimit(c *call) error {
	o := c.o
	if o.global {
		return cmdGlobalLimit(c)
	}
	l := withZones(o, api.Limit{Down: o.down, Up: o.up, Traffic: o.traffic, When: o.when})
	if l.Down == 0 && l.Up == 0 {
		return cmdUnlimit(c)
	}
	if o.seen["pid"] {
		err := withAgent(c, func() error { return c.h.SetProcessLimit(c.ctx, o.pid, l) })
		if err != nil {
			return err
		}
		fmt.Fprintf(c.w, "limited process %d: %s%s\n", o.pid, describe(l), whenText(l.When))
		return nil
	}
	exe, uid, who, err := programTarget(c)
	if err != nil {
		return err
	}
	err = withAgent(c, func() error { return c.h.SetAppLimit(c.ctx, exe, uid, l) })
	if err != nil {
		return err
	}
	fmt.Fprintf(c.w, "rule set for %s (%s): %s%s\n", api.Printable(exe), who, describe(l), whenText(l.When))
	return nil
}

func cmdUnlimit(c *call) error {
	o := c.o
	if o.global {
		return cmdGlobalUnlimit(c)
	}
	if o.seen["pid"] {
		err := withAgent(c, func() error { return c.h.RemoveProcessLimit(c.ctx, o.pid) })
		if err != nil {
			return err
		}
		fmt.Fprintf(c.w, "removed the limit of process %d\n", o.pid)
		return nil
	}
	exe, uid, who, err := appTarget(c)
	if err != nil {
		return err
	}
	err = withAgent(c, func() error { return c.h.RemoveAppLimit(c.ctx, exe, uid) })
	if err != nil {
		return err
	}
	fmt.Fprintf(c.w, "removed the rule for %s (%s)\n", api.Printable(exe), who)
	return nil
}

// appTarget is the app a command's --app names on the helper's machine
// (links followed, see resolveExe) and the uid of its rule.
func appTarget(c *call) (exe string, uid uint32, who string, err error) {
	if exe, err = resolveExe(c.o.app, c.o.host); err != nil {
		return "", 0, "", err
	}
	uid, who, err = ruleUID(c)
	return exe, uid, who, err
}

// programTarget is appTarget for a new rule: on this machine a script
// given as --app is replaced by the program it runs (notAScript).
func programTarget(c *call) (exe string, uid uint32, who string, err error) {
	if exe, uid, who, err = appTarget(c); err != nil || c.o.host != "" {
		return exe, uid, who, err
	}
	exe, err = notAScript(c, exe, uid)
	return exe, uid, who, err
}

// withAgent runs a helper call with a polkit text agent on the terminal
// (see startTTYAgent), so an interactive authorization can be answered.
func withAgent(c *call, fn func() error) error {
	stop := startTTYAgent(c)
	defer stop()
	return fn()
}
