package gui

import (
	"context"
	"image/color"
	"strconv"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/chadthrottle/chadthrottle/assets"
	"github.com/chadthrottle/chadthrottle/helper/api"
)

// direction of a limit control.
type direction int

const (
	dirDown direction = iota
	dirUp
)

func (d direction) String() string {
	if d == dirDown {
		return "download"
	}
	return "upload"
}

// rowColumns is the shared layout of header and rows: limit mark, icon,
// name (flexible), rates, totals, download limit, upload limit, block,
// priority.
func (u *UI) rowColumns() *columns {
	return &columns{
		widths:   []float32{4, 32, 190, 100, 100, 100, 100, 265, 265, 84, 104},
		mins:     []float32{4, 32, 100, 96, 96, 100, 100, 140, 140, 84, 100}, // a rate's title with its sort arrow needs 96
		optional: []bool{5: true, 6: true},                                   // the totals go first when the window is narrow
		flex:     2, gap: 6,
	}
}

// appRow is one recycled row of the app list; id says which app it shows
// right now.
type appRow struct {
	u      *UI
	id     string
	sel    *canvas.Rectangle // the selection highlight
	mark   *canvas.Rectangle
	icon   *canvas.Image
	name   *widget.Label
	sub    *canvas.Text
	down   *glyphText // glyphtext.go: cheap to change every second
	up     *glyphText
	totDn  *glyphText
	totUp  *glyphText
	limDn  *limitControl
	limUp  *limitControl
	block  *widget.Button
	prio   *widget.Select // the share of the global limit (global.go)
	iconOf string
	subRaw string  // caption before fitting
	subW   float32 // width it was fitted to
	// the name before fitting and the column width it was fitted to
	nameRaw string
	nameW   float32
}

// limitControl is a slider with an "unlimited" right end plus an entry
// for an exact value.
type limitControl struct {
	row    *appRow
	dir    direction
	slider *lightSlider // lightwidgets.go: Fyne's, drawing less
	zone   *canvas.Text // under the slider: the zone a limit covers (zones.go)
	entry  *lightEntry
	box    *fyne.Container
}

func (u *UI) newRow() fyne.CanvasObject {
	r := &appRow{u: u}
	r.mark = canvas.NewRectangle(color.Transparent)
	r.mark.CornerRadius = 2
	r.mark.SetMinSize(fyne.NewSize(4, 40))
	r.icon = canvas.NewImageFromResource(assets.GenericAppIcon)
	r.icon.SetMinSize(fyne.NewSize(32, 32))
	r.icon.FillMode = canvas.ImageFillContain
	r.name = widget.NewLabel("")
	r.name.TextStyle.Bold = true
	// no Truncation: rowname.go fits the text (cheaper when it changes)
	r.sub = canvas.NewText("", color.Gray{Y: 0x80})
	r.sub.TextSize = 11
	nameBox := container.New(nameLayout{row: r}, r.name, r.sub)
	right := func() *glyphText {
		return newGlyphText(theme.TextSize(), fyne.TextStyle{}, fyne.TextAlignTrailing, theme.Color(theme.ColorNameForeground))
	}
	r.down, r.up, r.totDn, r.totUp = right(), right(), right(), right()
	nums := newNumStrip() // numstrip.go: the four numbers drawn as one
	pad := func(t *glyphText) fyne.CanvasObject {
		c := container.New(layout.NewCustomPaddedLayout(0, 0, 0, theme.InnerPadding()), t)
		nums.add(t, c)
		return c
	}
	r.limDn = r.newLimitControl(dirDown)
	r.limUp = r.newLimitControl(dirUp)
	r.block = r.newBlockToggle()
	r.prio = r.newPrioritySelect()
	// the selected app's highlight, drawn by the row (updateRow)
	r.sel = canvas.NewRectangle(theme.Color(theme.ColorNameSelection))
	r.sel.CornerRadius = theme.SelectionRadiusSize()
	r.sel.Hide()
	b := &rowBox{row: r, nums: nums, content: container.New(stripLayout{u.rowColumns(), nums}, r.mark, container.NewCenter(r.icon), nameBox,
		pad(r.down), pad(r.up), pad(r.totDn), pad(r.totUp), r.limDn.box, r.limUp.box, container.NewCenter(r.block),
		container.NewCenter(r.prio))}
	b.ExtendBaseWidget(b)
	return b
}

