// Command barewindow is TestBenchGUI's floor: a Fyne window of the size
// given as its two arguments (the bench passes the main window's default)
// holding one label that changes once a second, so
// the bench can print what Fyne and the GL stack cost with almost nothing
// drawn (built from testdata: not part of the product).
package main

import (
	"os"
	"strconv"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"
	"fyne.io/fyne/v2/widget"
)

func main() {
	a := app.NewWithID("org.chadthrottle.BenchBareWindow")
	w := a.NewWindow("bare window")
	l := widget.NewLabel("0")
	w.SetContent(l)
	width, _ := strconv.Atoi(os.Args[1])
	height, _ := strconv.Atoi(os.Args[2])
	w.Resize(fyne.NewSize(float32(width), float32(height)))
	go func() {
		for i := 1; ; i++ {
			time.Sleep(time.Second)
			fyne.Do(func() { l.SetText(strconv.Itoa(i % 10)) })
		}
	}()
	w.ShowAndRun()
}
