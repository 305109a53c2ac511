package gui

import (
	"cmp"
	"fmt"
	"image/color"
	"slices"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/chadthrottle/chadthrottle/assets"
	"github.com/chadthrottle/chadthrottle/helper/api"
)

// detailsPane shows the selected app: a 60 s graph, its processes and its
// connections.
type detailsPane struct {
	u      *UI
	root   *fyne.Container
	empty  *widget.Label
	body   *fyne.Container
	icon   *canvas.Image
	title  *widget.Label
	info   *widget.Label
	graph  *Graph
	tabs   *container.AppTabs
	procs  *widget.Table
	conns  *widget.Table
	procT  *container.TabItem
	connT  *container.TabItem
	d      *api.AppDetails
	selPID int32
	limBtn *widget.Button
	// how each table is sorted (a click on a column title)
	procSort, connSort tableSort
	names              *rdns  // remote host names
	procKey, connKey   string // what the tables show (paint.go: tableKey)
}

// detailCol is a column of a details table of rows of T: its title and
// width, whether it sorts ascending first (text), its text in a cell and
// its sort key (a number, or text when the number is 0 for all).
type detailCol[T any] struct {
	title string
	width float32
	text  bool
	show  func(r *T, unit Unit) string
	key   func(r *T) (float64, string)
}

func num64[N ~int32 | ~uint64](v N) (float64, string) { return float64(v), "" }

var procCols = []detailCol[api.Process]{
	{"PID", 64, true, func(p *api.Process, _ Unit) string { return strconv.Itoa(int(p.PID)) }, func(p *api.Process) (float64, string) { return num64(p.PID) }},
	{"Process", 120, true, func(p *api.Process, _ Unit) string { return p.Comm }, func(p *api.Process) (float64, string) { return 0, p.Comm }},
	{"Command line", 200, true, func(p *api.Process, _ Unit) string { return p.Cmdline }, func(p *api.Process) (float64, string) { return 0, p.Cmdline }},
	{"Download", 88, false, func(p *api.Process, u Unit) string { return FormatRate(p.RxRate, u) }, func(p *api.Process) (float64, string) { return num64(p.RxRate) }},
	{"Upload", 88, false, func(p *api.Process, u Unit) string { return FormatRate(p.TxRate, u) }, func(p *api.Process) (float64, string) { return num64(p.TxRate) }},
	{"Downloaded", 88, false, func(p *api.Process, u Unit) string { return FormatTotal(p.RxBytes, u) }, func(p *api.Process) (float64, string) { return num64(p.RxBytes) }},
	{"Uploaded", 88, false, func(p *api.Process, u Unit) string { return FormatTotal(p.TxBytes, u) }, func(p *api.Process) (float64, string) { return num64(p.TxBytes) }},
	{"Limit", 150, false, func(p *api.Process, u Unit) string { return limitText(p.Limit, u) }, func(p *api.Process) (float64, string) { return num64(p.Limit.Down + p.Limit.Up) }},
}

var connCols = []detailCol[api.Connection]{
	{"PID", 64, true, func(c *api.Connection, _ Unit) string { return strconv.Itoa(int(c.PID)) }, func(c *api.Connection) (float64, string) { return num64(c.PID) }},
	{"Proto", 60, true, func(c *api.Connection, _ Unit) string { return strings.ToUpper(c.Proto) }, func(c *api.Connection) (float64, string) { return 0, c.Proto }},
	{"Remote", 200, true, func(c *api.Connection, _ Unit) string { return c.Remote }, func(c *api.Connection) (float64, string) { return 0, c.Remote }},
	{"Local", 170, true, func(c *api.Connection, _ Unit) string { return c.Local }, func(c *api.Connection) (float64, string) { return 0, c.Local }},
	{"Where", 76, true, func(c *api.Connection, _ Unit) string { return whereText(c.Traffic) }, func(c *api.Connection) (float64, string) { return 0, c.Traffic }},
	{"Download", 88, false, func(c *api.Connection, u Unit) string { return FormatRate(c.RxRate, u) }, func(c *api.Connection) (float64, string) { return num64(c.RxRate) }},
	{"Upload", 88, false, func(c *api.Connection, u Unit) string { return FormatRate(c.TxRate, u) }, func(c *api.Connection) (float64, string) { return num64(c.TxRate) }},
	{"Downloaded", 88, false, func(c *api.Connection, u Unit) string { return FormatTotal(c.RxBytes, u) }, func(c *api.Connection) (float64, string) { return num64(c.RxBytes) }},
	{"Uploaded", 88, false, func(c *api.Connection, u Unit) string { return FormatTotal(c.TxBytes, u) }, func(c *api.Connection) (float64, string) { return num64(c.TxBytes) }},
}

// whereText names a connection's zone.
func whereText(traffic string) string {
	if s := map[string]string{api.TrafficInternet: "Internet", api.TrafficLocal: "Local"}[traffic]; s != "" {
		return s
	}
	return traffic
}

