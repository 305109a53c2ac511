package gui

import (
	"sync"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/systray"
	"github.com/godbus/dbus/v5"
)

// NewSystray returns a tray that exports the StatusNotifierItem through
// fyne.io/systray and serves its menu with menuServer (a whole menu at a
// time; systray's own menu export is replaced on the bus). It needs no
// Fyne driver: no X connection, no event loop. title names the item.
// Menu actions run on a goroutine of their own: the caller hands them to
// its loop (loopTray, fyne.Do).
func NewSystray(title string) *Systray {
	s := &Systray{title: title, opened: make(chan struct{}, 1)}
	s.menu = newMenuServer(func() {
		select {
		case s.opened <- struct{}{}:
		default:
		}
	})
	return s
}

// Systray is a desktop.App tray for RunTray and Run (Options.Tray).
type Systray struct {
	title  string
	once   sync.Once
	menu   *menuServer
	opened chan struct{}
}

// Opened receives a value each time a host is about to show the menu
// (its dbusmenu AboutToShow, AboutToShowGroup or "opened" event).
func (s *Systray) Opened() <-chan struct{} { return s.opened }

// start exports the item on the session bus and registers it with the
// tray host (again whenever a host appears), then puts menuServer in
// place of systray's menu.
func (s *Systray) start() {
	s.once.Do(func() {
		systray.SetTitle(s.title) // before the export: the item's Id and Title
		start, _ := systray.RunWithExternalLoop(nil, nil)
		start()
		conn, err := dbus.SessionBus() // systray's connection: the bus keeps one per process
		if err == nil {
			err = s.menu.export(conn, systrayMenuPath)
		}
		if err != nil {
			fyne.LogError("serve the tray menu", err)
		}
	})
}

// systrayMenuPath is where fyne.io/systray's item says its menu is.
const systrayMenuPath = "/StatusNotifierMenu"

// SetSystemTrayMenu shows m as the item's menu: items, submenus,
// separators, check marks, disabled items.
func (s *Systray) SetSystemTrayMenu(m *fyne.Menu) {
	s.start()
	s.menu.set(m)
}

// SetSystemTrayIcon shows icon (PNG) as the item's icon.
func (s *Systray) SetSystemTrayIcon(icon fyne.Resource) {
	systray.SetIcon(icon.Content())
	s.start()
}

// SetSystemTrayWindow: the tray-only mode has no window.
func (s *Systray) SetSystemTrayWindow(fyne.Window) {}

// loopTray runs the menu's actions on the tray-only mode's loop.
type loopTray struct {
	desktop.App
	do func(func())
}

func (l loopTray) SetSystemTrayMenu(m *fyne.Menu) { l.App.SetSystemTrayMenu(l.wrap(m)) }

// wrap returns a copy of m whose actions run through l.do.
func (l loopTray) wrap(m *fyne.Menu) *fyne.Menu {
	out := *m
	out.Items = make([]*fyne.MenuItem, len(m.Items))
	for i, it := range m.Items {
		c := *it
		if c.Action != nil {
			fn := c.Action
			c.Action = func() { l.do(fn) }
		}
		if c.ChildMenu != nil {
			c.ChildMenu = l.wrap(c.ChildMenu)
		}
		out.Items[i] = &c
	}
	return &out
}
