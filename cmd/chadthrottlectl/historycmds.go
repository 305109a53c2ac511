package main

import (
	"fmt"
	"time"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// statsJSON is the stats --json format (the CLI contract).
type statsJSON struct {
	Apps []statsApp `json:"apps"`
}

type statsApp struct {
	Exe     string        `json:"exe"`
	UID     uint32        `json:"uid"`
	Name    string        `json:"name"`
	RxBytes uint64        `json:"rx_bytes"`
	TxBytes uint64        `json:"tx_bytes"`
	Buckets []statsBucket `json:"buckets"`
}

type statsBucket struct {
	Start   string `json:"start"` // RFC 3339, local time
	RxBytes uint64 `json:"rx_bytes"`
	TxBytes uint64 `json:"tx_bytes"`
}

func cmdStats(c *call) error {
	h, err := historyOf(c)
	if err != nil {
		return err
	}
	o := c.o
	var exe string
	var uid uint32
	if o.seen["app"] {
		if exe, err = resolveExe(o.app, o.host); err != nil {
			return err
		}
		if uid, _, err = ruleUID(c); err != nil {
			return err
		}
	}
	apps, err := h.History(c.ctx, exe, uid, o.hist.since, o.hist.until, o.hist.by)
	if err != nil {
		return err
	}
	if o.json {
		out := statsJSON{Apps: make([]statsApp, 0, len(apps))}
		for _, a := range apps {
			sa := statsApp{Exe: a.Exe, UID: a.UID, Name: a.Name, RxBytes: a.RxBytes, TxBytes: a.TxBytes, Buckets: make([]statsBucket, 0, len(a.Buckets))}
			for _, b := range a.Buckets {
				sa.Buckets = append(sa.Buckets, statsBucket{Start: time.Unix(b.Start, 0).Format(time.RFC3339), RxBytes: b.RxBytes, TxBytes: b.TxBytes})
			}
			out.Apps = append(out.Apps, sa)
		}
		return writeJSON(c.w, out)
	}
	fmt.Fprintf(c.w, "%s – %s\n", o.hist.since.Format("2006-01-02 15:04"), o.hist.until.Format("2006-01-02 15:04"))
	tw := newTable(c.w)
	fmt.Fprintln(tw, "APP\tUID\tDOWN\tUP\tTOTAL\tEXE")
	var rx, tx uint64
	for _, a := range apps {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", api.Printable(a.Name), a.UID, api.FormatBytes(a.RxBytes), api.FormatBytes(a.TxBytes),
			api.FormatBytes(a.RxBytes+a.TxBytes), api.Printable(a.Exe))
		rx += a.RxBytes
		tx += a.TxBytes
	}
	fmt.Fprintf(tw, "(all)\t\t%s\t%s\t%s\t\n", api.FormatBytes(rx), api.FormatBytes(tx), api.FormatBytes(rx+tx))
	return tw.Flush()
}

func cmdQuota(c *call) error {
	h, err := historyOf(c)
	if err != nil {
		return err
	}
	o := c.o
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
	q := api.Quota{Exe: exe, UID: uid, Period: o.hist.per, Bytes: o.hist.bytes, Direction: o.hist.direction,
		Action: o.hist.then, Rate: o.hist.rate}
	stop := startTTYAgent(c)
	err = h.SetQuota(c.ctx, q)
	stop()
	if err != nil {
		return err
	}
	fmt.Fprintf(c.w, "quota set for %s (%s): %s\n", api.Printable(exe), who, quotaText(q))
	return nil
}

// quotaText says what a quota does: "2 GB a day (down), then 500 KB/s".
func quotaText(q api.Quota) string {
	then := "then blocked"
	if q.Action == api.QuotaThrottle {
		then = "then " + api.FormatRate(q.Rate)
	}
	return fmt.Sprintf("%s a %s (%s), %s", api.FormatBytes(q.Bytes), q.Period, q.Direction, then)
}

func cmdUnquota(c *call) error {
	h, err := historyOf(c)
	if err != nil {
		return err
	}
	exe, err := resolveExe(c.o.app, c.o.host)
	if err != nil {
		return err
	}
	uid, who, err := ruleUID(c)
	if err != nil {
		return err
	}
	stop := startTTYAgent(c)
	err = h.RemoveQuota(c.ctx, exe, uid)
	stop()
	if err != nil {
		return err
	}
	fmt.Fprintf(c.w, "removed the quota for %s (%s)\n", api.Printable(exe), who)
	return nil
}

func cmdQuotas(c *call) error {
	h, err := historyOf(c)
	if err != nil {
		return err
	}
	qs, err := h.Quotas(c.ctx)
	if err != nil {
		return err
	}
	if c.o.json {
		if qs == nil {
			qs = []api.Quota{}
		}
		return writeJSON(c.w, qs)
	}
	if len(qs) == 0 {
		_, err := fmt.Fprintln(c.w, "no quotas")
		return err
	}
	tw := newTable(c.w)
	fmt.Fprintln(tw, "UID\tPERIOD\tCAP\tUSED\tDIRECTION\tACTION\tSTATE\tEXE")
	for _, q := range qs {
		action := "block"
		if q.Action == api.QuotaThrottle {
			action = api.FormatRate(q.Rate)
		}
		state := q.State
		if q.Admin {
			state += " (admin)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", q.UID, q.Period, api.FormatBytes(q.Bytes), api.FormatBytes(q.Used),
			q.Direction, action, state, api.Printable(q.Exe))
	}
	return tw.Flush()
}
