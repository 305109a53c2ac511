package gui

import (
	"fmt"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// Zones per direction (issue #16): the limit dialogs let the download and
// the upload limit each cover all traffic, the internet or the local
// network, and a row shows under each limit's slider which zone it covers.

// limitForm is a limit dialog's fields: each direction's rate and zone,
// and the rates' schedule.
type limitForm struct {
	down, up, when   *widget.Entry
	downZone, upZone *widget.Select
	items            []*widget.FormItem
}

// newLimitForm makes the fields showing cur; a limit without rates starts
// on the zone the settings give new limits.
func (u *UI) newLimitForm(cur api.Limit) *limitForm {
	f := &limitForm{down: widget.NewEntry(), up: widget.NewEntry()}
	for _, e := range []*widget.Entry{f.down, f.up} {
		e.SetPlaceHolder("unlimited")
	}
	f.down.SetText(entryText(cur.Down, u.settings.Unit))
	f.up.SetText(entryText(cur.Up, u.settings.Unit))
	if !u.downloadAvailable() {
		f.down.Disable()
	}
	dz, uz := cur.DownZone(), cur.UpZone()
	if cur.Down == 0 && cur.Up == 0 {
		dz, uz = u.settings.Traffic, u.settings.Traffic
	}
	f.downZone, f.upZone = zoneSelect(dz), zoneSelect(uz)
	sched, when := scheduleItem(cur.When)
	f.when = when
	f.items = []*widget.FormItem{widget.NewFormItem("Download", f.down), widget.NewFormItem("Download counts", f.downZone),
		widget.NewFormItem("Upload", f.up), widget.NewFormItem("Upload counts", f.upZone), sched}
	f.items[2].HintText = `For example 500 KB/s, 1.5 MB/s or 8 Mbit/s; empty = unlimited.`
	return f
}

func zoneSelect(zone string) *widget.Select {
	var labels []string
	for _, t := range trafficLabels {
		labels = append(labels, t.label)
	}
	s := widget.NewSelect(labels, nil)
	s.SetSelected(trafficLabel(zone))
	return s
}

// read returns the limit the fields ask for, or what is wrong with them.
func (f *limitForm) read(u *UI) (api.Limit, error) {
	d, err := ParseLimit(f.down.Text, u.settings.Unit)
	if err != nil {
		return api.Limit{}, fmt.Errorf("download: %w", err)
	}
	p, err := ParseLimit(f.up.Text, u.settings.Unit)
	if err != nil {
		return api.Limit{}, fmt.Errorf("upload: %w", err)
	}
	if err := f.when.Validate(); err != nil {
		return api.Limit{}, err
	}
	l := api.Limit{Down: d, Up: p, When: strings.TrimSpace(f.when.Text)}
	return l.SplitZones(trafficValue(f.downZone.Selected), trafficValue(f.upZone.Selected)), nil
}

// zoneCaption says which zone a row's limit covers: nothing for all
// traffic, one zone when its limited directions agree, else each
// direction's.
func zoneCaption(l api.Limit) string {
	d, u := l.DownZone(), l.UpZone()
	switch {
	case l.Down == 0 && l.Up != 0:
		d = u
	case l.Up == 0:
		u = d
	}
	if d == u {
		if d == api.TrafficAll {
			return ""
		}
		return " (" + zoneName(d) + ")"
	}
	return " (down " + zoneName(d) + ", up " + zoneName(u) + ")"
}

func zoneName(z string) string {
	switch z {
	case api.TrafficInternet:
		return "internet"
	case api.TrafficLocal:
		return "local network"
	}
	return "all"
}

// zoneTag is the word under a row's limit slider of width w: nothing for
// all traffic, a shorter word where the long one does not fit.
func zoneTag(z string, w float32) string {
	var long, short string
	switch z {
	case api.TrafficInternet:
		long, short = "internet only", "internet"
	case api.TrafficLocal:
		long, short = "local only", "local"
	default:
		return ""
	}
	if w > 0 && fyne.MeasureText(long, zoneTextSize, fyne.TextStyle{}).Width+theme.InnerPadding() > w {
		return short
	}
	return long
}

const zoneTextSize = 10

// underSlider lays a slider over its cell and the zone word small under
// its track, where the row has room left; the word is cut to the cell.
type underSlider struct{}

func (underSlider) MinSize(objs []fyne.CanvasObject) fyne.Size { return objs[0].MinSize() }

func (underSlider) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	place(objs[0], fyne.NewPos(0, 0), size)
	t := objs[1].(*canvas.Text)
	m := t.MinSize()
	x := max(0, min(theme.InnerPadding(), size.Width-m.Width)) // under the track's start, inside the cell
	place(t, fyne.NewPos(x, size.Height-m.Height+1), fyne.NewSize(size.Width-x, m.Height))
}
