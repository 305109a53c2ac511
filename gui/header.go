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
	u.totalDown = canvas.NewText("↓ –", colorDown)
	u.totalDown.TextSize = 20
	u.totalDown.TextStyle.Bold = true
	u.totalUp = canvas.NewText("↑ –", colorUp)
	u.totalUp.TextSize = 20
	u.totalUp.TextStyle.Bold = true
	u.totalGraph = NewGraph(fyne.NewSize(240, 46), false)
	logo := canvas.NewImageFromResource(assets.AppIcon)
	logo.SetMinSize(fyne.NewSize(40, 40))
	logo.FillMode = canvas.ImageFillContain
	u.filter = widget.NewEntry()
	u.filter.SetPlaceHolder("Filter apps (Ctrl+F)")
	u.filter.ActionItem = widget.NewIcon(theme.SearchIcon())
	u.filter.OnChanged = func(s string) {
		u.view.setFilter(s)
		u.refreshList()
	}
	u.filter.OnSubmitted = func(string) { u.win.Canvas().Focus(u.list) }
	u.pauseBtn = widget.NewButtonWithIcon("Pause limits", theme.MediaPauseIcon(), func() { u.togglePause(false) })
	settingsBtn := widget.NewButtonWithIcon("Settings", theme.SettingsIcon(), u.showSettings)
	statsBtn := widget.NewButtonWithIcon("Statistics", theme.HistoryIcon(), u.showStats)
	totals := container.NewVBox(
		container.NewHBox(u.totalDown, widget.NewLabel(" "), u.totalUp),
	)
	return container.NewBorder(nil, nil,
		container.NewHBox(logo, totals, u.totalGraph),
		container.NewHBox(container.New(fixedWidth{w: 250}, u.filter), u.pauseBtn, statsBtn, settingsBtn),
	)
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
			u.updateSortButtons()
			u.refreshList()
		}
		u.headerBtns = append(u.headerBtns, b)
		hdr = append(hdr, b)
	}
	upHdr := widget.NewButton("Upload limit", func() { u.headerBtns[ColLimit].OnTapped() })
	upHdr.Importance = widget.LowImportance
	upHdr.Alignment = widget.ButtonAlignLeading
	hdr = append(hdr, upHdr)
	u.updateSortButtons()
	return container.New(cols, hdr...)
}

func (u *UI) updateSortButtons() {
	for c, b := range u.headerBtns {
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
