package gui

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// StatsBackend is what the Statistics window needs beyond Backend: the
// helper's traffic history and data quotas. cmd/chadthrottle's backend and
// Fake implement it; a Backend without it shows no Statistics.
type StatsBackend = api.Stats

// Periods of the Statistics window.
const (
	PeriodToday = "Today"
	PeriodWeek  = "This week"
	PeriodMonth = "This month"
	PeriodRange = "Range"
)

// statsSort orders the table.
type statsSort int

const (
	sortTotal statsSort = iota
	sortDown
	sortUp
	sortName
)

var statsSortLabels = []string{"Data used", "Download", "Upload", "Name"}

// statsView is the Statistics window (UI goroutine only, but for load's
// goroutine, which hands its result back with u.do).
type statsView struct {
	u      *UI
	sb     StatsBackend
	win    fyne.Window
	now    func() time.Time
	period string
	from   time.Time
	until  time.Time
	step   string
	apps   []api.AppHistory
	quotas map[quotaKey]api.Quota
	sortBy statsSort
	sel    int // selected row, -1 for none
	loads  int // reloads started; only the newest one's result is shown

	periodSel  *widget.Select
	fromEntry  *widget.Entry
	untilEntry *widget.Entry
	sortSel    *widget.Select
	chart      *UsageChart
	table      *widget.Table
	status     *widget.Label
	editor     *quotaEditor
}

type quotaKey struct {
	uid uint32
	exe string
}

// showStats opens (or raises) the Statistics window.
func (u *UI) showStats() {
	sb, ok := u.b.(StatsBackend)
	if !ok {
		u.notify("Statistics are not available with this helper")
		return
	}
	if u.stats != nil {
		u.stats.win.Show()
		u.stats.win.RequestFocus()
		return
	}
	s := newStatsView(u, sb, time.Now)
	u.stats = s
	s.win.SetOnClosed(func() { u.stats = nil })
	s.win.Show()
	s.reload()
}

func newStatsView(u *UI, sb StatsBackend, now func() time.Time) *statsView {
	s := &statsView{u: u, sb: sb, now: now, period: PeriodToday, quotas: map[quotaKey]api.Quota{}, sel: -1}
	s.win = u.app.NewWindow("ChadThrottle – Statistics")
	s.win.SetContent(s.build())
	s.win.Resize(fyne.NewSize(1060, 680))
	return s
}

func (s *statsView) build() fyne.CanvasObject {
	s.periodSel = widget.NewSelect([]string{PeriodToday, PeriodWeek, PeriodMonth, PeriodRange}, func(p string) {
		s.period = p
		s.fromEntry.Hidden, s.untilEntry.Hidden = p != PeriodRange, p != PeriodRange
		s.fromEntry.Refresh()
		s.untilEntry.Refresh()
		s.reload()
	})
	s.fromEntry = widget.NewEntry()
	s.fromEntry.SetPlaceHolder("from 2026-12-01")
	s.untilEntry = widget.NewEntry()
	s.untilEntry.SetPlaceHolder("until 2026-12-03")
	s.fromEntry.OnSubmitted = func(string) { s.reload() }
	s.untilEntry.OnSubmitted = func(string) { s.reload() }
	s.fromEntry.Hidden, s.untilEntry.Hidden = true, true
	s.sortSel = widget.NewSelect(statsSortLabels, func(l string) {
		for i, x := range statsSortLabels {
			if x == l {
				s.sortBy = statsSort(i)
			}
		}
		s.sortApps()
		s.table.Refresh()
	})
	s.sortSel.Selected = statsSortLabels[0]
	s.periodSel.Selected = PeriodToday
	refresh := widget.NewButtonWithIcon("", theme.ViewRefreshIcon(), s.reload)
	export := widget.NewButtonWithIcon("Export CSV", theme.DocumentSaveIcon(), s.askExport)
	s.chart = NewUsageChart()
	s.status = widget.NewLabel("")
	s.table = widget.NewTable(func() (int, int) { return len(s.apps) + 1, len(statsColumns) },
		func() fyne.CanvasObject { return widget.NewLabel("wwwwwwwwwwwwwwwwww") }, s.updateCell)
	for i, c := range statsColumns {
		s.table.SetColumnWidth(i, c.width)
	}
	s.table.OnSelected = func(id widget.TableCellID) {
		if id.Row > 0 {
			s.selectRow(id.Row - 1)
		}
	}
	s.editor = newQuotaEditor(s)
	controls := container.NewHBox(widget.NewLabel("Period"), s.periodSel, container.New(fixedWidth{w: 150}, s.fromEntry),
		container.New(fixedWidth{w: 150}, s.untilEntry), refresh, widget.NewLabel("Sort by"), s.sortSel, export)
	body := container.NewVSplit(s.chart, container.NewBorder(nil, nil, nil, s.editor.box, s.table))
	body.Offset = 0.42
	return container.NewBorder(controls, s.status, nil, nil, body)
}

