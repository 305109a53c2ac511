package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

func cmdBackends(c *call) error {
	bs, err := c.h.Backends(c.ctx)
	if err != nil {
		return err
	}
	if c.o.json {
		type backend struct {
			Kind      string `json:"kind"`
			Name      string `json:"name"`
			Priority  int32  `json:"priority"`
			Available bool   `json:"available"`
			Active    bool   `json:"active"`
			Reason    string `json:"reason"`
		}
		out := struct {
			Backends []backend `json:"backends"`
		}{Backends: []backend{}}
		for _, b := range bs {
			out.Backends = append(out.Backends, backend(b))
		}
		return writeJSON(c.w, out)
	}
	tw := newTable(c.w)
	fmt.Fprintln(tw, "KIND\tNAME\tPRIORITY\tAVAILABLE\tACTIVE\tREASON")
	for _, b := range bs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", b.Kind, b.Name, b.Priority, yesNo(b.Available), yesNo(b.Active), api.Printable(b.Reason))
	}
	return tw.Flush()
}

// topDoc is `top --json`: the contract's app keys, and the totals the
// table's first line shows.
type topDoc struct {
	Time        int64    `json:"time"`
	RxRate      uint64   `json:"rx_rate"`
	TxRate      uint64   `json:"tx_rate"`
	UnknownRate uint64   `json:"unknown_rate"`
	RxBytes     uint64   `json:"rx_bytes"`
	TxBytes     uint64   `json:"tx_bytes"`
	Apps        []topApp `json:"apps"`
}

type topApp struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Exe     string   `json:"exe"`
	UID     uint32   `json:"uid"`
	User    string   `json:"user"`
	PIDs    []int32  `json:"pids"`
	RxRate  uint64   `json:"rx_rate"`
	TxRate  uint64   `json:"tx_rate"`
	RxBytes uint64   `json:"rx_bytes"`
	TxBytes uint64   `json:"tx_bytes"`
	Limit   topLimit `json:"limit"`
	Rule    bool     `json:"rule"`
}

type topLimit struct {
	Down    uint64 `json:"down"`
	Up      uint64 `json:"up"`
	Traffic string `json:"traffic"`
}

func sortApps(snap api.Snapshot) []api.App {
	apps := append([]api.App(nil), snap.Apps...)
	sort.SliceStable(apps, func(i, j int) bool {
		a, b := apps[i].RxRate+apps[i].TxRate, apps[j].RxRate+apps[j].TxRate
		if a != b {
			return a > b
		}
		return apps[i].RxBytes+apps[i].TxBytes > apps[j].RxBytes+apps[j].TxBytes
	})
	return apps
}

func cmdTop(c *call) error {
	if c.o.watch {
		return watchTop(c)
	}
	snap, err := c.h.Apps(c.ctx)
	if err != nil {
		return err
	}
	apps := sortApps(snap)
	if c.o.json {
		out := topDoc{Time: snap.Time, RxRate: snap.RxRate, TxRate: snap.TxRate, UnknownRate: snap.UnknownRate,
			RxBytes: snap.RxBytes, TxBytes: snap.TxBytes, Apps: []topApp{}}
		for _, a := range apps {
			pids := a.PIDs
			if pids == nil {
				pids = []int32{}
			}
			traffic := ""
			if a.Limit.Down != 0 || a.Limit.Up != 0 {
				traffic = trafficOf(a.Limit)
			}
			out.Apps = append(out.Apps, topApp{a.ID, a.Name, a.Exe, a.UID, a.User, pids, a.RxRate, a.TxRate, a.RxBytes, a.TxBytes,
				topLimit{a.Limit.Down, a.Limit.Up, traffic}, a.Rule})
		}
		return writeJSON(c.w, out)
	}
	return writeTop(c.w, snap, apps, -1)
}

