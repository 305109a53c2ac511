package main

import (
	"encoding/json"
	"fmt"
	"io"
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
	Block   string `json:"block,omitempty"` // blocked traffic (issue #16)
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
				topLimit{a.Limit.Down, a.Limit.Up, traffic, a.Limit.Block}, a.Rule})
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
			api.FormatBytes(a.RxBytes), api.FormatBytes(a.TxBytes), limitCell(a.Limit, a.Limit.Down, a.Limit.DownZone(), a.Rule),
			limitCell(a.Limit, a.Limit.Up, a.Limit.UpZone(), a.Rule), api.Printable(a.ID)}
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

// limitCell shows one direction of a limit (rate r, zone): "-" for none,
// the zone when not all, "(rule)" when a saved rule sets it.
func limitCell(l api.Limit, r uint64, zone string, rule bool) string {
	if l.Block != "" {
		return blockCell(l)
	}
	if r == 0 {
		return "-"
	}
	s := api.FormatRate(r)
	if zone != api.TrafficAll {
		s += " " + zone
	}
	if rule {
		s += " (rule)"
	}
	return s
}

// trafficOf is a limit's zone, or DOWN/UP when its directions differ.
func trafficOf(l api.Limit) string {
	if d, u := l.DownZone(), l.UpZone(); d != u {
		return d + "/" + u
	}
	return l.DownZone()
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
	fmt.Fprintln(tw, "EXE\tUID\tDOWN\tUP\tTRAFFIC\tADMIN\tWHEN\tBLOCK")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", api.Printable(r.Exe), r.UID, api.FormatRate(r.Limit.Down),
			api.FormatRate(r.Limit.Up), trafficOf(r.Limit), yesNo(r.Admin), whenCell(r.Limit.When), blockCell(r.Limit))
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
	Global        api.GlobalLimit `json:"global"` // the global limit (zero: none)
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
	doc.Global, _ = c.h.GlobalLimit(c.ctx) // an older helper has none
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
		{"global limit", globalCell(doc.Global)},
		{"you may", fmt.Sprintf("see traffic: %s; limit your apps: %s; manage everyone's: %s", perm.Monitor, perm.LimitOwn, perm.Manage)},
		{"chadthrottlectl", api.Version},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", l[0], api.Printable(l[1]))
	}
	return tw.Flush()
}

func cmdPause(c *call, paused bool) error {
	err := withAgent(c, func() error { return c.h.SetPaused(c.ctx, paused) })
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