// statsColumns are the table's columns.
var statsColumns = []struct {
	title string
	width float32
}{{"App", 170}, {"User", 60}, {"Download", 90}, {"Upload", 90}, {"Total", 90}, {"Quota", 230}}

func (s *statsView) updateCell(id widget.TableCellID, o fyne.CanvasObject) {
	l := o.(*widget.Label)
	l.TextStyle.Bold = id.Row == 0
	if id.Row == 0 {
		l.SetText(statsColumns[id.Col].title)
		return
	}
	if id.Row-1 >= len(s.apps) {
		l.SetText("")
		return
	}
	l.SetText(s.cell(s.apps[id.Row-1], id.Col))
}

// cell is the text of one table cell.
func (s *statsView) cell(a api.AppHistory, col int) string {
	switch col {
	case 0:
		return api.Printable(a.Name)
	case 1:
		return strconv.FormatUint(uint64(a.UID), 10)
	case 2:
		return api.FormatBytes(a.RxBytes)
	case 3:
		return api.FormatBytes(a.TxBytes)
	case 4:
		return api.FormatBytes(a.RxBytes + a.TxBytes)
	}
	if q, ok := s.quotas[quotaKey{a.UID, a.Exe}]; ok {
		return quotaUsage(q)
	}
	return "–"
}

// quotaUsage says how much of a quota is used: "1.6 of 2 GB today".
func quotaUsage(q api.Quota) string {
	per := map[string]string{api.QuotaDay: "today", api.QuotaWeek: "this week", api.QuotaMonth: "this month"}[q.Period]
	capText := api.FormatBytes(q.Bytes)
	used := api.FormatBytes(q.Used)
	if num, unit, ok := strings.Cut(capText, " "); ok && strings.HasSuffix(used, " "+unit) {
		used = strings.TrimSuffix(used, " "+unit) // "1.6 of 2 GB"
		capText = num + " " + unit
	}
	text := fmt.Sprintf("%s of %s %s", used, capText, per)
	if q.State == api.QuotaReached {
		if q.Action == api.QuotaBlock {
			return text + " – blocked"
		}
		return text + " – throttled"
	}
	return text
}

// bounds returns the range and bucket size of the chosen period.
func (s *statsView) bounds() (from, until time.Time, step string, err error) {
	now := s.now()
	y, m, d := now.Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, now.Location())
	switch s.period {
	case PeriodWeek:
		from = today.AddDate(0, 0, -((int(now.Weekday()) + 6) % 7))
		return from, from.AddDate(0, 0, 7), api.HistoryDay, nil
	case PeriodMonth:
		from = time.Date(y, m, 1, 0, 0, 0, 0, now.Location())
		return from, from.AddDate(0, 1, 0), api.HistoryDay, nil
	case PeriodRange:
		if from, err = parseDay(s.fromEntry.Text, today.AddDate(0, 0, -7)); err != nil {
			return
		}
		if until, err = parseDay(s.untilEntry.Text, today); err != nil {
			return
		}
		until = until.AddDate(0, 0, 1) // the "until" day is included
		if !until.After(from) {
			return from, until, "", fmt.Errorf("the range ends before it starts")
		}
		step = api.HistoryDay
		if until.Sub(from) <= 3*24*time.Hour {
			step = api.HistoryHour
		}
		return from, until, step, nil
	}
	return today, today.AddDate(0, 0, 1), api.HistoryHour, nil
}

// parseDay reads a local date (2026-12-01); "" gives def.
func parseDay(text string, def time.Time) (time.Time, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return def, nil
	}
	t, err := time.ParseInLocation("2006-01-02", text, def.Location())
	if err != nil {
		return t, fmt.Errorf("%q is not a date like 2026-12-01", text)
	}
	return t, nil
}