// nameLayout stacks the bold name and the caption line under it, tighter
// than a VBox.
type nameLayout struct{ row *appRow }

func (nameLayout) MinSize(objs []fyne.CanvasObject) fyne.Size {
	n, s := objs[0].MinSize(), objs[1].MinSize()
	return fyne.NewSize(max(n.Width, s.Width), n.Height+s.Height-6)
}

func (l nameLayout) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	n, s := objs[0].MinSize(), objs[1].MinSize()
	top := (size.Height - (n.Height + s.Height - 6)) / 2
	place(objs[0], fyne.NewPos(0, top), fyne.NewSize(size.Width, n.Height))
	if l.row != nil && size.Width != l.row.nameW {
		l.row.fitName() // a new column width: fit the name again
	}
	pad := theme.InnerPadding()
	// the caption's width is the column's, not its text's: a new text
	// then changes no size during the frame's layout pass (a resize there
	// would refresh the text and paint the whole window a second time)
	place(objs[1], fyne.NewPos(pad, top+n.Height-6-s.Height/4), fyne.NewSize(max(size.Width-pad, s.Width), s.Height))
}

// rowBox is the row's widget; it carries the row so updateRow finds it.
type rowBox struct {
	widget.BaseWidget
	content fyne.CanvasObject
	nums    *numStrip // drawn over content, placed by itself
	row     *appRow
	index   widget.ListItemID // the list index it was last bound to (paint.go: bind)
}

// CreateRenderer implements fyne.Widget.
func (b *rowBox) CreateRenderer() fyne.WidgetRenderer {
	return &rowRenderer{b: b, objs: []fyne.CanvasObject{b.row.sel, b.content, b.nums.raster}}
}

// rowRenderer stacks the selection highlight and the row's columns. Not a
// container.NewStack: its layout moves the columns' container at every
// layout pass, and a container's Move paints the window again (paint.go).
type rowRenderer struct {
	b    *rowBox
	objs []fyne.CanvasObject
}

func (r *rowRenderer) Destroy()                     {}
func (r *rowRenderer) Objects() []fyne.CanvasObject { return r.objs }
func (r *rowRenderer) MinSize() fyne.Size           { return r.b.content.MinSize() }
func (r *rowRenderer) Refresh()                     { r.Layout(r.b.Size()); r.b.row.sel.Refresh(); r.b.content.Refresh() }

// Layout implements fyne.WidgetRenderer.
func (r *rowRenderer) Layout(size fyne.Size) {
	for _, o := range r.objs[:2] { // the highlight and the columns
		place(o, fyne.Position{}, size)
	}
}

func (r *appRow) newLimitControl(d direction) *limitControl {
	c := &limitControl{row: r, dir: d}
	c.slider = newLightSlider(0, sliderMax)
	c.slider.OnChanged = func(pos float64) {
		r.u.touch()
		lim := SliderToLimit(pos)
		c.entry.SetText(entryText(lim, r.u.settings.Unit))
		r.u.edit(r.id, d, lim)
	}
	c.entry = newLightEntry()
	c.entry.SetPlaceHolder("unlimited")
	c.entry.OnChanged = func(string) { r.u.touch() }
	c.entry.OnSubmitted = func(s string) {
		r.u.touch()
		lim, err := ParseLimit(s, r.u.settings.Unit)
		if err != nil {
			r.u.notify("Limit not changed: " + err.Error())
			return
		}
		c.setSlider(lim)
		r.u.edit(r.id, d, lim)
		r.u.flushNow(r.id)
	}
	c.zone = canvas.NewText("", color.Gray{Y: 0x80})
	c.zone.TextSize = zoneTextSize
	c.box = container.New(&columns{widths: []float32{170, 89}, mins: []float32{45, 89}, flex: 0, gap: 6},
		container.New(underSlider{}, c.slider, c.zone), c.entry)
	return c
}

func entryText(lim uint64, unit Unit) string {
	if lim == 0 {
		return ""
	}
	return FormatRate(lim, unit)
}

// setSlider moves the slider without firing its callbacks.
func (c *limitControl) setSlider(lim uint64) {
	pos := LimitToSlider(lim)
	if c.slider.Value != pos {
		c.slider.Value = pos
		c.slider.Refresh()
	}
}