func newDetailsPane(u *UI) *detailsPane {
	p := &detailsPane{u: u, d: &api.AppDetails{}}
	p.names = newRDNS(func() { u.do(func() { p.conns.Refresh() }) })
	p.empty = widget.NewLabel("Select an app to see its processes, connections and the last 60 seconds of traffic.")
	p.empty.Alignment = fyne.TextAlignCenter
	p.icon = canvas.NewImageFromResource(assets.GenericAppIcon)
	p.icon.SetMinSize(fyne.NewSize(40, 40))
	p.icon.FillMode = canvas.ImageFillContain
	p.title = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	p.info = widget.NewLabel("")
	p.info.Truncation = fyne.TextTruncateEllipsis
	p.graph = NewGraph(fyne.NewSize(320, 140), true)

	p.procs = newDetailTable(procCols, func() int { return len(p.d.Processes) }, p.procCell, &p.procSort, p.resort)
	p.procs.OnSelected = func(id widget.TableCellID) {
		if id.Row >= 0 && id.Row < len(p.d.Processes) {
			p.selPID = p.d.Processes[id.Row].PID
			p.limBtn.Enable()
		}
	}
	p.limBtn = widget.NewButton("Limit selected process…", func() { p.u.showProcessLimitDialog(p.selPID) })
	p.limBtn.Disable()

	p.conns = newDetailTable(connCols, func() int { return len(p.d.Connections) }, p.connCell, &p.connSort, p.resort)
	quotaBtn := widget.NewButton("Data quota…", func() { p.u.editQuota(p.d.App) })
	p.procT = container.NewTabItem("Processes", container.NewBorder(nil, container.NewHBox(p.limBtn, quotaBtn), nil, nil, p.procs))
	p.connT = container.NewTabItem("Connections", p.conns)
	p.tabs = container.NewAppTabs(p.procT, p.connT)

	legend := container.NewHBox(swatch(colorDown), widget.NewLabel("download"), swatch(colorUp), widget.NewLabel("upload"))
	left := container.NewBorder(nil, legend, nil, nil, p.graph)
	head := container.NewBorder(nil, nil, p.icon, nil, container.NewVBox(p.title, p.info))
	p.body = container.NewBorder(head, nil, container.New(fixedWidth{w: 340}, left), nil, p.tabs)
	p.body.Hide()
	p.root = container.NewStack(container.NewCenter(p.empty), p.body)
	return p
}

// swatch is a legend's colour square.
func swatch(c color.Color) fyne.CanvasObject {
	r := canvas.NewRectangle(c)
	r.SetMinSize(fyne.NewSize(12, 12))
	r.CornerRadius = 2
	return container.NewCenter(r)
}

func (p *detailsPane) procCell(id widget.TableCellID, l *widget.Label) {
	setText(l, cellText(p.d.Processes, procCols, id, p.u.settings.Unit))
}

func (p *detailsPane) connCell(id widget.TableCellID, l *widget.Label) {
	if id.Col == 2 && id.Row >= 0 && id.Row < len(p.d.Connections) {
		c := &p.d.Connections[id.Row]
		setText(l, p.names.remoteText(c.Remote, c.Proto))
		return
	}
	setText(l, cellText(p.d.Connections, connCols, id, p.u.settings.Unit))
}

// cellText is the text of cell id of a table of rows; "" outside them.
func cellText[T any](rows []T, cols []detailCol[T], id widget.TableCellID, unit Unit) string {
	if id.Row < 0 || id.Row >= len(rows) || id.Col < 0 || id.Col >= len(cols) {
		return ""
	}
	return cols[id.Col].show(&rows[id.Row], unit)
}

// limitText describes a limit in a table cell, with its zones (zones.go).
func limitText(l api.Limit, unit Unit) string {
	if l.Down == 0 && l.Up == 0 {
		return "–"
	}
	var parts []string
	if l.Down != 0 {
		parts = append(parts, "↓ "+FormatRate(l.Down, unit))
	}
	if l.Up != 0 {
		parts = append(parts, "↑ "+FormatRate(l.Up, unit))
	}
	return strings.Join(parts, " ") + zoneCaption(l)
}