// reload fetches the period's history and the quotas off the UI goroutine.
func (s *statsView) reload() {
	from, until, step, err := s.bounds()
	if err != nil {
		s.status.SetText(err.Error())
		return
	}
	s.status.SetText("Loading…")
	s.loads++
	load := s.loads
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		apps, err := s.sb.History(ctx, "", 0, from, until, step)
		qs, qerr := s.sb.Quotas(ctx)
		s.u.do(func() {
			if load != s.loads {
				return // a newer reload was started: an older answer that came late must not replace it
			}
			if err != nil {
				s.status.SetText("Could not read the history: " + err.Error())
				return
			}
			s.from, s.until, s.step, s.apps = from, until, step, apps
			if qerr == nil {
				s.setQuotas(qs)
			}
			s.show()
		})
	}()
}

func (s *statsView) setQuotas(qs []api.Quota) {
	s.quotas = map[quotaKey]api.Quota{}
	for _, q := range qs {
		s.quotas[quotaKey{q.UID, q.Exe}] = q
	}
}

// show puts the loaded data into the chart, the table and the status line.
func (s *statsView) show() {
	s.sortApps()
	s.chart.SetData(bucketStarts(s.from, s.until, s.step), byTotal(s.apps), s.step)
	s.table.Refresh()
	var rx, tx uint64
	for _, a := range s.apps {
		rx += a.RxBytes
		tx += a.TxBytes
	}
	if e := s.editor; e.app.Exe != "" {
		q, has := s.quotas[quotaKey{e.app.UID, e.app.Exe}]
		status := e.status.Text
		e.show(e.app, q, has)
		e.status.SetText(status)
	}
	s.status.SetText(fmt.Sprintf("%s – %s: %d apps, %s down, %s up", s.from.Format("Mon 2 Jan 15:04"),
		s.until.Add(-time.Second).Format("Mon 2 Jan 15:04"), len(s.apps), api.FormatBytes(rx), api.FormatBytes(tx)))
}

// bucketStarts lists the bucket starts of [from, until) in steps of step.
func bucketStarts(from, until time.Time, step string) []time.Time {
	var out []time.Time
	for t := from; t.Before(until) && len(out) < 1000; {
		out = append(out, t)
		if step == api.HistoryHour {
			t = t.Add(time.Hour)
		} else {
			t = t.AddDate(0, 0, 1)
		}
	}
	return out
}

func byTotal(apps []api.AppHistory) []api.AppHistory {
	out := append([]api.AppHistory(nil), apps...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].RxBytes+out[i].TxBytes > out[j].RxBytes+out[j].TxBytes })
	return out
}

func (s *statsView) sortApps() {
	key := func(a api.AppHistory) uint64 {
		switch s.sortBy {
		case sortDown:
			return a.RxBytes
		case sortUp:
			return a.TxBytes
		}
		return a.RxBytes + a.TxBytes
	}
	sort.SliceStable(s.apps, func(i, j int) bool {
		if s.sortBy == sortName {
			return strings.ToLower(s.apps[i].Name) < strings.ToLower(s.apps[j].Name)
		}
		return key(s.apps[i]) > key(s.apps[j])
	})
}

func (s *statsView) selectRow(i int) {
	if i < 0 || i >= len(s.apps) {
		return
	}
	s.sel = i
	a := s.apps[i]
	q, has := s.quotas[quotaKey{a.UID, a.Exe}]
	s.editor.show(a, q, has)
}

// askExport asks where to save the table as CSV.
func (s *statsView) askExport() {
	d := dialog.NewFileSave(func(w fyne.URIWriteCloser, err error) {
		if err != nil || w == nil {
			return
		}
		defer w.Close()
		if err := s.writeCSV(w); err != nil {
			dialog.ShowError(err, s.win)
		}
	}, s.win)
	d.SetFileName("chadthrottle-" + s.from.Format("2006-01-02") + ".csv")
	d.Show()
}

// writeCSV writes the table: app, executable, uid, bytes down, up, total.
func (s *statsView) writeCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"app", "exe", "uid", "from", "until", "rx_bytes", "tx_bytes", "total_bytes"})
	for _, a := range s.apps {
		cw.Write([]string{a.Name, a.Exe, strconv.FormatUint(uint64(a.UID), 10), s.from.Format(time.RFC3339),
			s.until.Format(time.RFC3339), strconv.FormatUint(a.RxBytes, 10), strconv.FormatUint(a.TxBytes, 10),
			strconv.FormatUint(a.RxBytes+a.TxBytes, 10)})
	}
	cw.Flush()
	return cw.Error()
}