// show displays limit lim, covering zone, unless the person is editing
// this control.
func (c *limitControl) show(lim uint64, zone string, enabled bool, editing bool) {
	if enabled {
		c.slider.Enable()
		c.entry.Enable()
	} else {
		c.slider.Disable()
		c.entry.Disable()
	}
	if lim == 0 {
		zone = api.TrafficAll
	}
	setCanvasText(c.zone, zoneTag(zone, c.slider.Size().Width), color.Gray{Y: 0x80})
	if editing {
		return
	}
	c.setSlider(lim)
	focused := c.row.u.win.Canvas().Focused() == c.entry
	if t := entryText(lim, c.row.u.settings.Unit); !focused && c.entry.Text != t {
		c.entry.SetText(t)
	}
}

func (u *UI) updateRow(id widget.ListItemID, o fyne.CanvasObject) {
	if id < 0 || id >= len(u.view.rows) {
		return
	}
	b := o.(*rowBox)
	u.apps.bind(id, b)
	r := b.row
	a := &u.view.rows[id]
	r.id = a.ID
	selected := a.ID == u.selected
	if selected {
		if c := theme.Color(theme.ColorNameSelection); r.sel.FillColor != c { // the theme's, also after a change
			r.sel.FillColor = c
			r.sel.Refresh()
		}
	}
	setShown(r.sel, selected)
	lim, editing := u.effectiveLimit(a)
	on := lim.Down != 0 || lim.Up != 0
	mark := color.Color(color.Transparent)
	if (on || blocked(a)) && !u.conn.status.Paused {
		mark = colorMark
	}
	if r.mark.FillColor != mark {
		r.mark.FillColor = mark
		r.mark.Refresh()
	}
	if res := u.appIcons[a.Icon]; res != nil && r.iconOf != a.Icon {
		r.icon.Resource = res
		r.iconOf = a.Icon
		r.icon.Refresh()
	} else if res == nil && r.iconOf != "" {
		r.icon.Resource = assets.GenericAppIcon
		r.iconOf = ""
		r.icon.Refresh()
	}
	r.setName(a.Name)
	sub := strconv.Itoa(len(a.PIDs)) + " process"
	if len(a.PIDs) != 1 {
		sub += "es"
	}
	if a.User != "" {
		sub += " · " + a.User
	}
	if on {
		sub += " · limited" // the zone shows under each limit's slider
		if u.conn.status.Paused {
			sub += " (paused)"
		}
	}
	sub += blockCaption(a)
	if u.view.dupNames[a.Name] {
		sub += " · " + api.Printable(a.Exe)
	}
	w := r.name.Size().Width - 2*theme.InnerPadding() // the name column
	if w < 50 {
		w = 190
	}
	if sub != r.subRaw || w != r.subW { // measuring text costs; only on change
		r.subRaw, r.subW = sub, w
		r.sub.Text = fitText(sub, r.sub.TextSize, fyne.TextStyle{}, w)
		r.sub.Refresh()
	}
	unit := u.settings.Unit
	fg := theme.Color(theme.ColorNameForeground)
	r.down.Set(FormatRate(a.RxRate, unit), fg)
	r.up.Set(FormatRate(a.TxRate, unit), fg)
	r.totDn.Set(FormatTotal(a.RxBytes, unit), fg)
	r.totUp.Set(FormatTotal(a.TxBytes, unit), fg)
	// Another user's app shown without its path (the helper hides it from
	// callers without the manage permission) cannot be limited from here.
	ro := u.readOnly() || u.conn.state != stateConnected || a.Exe == ""
	r.limDn.show(lim.Down, lim.DownZone(), !ro && u.downloadAvailable(), editing)
	r.limUp.show(lim.Up, lim.UpZone(), !ro, editing)
	r.showBlock(a, !ro)
	r.showPriority(a, !ro)
}

func setText(l *widget.Label, s string) {
	if l.Text != s {
		l.SetText(s)
	}
}

// setCanvasText changes a text only when it differs (each change costs a
// new texture).
func setCanvasText(t *canvas.Text, s string, c color.Color) {
	if t.Text != s || t.Color != c {
		t.Text, t.Color = s, c
		t.Refresh()
	}
}

// refreshList redraws the visible rows.
func (u *UI) refreshList() {
	u.apps.bound = nil // the refresh binds every row on screen again (and drops the rows kept for reuse)
	u.apps.list.Refresh()
	u.apps.listed = len(u.view.rows)
	u.showCount()
}

