package gui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
	"github.com/chadthrottle/chadthrottle/assets"
)

// buildHeader makes the header: totals, graph, filter, pause, settings.
func (u *UI) buildHeader() fyne.CanvasObject {
	u.hdr.totalDown = newGlyphText(20, fyne.TextStyle{Bold: true}, fyne.TextAlignLeading, colorDown)
	u.hdr.totalDown.Set("↓ –", colorDown)
	u.hdr.totalUp = newGlyphText(20, fyne.TextStyle{Bold: true}, fyne.TextAlignLeading, colorUp)
	u.hdr.totalUp.Set("↑ –", colorUp)
	u.hdr.totalGraph = NewGraph(fyne.NewSize(240, 46), false)
	logo := canvas.NewImageFromResource(assets.AppIcon)
	logo.SetMinSize(fyne.NewSize(40, 40))
	logo.FillMode = canvas.ImageFillContain
	u.hdr.filter = widget.NewEntry()
	u.hdr.filter.SetPlaceHolder("Filter apps (Ctrl+F)")
	u.hdr.filter.ActionItem = widget.NewIcon(theme.SearchIcon())
	u.hdr.filter.OnChanged = func(s string) {
		u.view.setFilter(s)
		u.refreshList()
	}
	u.hdr.filter.OnSubmitted = func(string) { u.win.Canvas().Focus(u.apps.list) }
	u.hdr.pauseBtn = widget.NewButtonWithIcon("Pause limits", theme.MediaPauseIcon(), func() { u.togglePause(false) })
	settingsBtn := widget.NewButtonWithIcon("Settings", theme.SettingsIcon(), u.showSettings)
	globalBtn := u.newGlobalButton()
	statsBtn := widget.NewButtonWithIcon("", theme.HistoryIcon(), u.showStats) // the Statistics window (stats.go)
	totals := container.New(&stickyRow{}, u.hdr.totalDown, widget.NewLabel(" "), u.hdr.totalUp)
	// Left to right: logo, totals, graph, space, filter, pause, statistics,
	// settings.
	// A narrow window shrinks the graph and the filter, then drops the
	// graph (the totals stay).
	pauseW := max(u.hdr.pauseBtn.MinSize().Width, widget.NewButtonWithIcon("Resume limits", theme.MediaPlayIcon(), nil).MinSize().Width)
	globalW := widget.NewButtonWithIcon("Global ↓100.0 MB/s ↑100.0 MB/s", theme.ComputerIcon(), nil).MinSize().Width
	cols := &columns{
		widths:   []float32{40, 270, 240, 0, 250, globalW, pauseW, statsBtn.MinSize().Width, settingsBtn.MinSize().Width},
		mins:     []float32{40, 270, 120, 0, 150, 120, pauseW, statsBtn.MinSize().Width, settingsBtn.MinSize().Width},
		optional: []bool{2: true},
		flex:     3, gap: 6,
	}
	return container.New(cols, logo, totals, u.hdr.totalGraph, layout.NewSpacer(), u.hdr.filter, globalBtn, u.hdr.pauseBtn, statsBtn, settingsBtn)
}

// buildColumnHeader makes the column titles; each sorts by its column.
func (u *UI) buildColumnHeader() fyne.CanvasObject {
	cols := u.rowColumns()
	hdr := []fyne.CanvasObject{layout.NewSpacer(), layout.NewSpacer()}
	for c := Column(0); c < numColumns; c++ {
		b := widget.NewButton(c.Title(), nil)
		b.Importance = widget.LowImportance
		b.Alignment = widget.ButtonAlignLeading
		if c != ColName && c != ColLimit {
			b.Alignment = widget.ButtonAlignTrailing
		}
		b.IconPlacement = widget.ButtonIconTrailingText
		b.OnTapped = func() {
			u.view.setSort(c)
			u.app.Preferences().SetInt(prefSortBy, int(u.view.sortBy))
			u.app.Preferences().SetBool(prefSortAsc, u.view.asc)
			u.updateSortButtons()
			u.refreshList()
		}
		u.apps.headerBtns = append(u.apps.headerBtns, b)
		hdr = append(hdr, b)
	}
	upHdr := widget.NewButton("Upload limit", func() { u.apps.headerBtns[ColLimit].OnTapped() })
	upHdr.Importance = widget.LowImportance
	upHdr.Alignment = widget.ButtonAlignLeading
	hdr = append(hdr, upHdr, widget.NewLabel("Network"), widget.NewLabel("Priority"))
	u.updateSortButtons()
	return container.New(cols, hdr...)
}

func (u *UI) updateSortButtons() {
	for c, b := range u.apps.headerBtns {
		b.Icon = nil
		if Column(c) == u.view.sortBy {
			if u.view.asc {
				b.Icon = theme.MenuDropUpIcon()
			} else {
				b.Icon = theme.MenuDropDownIcon()
			}
		}
		b.Refresh()
	}
}
