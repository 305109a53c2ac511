package gui

import (
	"sync"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/systray"
)

// NewSystray returns a tray for RunTray that drives the StatusNotifierItem
// and its dbusmenu through fyne.io/systray directly, as Fyne's GLFW driver
// does (internal/driver/glfw/driver_desktop.go) but without that driver:
// no X connection, no event loop. title names the item.
func NewSystray(title string) desktop.App { return &systrayTray{title: title} }

type systrayTray struct {
	title string
	once  sync.Once
}

// start exports the item on the session bus and registers it with the
// tray host (again whenever a host appears).
func (s *systrayTray) start() {
	s.once.Do(func() {
		systray.SetTitle(s.title) // before the export: the item's Id and Title
		start, _ := systray.RunWithExternalLoop(nil, nil)
		start()
	})
}

// SetSystemTrayMenu shows m as the item's menu: items, submenus,
// separators, check marks, disabled items; a click runs the item's Action
// (on systray's goroutine: RunTray's tray hands it to its loop).
func (s *systrayTray) SetSystemTrayMenu(m *fyne.Menu) {
	s.start()
	systray.ResetMenu()
	addSystrayItems(m, nil)
}

func addSystrayItems(m *fyne.Menu, parent *systray.MenuItem) {
	for _, it := range m.Items {
		if it.IsSeparator {
			if parent != nil {
				parent.AddSeparator()
			} else {
				systray.AddSeparator()
			}
			continue
		}
		var item *systray.MenuItem
		switch {
		case parent != nil && it.Checked:
			item = parent.AddSubMenuItemCheckbox(it.Label, "", true)
		case parent != nil:
			item = parent.AddSubMenuItem(it.Label, "")
		case it.Checked:
			item = systray.AddMenuItemCheckbox(it.Label, "", true)
		default:
			item = systray.AddMenuItem(it.Label, "")
		}
		if it.Disabled {
			item.Disable()
		}
		if it.ChildMenu != nil {
			addSystrayItems(it.ChildMenu, item)
		}
		go func(fn func()) {
			for range item.ClickedCh { // closed when the menu is rebuilt
				if fn != nil {
					fn()
				}
			}
		}(it.Action)
	}
}

// SetSystemTrayIcon shows icon (PNG) as the item's icon.
func (s *systrayTray) SetSystemTrayIcon(icon fyne.Resource) {
	systray.SetIcon(icon.Content())
	s.start()
}

// SetSystemTrayWindow: the tray-only mode has no window.
func (s *systrayTray) SetSystemTrayWindow(fyne.Window) {}

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