// showCount updates the app count. The selection follows
// its app through sorting and filtering by itself: the rows draw it
// (updateRow), not the list. List.Select at the app's new place would
// scroll the list there (away from where the person scrolled) and lay out
// and refresh every row, painting the window twice.
func (u *UI) showCount() {
	setText(u.countLabel, u.countText())
}

func (u *UI) countText() string {
	if u.conn.state != stateConnected {
		return "" // the last answer's count would be stale
	}
	n, all := len(u.view.rows), len(u.view.all)
	switch {
	case n == all:
		return strconv.Itoa(all) + " apps"
	case u.view.filter == "" && u.view.hideIdle: // only idle apps are left out
		return strconv.Itoa(n) + " apps · " + strconv.Itoa(all-n) + " idle hidden"
	}
	return strconv.Itoa(n) + " of " + strconv.Itoa(all) + " apps"
}

// pendingEdit is a limit change waiting for its slider to settle.
type pendingEdit struct {
	exe   string
	uid   uint32
	name  string
	limit api.Limit
	seq   int
	timer *time.Timer
	sent  bool // in flight
}

// effectiveLimit is the app's limit as the person last set it: a pending
// edit wins over the helper's (older) answer.
func (u *UI) effectiveLimit(a *api.App) (api.Limit, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if p, ok := u.pending[a.ID]; ok {
		return p.limit, true
	}
	return a.Limit, false
}

// edit records that the person set direction d of app id to lim and
// (re)starts the settle timer: one call per settle, not per pixel.
func (u *UI) edit(id string, d direction, lim uint64) {
	a, ok := u.view.app(id)
	if !ok || u.readOnly() || a.Exe == "" {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	p, ok := u.pending[id]
	if !ok {
		p = &pendingEdit{exe: a.Exe, uid: a.UID, name: a.Name, limit: a.Limit}
		if (p.limit.Traffic == "" && p.limit.DownTraffic == "") || (p.limit.Down == 0 && p.limit.Up == 0) {
			p.limit = p.limit.SplitZones(u.settings.Traffic, u.settings.Traffic)
		}
		u.pending[id] = p
	}
	if d == dirDown {
		p.limit.Down = lim
	} else {
		p.limit.Up = lim
	}
	p.seq++
	seq := p.seq
	if p.timer != nil {
		p.timer.Stop()
	}
	p.timer = time.AfterFunc(u.opts.Debounce, func() { u.flush(id, seq) })
}

// flushNow sends app id's pending edit at once (entry submitted).
func (u *UI) flushNow(id string) {
	u.mu.Lock()
	p, ok := u.pending[id]
	if !ok {
		u.mu.Unlock()
		return
	}
	if p.timer != nil {
		p.timer.Stop()
	}
	seq := p.seq
	u.mu.Unlock()
	go u.flush(id, seq)
}

// flush sends the pending edit of app id if nothing changed it since seq.
// It runs on a timer goroutine.
func (u *UI) flush(id string, seq int) {
	u.mu.Lock()
	p, ok := u.pending[id]
	if !ok || p.seq != seq || p.sent {
		u.mu.Unlock()
		return
	}
	p.sent = true
	exe, uid, lim, name := p.exe, p.uid, p.limit, p.name
	u.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), setTimeout)
	var err error
	if lim.Down == 0 && lim.Up == 0 {
		err = u.b.RemoveAppLimit(ctx, exe, uid)
	} else {
		err = u.b.SetAppLimit(ctx, exe, uid, lim)
	}
	cancel()

	u.mu.Lock()
	again := false
	if p2, ok := u.pending[id]; ok && p2 == p {
		if p.seq == seq {
			delete(u.pending, id)
		} else {
			p.sent = false // moved again while we were sending
			again = true
		}
	}
	nextSeq := p.seq
	u.mu.Unlock()
	if again {
		u.flush(id, nextSeq)
		return
	}
	u.do(func() {
		if err != nil {
			u.notify("Could not limit " + name + ": " + explain(err))
		} else {
			u.setLocalLimit(id, lim)
		}
		u.apps.list.Refresh()
	})
	u.requestPoll()
}

// refreshLimits shows limits changed in the tray or a dialog in the list.
func (u *UI) refreshLimits() { u.apps.list.Refresh() }

// setLocalLimit shows a limit the helper accepted before the next poll
// confirms it.
func (u *trayCore) setLocalLimit(id string, lim api.Limit) {
	u.updateLocal(id, func(l *api.Limit) { *l = l.WithRates(lim) })
}