// show displays d (UI goroutine).
func (p *detailsPane) show(d *api.AppDetails) {
	p.d = d
	p.sortRows()
	a := &d.App
	p.empty.Hide()
	p.body.Show()
	res := p.u.appIcons[a.Icon]
	if res == nil {
		res = assets.GenericAppIcon
	}
	if p.icon.Resource != res {
		p.icon.Resource = res
		p.icon.Refresh()
	}
	setText(p.title, a.Name)
	info := api.Printable(a.Exe)
	if a.User != "" {
		info += " · user " + a.User
	}
	info += fmt.Sprintf(" · %d process", len(a.PIDs))
	if len(a.PIDs) != 1 {
		info += "es"
	}
	if a.Rule {
		info += " · limit saved as a rule"
	}
	setText(p.info, info)
	p.graph.SetSamples(d.History, p.u.settings.Unit)
	pt, ct := fmt.Sprintf("Processes (%d)", len(d.Processes)), fmt.Sprintf("Connections (%d)", len(d.Connections))
	if pt != p.procT.Text || ct != p.connT.Text {
		p.procT.Text, p.connT.Text = pt, ct
		p.tabs.Refresh()
	}
	refreshTable(p.procs, &p.procKey, tableKey(d.Processes, procCols, p.u.settings.Unit))
	refreshTable(p.conns, &p.connKey, tableKey(d.Connections, connCols, p.u.settings.Unit))
	if p.u.readOnly() || p.selPID == 0 {
		p.limBtn.Disable()
	} else {
		p.limBtn.Enable()
	}
}

// gone says the selected app has exited.
func (p *detailsPane) gone() {
	if p.body.Visible() && !strings.HasSuffix(p.info.Text, " · exited") {
		p.info.SetText(p.info.Text + " · exited")
	}
}

// clear shows the "select an app" hint.
func (p *detailsPane) clear() {
	p.d = &api.AppDetails{}
	p.procKey, p.connKey = "", "" // the next show refreshes the tables
	p.selPID = 0
	p.body.Hide()
	p.empty.Show()
}

// newDetailTable returns a table of label cells with a header row of cols;
// rows counts the rows, cell fills one.
func newDetailTable[T any](cols []detailCol[T], rows func() int, cell func(widget.TableCellID, *widget.Label), sort *tableSort, resort func()) *widget.Table {
	t := widget.NewTableWithHeaders(
		func() (int, int) { return rows(), len(cols) },
		func() fyne.CanvasObject { l := widget.NewLabel(""); l.Truncation = fyne.TextTruncateEllipsis; return l },
		func(id widget.TableCellID, o fyne.CanvasObject) { cell(id, o.(*widget.Label)) })
	t.ShowHeaderColumn = false
	t.CreateHeader = func() fyne.CanvasObject {
		b := widget.NewButton("", nil)
		b.Importance = widget.LowImportance
		b.Alignment = widget.ButtonAlignLeading
		return b
	}
	t.UpdateHeader = func(id widget.TableCellID, o fyne.CanvasObject) {
		if id.Col < 0 || id.Col >= len(cols) {
			return
		}
		b := o.(*widget.Button)
		title := cols[id.Col].title
		if sort.set && sort.col == id.Col {
			title += map[bool]string{true: " ▲", false: " ▼"}[sort.asc]
		}
		b.SetText(title)
		col := id.Col
		b.OnTapped = func() {
			sort.click(col, cols[col].text)
			resort()
			t.Refresh()
		}
	}
	for i, c := range cols {
		t.SetColumnWidth(i, max(c.width, headerWidth(c.title)))
	}
	return t
}

// headerWidth is what a header button needs to show title with the sort
// arrow and the button's padding ("Downloaded" ran into "Uploaded" at 88).
func headerWidth(title string) float32 {
	w := fyne.MeasureText(title+" ▼", theme.TextSize(), fyne.TextStyle{Bold: true}).Width // buttons draw their text strong
	return w + 4*theme.InnerPadding()
}

// tableSort is how a details table is sorted: by col, ascending or not;
// unset keeps the helper's order.
type tableSort struct {
	col      int
	asc, set bool
}

// click sorts by col; clicking the sorted column again flips the order.
// Text columns sort ascending first, numbers descending first.
func (s *tableSort) click(col int, text bool) {
	if s.set && s.col == col {
		s.asc = !s.asc
		return
	}
	*s = tableSort{col: col, asc: text, set: true}
}

// resort sorts the shown rows again after a click.
func (p *detailsPane) resort() { p.sortRows() }

// sortRows sorts the processes and connections as their tables say.
func (p *detailsPane) sortRows() {
	p.d.Processes = sortBy(p.d.Processes, p.procSort, procCols)
	p.d.Connections = sortBy(p.d.Connections, p.connSort, connCols)
}

// sortBy returns rows sorted stably by column s.col's key (a number, else
// text), in a copy: the rows may be shared with their sender.
func sortBy[T any](rows []T, s tableSort, cols []detailCol[T]) []T {
	if !s.set || s.col < 0 || s.col >= len(cols) {
		return rows
	}
	key := cols[s.col].key
	rows = slices.Clone(rows)
	slices.SortStableFunc(rows, func(a, b T) int {
		na, ta := key(&a)
		nb, tb := key(&b)
		c := cmp.Compare(na, nb)
		if c == 0 {
			c = strings.Compare(strings.ToLower(ta), strings.ToLower(tb))
		}
		if !s.asc {
			c = -c
		}
		return c
	})
	return rows
}