// writeTop prints the totals line and the table of apps; maxRows >= 0
// bounds the rows (the rest are counted in one line) and makes the table
// narrow (app names without paths and ids, for top --watch).
func writeTop(w io.Writer, snap api.Snapshot, apps []api.App, maxRows int) error {
	fmt.Fprintf(w, "total: down %s, up %s (unattributed %s); since start: down %s, up %s\n",
		rateText(snap.RxRate), rateText(snap.TxRate), rateText(snap.UnknownRate),
		api.FormatBytes(snap.RxBytes), api.FormatBytes(snap.TxBytes))
	narrow := maxRows >= 0
	tw := newTable(w)
	if narrow {
		fmt.Fprintln(tw, "APP\tUSER\tDOWN\tUP\tTOTAL DOWN\tTOTAL UP\tLIMIT DOWN\tLIMIT UP\tPIDS")
	} else {
		fmt.Fprintln(tw, "APP\tUSER\tPIDS\tDOWN\tUP\tTOTAL DOWN\tTOTAL UP\tLIMIT DOWN\tLIMIT UP\tID")
	}
	more := 0
	for i, a := range apps {
		if narrow && i >= maxRows {
			more = len(apps) - i
			break
		}
		cells := []string{appLabel(a), userLabel(a), pidList(a.PIDs), rateCell(a.RxRate), rateCell(a.TxRate),
			api.FormatBytes(a.RxBytes), api.FormatBytes(a.TxBytes), limitCell(a.Limit, a.Limit.Down, a.Rule),
			limitCell(a.Limit, a.Limit.Up, a.Rule), api.Printable(a.ID)}
		if narrow {
			name := a.Name
			if name == "" {
				name = filepath.Base(a.Exe)
			}
			cells = append([]string{cut(api.Printable(name), 24), cells[1]}, cells[3:9]...)
			cells = append(cells, pidList(a.PIDs))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if more > 0 {
		fmt.Fprintf(w, "… %d more\n", more)
	}
	return nil
}

// rateText is a rate (api.FormatRate says "unlimited" for 0, as limits
// mean it).
func rateText(r uint64) string {
	if r == 0 {
		return "0 B/s"
	}
	return api.FormatRate(r)
}

func rateCell(r uint64) string {
	if r == 0 {
		return "0"
	}
	return api.FormatRate(r)
}

// limitCell shows one direction of a limit: "-" for none, the traffic
// type when not all, "(rule)" when a saved rule sets it.
func limitCell(l api.Limit, r uint64, rule bool) string {
	if r == 0 {
		return "-"
	}
	s := api.FormatRate(r)
	if t := trafficOf(l); t != api.TrafficAll {
		s += " " + t
	}
	if rule {
		s += " (rule)"
	}
	return s
}

func trafficOf(l api.Limit) string {
	if l.Traffic == "" {
		return api.TrafficAll
	}
	return l.Traffic
}

// appLabel and the other text output pass what processes and .desktop
// files of other users chose through api.Printable: a name cannot write
// terminal escapes.
func appLabel(a api.App) string {
	name := a.Name
	if name == "" {
		name = filepath.Base(a.Exe)
	}
	if a.Exe != "" && name != a.Exe {
		return api.Printable(name + " (" + a.Exe + ")")
	}
	return api.Printable(name)
}

func userLabel(a api.App) string {
	if a.User != "" {
		return api.Printable(a.User)
	}
	return strconv.FormatUint(uint64(a.UID), 10)
}

func pidList(pids []int32) string {
	if len(pids) == 0 {
		return "-"
	}
	var b strings.Builder
	for i, p := range pids {
		if i == 4 {
			fmt.Fprintf(&b, ",+%d", len(pids)-4)
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(p)))
	}
	return b.String()
}

func cmdRules(c *call) error {
	rs, err := c.h.Rules(c.ctx)
	if err != nil {
		return err
	}
	if c.o.json {
		if rs == nil {
			rs = []api.Rule{}
		}
		return writeJSON(c.w, struct {
			Rules []api.Rule `json:"rules"`
		}{rs})
	}
	tw := newTable(c.w)
	fmt.Fprintln(tw, "EXE\tUID\tDOWN\tUP\tTRAFFIC\tADMIN")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", api.Printable(r.Exe), r.UID, api.FormatRate(r.Limit.Down),
			api.FormatRate(r.Limit.Up), trafficOf(r.Limit), yesNo(r.Admin))
	}
	return tw.Flush()
}

