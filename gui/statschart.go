package gui

import (
	"image/color"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// chartSeries is one stacked series of the usage chart: an app (or "other
// apps") with its bytes per bucket.
type chartSeries struct {
	label string
	color color.Color
	bytes []uint64 // per bucket, down+up
}

// chartPalette colours the top apps; the last colour is "other apps".
var chartPalette = []color.Color{
	color.NRGBA{0x3b, 0x82, 0xf6, 0xff}, color.NRGBA{0xf5, 0x9e, 0x0b, 0xff}, color.NRGBA{0x10, 0xb9, 0x81, 0xff},
	color.NRGBA{0xef, 0x44, 0x44, 0xff}, color.NRGBA{0x8b, 0x5c, 0xf6, 0xff}, color.NRGBA{0x94, 0xa3, 0xb8, 0xff},
}

// chartTopApps is how many apps get a colour of their own.
const chartTopApps = 5

// UsageChart draws stacked bars: one bar per bucket (hour or day), one
// colour per top app, the rest as "other apps", with a legend and the
// largest bar's size.
type UsageChart struct {
	widget.BaseWidget
	starts []time.Time
	series []chartSeries
	step   string // api.HistoryHour or HistoryDay: how bars are labelled
}

// NewUsageChart returns an empty chart.
func NewUsageChart() *UsageChart {
	c := &UsageChart{}
	c.ExtendBaseWidget(c)
	return c
}

// SetData replaces the chart's data: apps (most used first) in buckets
// starting at starts.
func (c *UsageChart) SetData(starts []time.Time, apps []api.AppHistory, step string) {
	c.starts, c.step = starts, step
	c.series = nil
	index := map[int64]int{}
	for i, s := range starts {
		index[s.Unix()] = i
	}
	var other *chartSeries
	for i, a := range apps {
		s := chartSeries{label: a.Name, color: chartPalette[min(i, chartTopApps)], bytes: make([]uint64, len(starts))}
		if i >= chartTopApps {
			if other == nil {
				other = &chartSeries{label: "other apps", color: chartPalette[chartTopApps], bytes: make([]uint64, len(starts))}
			}
			s = *other
		}
		for _, b := range a.Buckets {
			if j, ok := index[b.Start]; ok {
				s.bytes[j] += b.RxBytes + b.TxBytes
			}
		}
		if i < chartTopApps {
			c.series = append(c.series, s)
		}
	}
	if other != nil {
		c.series = append(c.series, *other)
	}
	c.Refresh()
}

// MinSize is a readable chart.
func (c *UsageChart) MinSize() fyne.Size { return fyne.NewSize(480, 220) }

// CreateRenderer implements fyne.Widget.
func (c *UsageChart) CreateRenderer() fyne.WidgetRenderer {
	r := &chartRenderer{c: c}
	r.Refresh()
	return r
}

type chartRenderer struct {
	c       *UsageChart
	objects []fyne.CanvasObject
	size    fyne.Size
}

func (r *chartRenderer) Destroy()                     {}
func (r *chartRenderer) MinSize() fyne.Size           { return r.c.MinSize() }
func (r *chartRenderer) Objects() []fyne.CanvasObject { return r.objects }
func (r *chartRenderer) Layout(s fyne.Size) {
	if s != r.size {
		r.size = s
		r.Refresh()
	}
}

// Refresh rebuilds the bars, labels and legend for the current size.
func (r *chartRenderer) Refresh() {
	c := r.c
	size := r.size
	if size.IsZero() {
		size = c.MinSize()
	}
	r.objects = r.objects[:0]
	fg := theme.Color(theme.ColorNameForeground)
	const legendH, labelH, axisW = 22, 16, 70
	plotH := size.Height - legendH - labelH
	n := len(c.starts)
	var peak uint64
	for i := 0; i < n; i++ {
		var sum uint64
		for _, s := range c.series {
			sum += s.bytes[i]
		}
		peak = max(peak, sum)
	}
	axis := canvas.NewText(api.FormatBytes(peak), fg)
	axis.TextSize = 11
	axis.Move(fyne.NewPos(0, 0))
	r.objects = append(r.objects, axis)
	if n == 0 || peak == 0 {
		empty := canvas.NewText("No traffic recorded in this period", fg)
		empty.Move(fyne.NewPos(axisW, plotH/2))
		r.objects = append(r.objects, empty)
		return
	}
	slot := (size.Width - axisW) / float32(n)
	barW := max(slot*0.75, 1)
	every := max(1, int(40/slot)+1) // label every few bars so labels do not collide
	for i := 0; i < n; i++ {
		x := axisW + float32(i)*slot
		y := plotH
		for _, s := range c.series {
			h := float32(float64(s.bytes[i]) / float64(peak) * float64(plotH-4))
			if h <= 0 {
				continue
			}
			bar := canvas.NewRectangle(s.color)
			bar.Move(fyne.NewPos(x, y-h))
			bar.Resize(fyne.NewSize(barW, h))
			r.objects = append(r.objects, bar)
			y -= h
		}
		if i%every == 0 {
			lbl := canvas.NewText(bucketLabel(c.starts[i], c.step), fg)
			lbl.TextSize = 10
			lbl.Move(fyne.NewPos(x, plotH+1))
			r.objects = append(r.objects, lbl)
		}
	}
	x := float32(axisW)
	for _, s := range c.series {
		sw := canvas.NewRectangle(s.color)
		sw.Move(fyne.NewPos(x, size.Height-legendH+5))
		sw.Resize(fyne.NewSize(12, 12))
		name := api.Printable(s.label)
		if len(name) > 18 {
			name = name[:17] + "…"
		}
		t := canvas.NewText(name, fg)
		t.TextSize = 12
		t.Move(fyne.NewPos(x+16, size.Height-legendH+2))
		r.objects = append(r.objects, sw, t)
		x += 16 + t.MinSize().Width + 14
	}
}

// bucketLabel names a bar: the hour ("14:00") or the day ("Mon 1").
func bucketLabel(t time.Time, step string) string {
	if step == api.HistoryHour {
		return t.Format("15:04")
	}
	return t.Format("Mon 2")
}