// statusDoc is `status --json`.
type statusDoc struct {
	api.Status
	Permissions   api.Permissions `json:"permissions"`
	ClientVersion string          `json:"client_version"`
	Host          string          `json:"host"` // "" for this machine
	Bus           string          `json:"bus"`
}

func cmdStatus(c *call) error {
	st, err := c.h.Status(c.ctx)
	if err != nil {
		return err
	}
	perm, err := c.h.Permissions(c.ctx)
	if err != nil {
		return err
	}
	doc := statusDoc{Status: st, Permissions: perm, ClientVersion: api.Version, Host: c.o.host, Bus: c.o.bus}
	if c.o.json {
		return writeJSON(c.w, doc)
	}
	where := "this machine"
	if c.o.host != "" {
		where = c.o.host
	}
	download := st.Download
	if download == "" {
		download = "unavailable: " + st.DownloadReason
	}
	tw := newTable(c.w)
	for _, l := range [][2]string{
		{"helper", st.Version + " on " + where + " (" + c.o.bus + " bus)"},
		{"monitor", st.Monitor},
		{"upload", st.Upload},
		{"download", download},
		{"interfaces", st.Interfaces},
		{"paused", yesNo(st.Paused)},
		{"you may", fmt.Sprintf("see traffic: %s; limit your apps: %s; manage everyone's: %s", perm.Monitor, perm.LimitOwn, perm.Manage)},
		{"chadthrottlectl", api.Version},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", l[0], api.Printable(l[1]))
	}
	return tw.Flush()
}

func cmdPause(c *call, paused bool) error {
	stop := startTTYAgent(c)
	err := c.h.SetPaused(c.ctx, paused)
	stop()
	if err != nil {
		return err
	}
	if paused {
		fmt.Fprintln(c.w, "paused: your limits are lifted until 'chadthrottlectl resume' (everyone's with the manage permission; an administrator's limits on you stay)")
	} else {
		fmt.Fprintln(c.w, "resumed: paused limits apply again")
	}
	return nil
}

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
			limitCell(p.Limit, p.Limit.Down, false), limitCell(p.Limit, p.Limit.Up, false), api.Printable(p.Cmdline))
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
	s := fmt.Sprintf("down %s, up %s", api.FormatRate(l.Down), api.FormatRate(l.Up))
	if l.Traffic != "" && l.Traffic != api.TrafficAll {
		s += ", " + l.Traffic + " traffic only"
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
	l := api.Limit{Down: o.down, Up: o.up, Traffic: o.traffic}
	if l.Down == 0 && l.Up == 0 {
		return cmdUnlimit(c)
	}
	if o.seen["pid"] {
		stop := startTTYAgent(c)
		err := c.h.SetProcessLimit(c.ctx, o.pid, l)
		stop()
		if err != nil {
			return err
		}
		fmt.Fprintf(c.w, "limited process %d: %s\n", o.pid, describe(l))
		return nil
	}
	exe, err := resolveExe(o.app, o.host)
	if err != nil {
		return err
	}
	uid, who, err := ruleUID(c)
	if err != nil {
		return err
	}
	if o.host == "" {
		if exe, err = notAScript(c, exe, uid); err != nil {
			return err
		}
	}
	stop := startTTYAgent(c)
	err = c.h.SetAppLimit(c.ctx, exe, uid, l)
	stop()
	if err != nil {
		return err
	}
	fmt.Fprintf(c.w, "rule set for %s (%s): %s\n", api.Printable(exe), who, describe(l))
	return nil
}

func cmdUnlimit(c *call) error {
	o := c.o
	if o.seen["pid"] {
		stop := startTTYAgent(c)
		err := c.h.RemoveProcessLimit(c.ctx, o.pid)
		stop()
		if err != nil {
			return err
		}
		fmt.Fprintf(c.w, "removed the limit of process %d\n", o.pid)
		return nil
	}
	exe, err := resolveExe(o.app, o.host)
	if err != nil {
		return err
	}
	uid, who, err := ruleUID(c)
	if err != nil {
		return err
	}
	stop := startTTYAgent(c)
	err = c.h.RemoveAppLimit(c.ctx, exe, uid)
	stop()
	if err != nil {
		return err
	}
	fmt.Fprintf(c.w, "removed the rule for %s (%s)\n", api.Printable(exe), who)
	return nil
}
