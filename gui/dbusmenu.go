package gui

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"
)

// dbusmenuIface is the tray menu's D-Bus interface (com.canonical.dbusmenu,
// version 3), which StatusNotifierItem hosts read the menu through.
const dbusmenuIface = "com.canonical.dbusmenu"

// menuServer serves a fyne.Menu as com.canonical.dbusmenu. Every menu it
// serves is one snapshot: a host's GetLayout never sees a menu half built.
// (fyne.io/systray's own export grows the layout item by item while hosts
// may read it, and tells them of the finished menu only by chance: a host
// that read in between kept a submenu with no children, which
// libdbusmenu-gtk shows as an empty box after warning "Children but no
// menu … 'children-display' property: 'submenu'".)
//
// Item ids are kept while an item stays the same kind at the same place:
// a submenu keeps its id when its label changes (the top apps' rates), a
// leaf while its label stays (its check mark or enabled state may change);
// anything else gives it, and everything under it, a new id. So a host
// never sees a leaf become a submenu under one id, and a click a host
// sends for an item since replaced does nothing.
//
// libdbusmenu (xfce4-panel, and other GTK hosts) reads a new submenu's
// properties with one GetGroupProperties call and its children's with
// another sent after it, and files each child into its parent's menu when
// the child's answer comes: an answer for the children that overtakes the
// parent's (godbus serves each call on a goroutine of its own) leaves the
// children out — an empty submenu. So the children's answer waits until
// the parent's has gone to that host (waitParents).
type menuServer struct {
	conn *dbus.Conn
	path dbus.ObjectPath

	mu    sync.Mutex
	rev   uint32
	root  *menuNode
	byID  map[int32]*menuNode
	ids   map[string]int32 // item key → id, for the served menu's items
	next  int32
	shape string // the served menu's properties and ids, to skip sending a same menu

	served map[string]map[int32]time.Time // host → item → when its properties were answered

	opened  func()      // a host is about to show the menu (nil: nobody asks)
	actions chan func() // clicked items' actions, run in order on one goroutine
}

type menuNode struct {
	id       int32
	parent   int32
	props    map[string]dbus.Variant
	children []*menuNode
	action   func()
}

// menuLayout is the dbusmenu layout structure (ia{sv}av): id, properties,
// children (each a variant holding a menuLayout).
type menuLayout struct {
	ID       int32
	Props    map[string]dbus.Variant
	Children []dbus.Variant
}

func newMenuServer(opened func()) *menuServer {
	s := &menuServer{root: &menuNode{props: map[string]dbus.Variant{}}, byID: map[int32]*menuNode{},
		ids: map[string]int32{}, next: 1, served: map[string]map[int32]time.Time{}, opened: opened, actions: make(chan func(), 16)}
	s.byID[0] = s.root
	go func() {
		for fn := range s.actions {
			fn()
		}
	}()
	return s
}

// export serves the menu at path on conn, in place of what was exported
// there before for this interface and org.freedesktop.DBus.Properties.
func (s *menuServer) export(conn *dbus.Conn, path dbus.ObjectPath) error {
	if err := conn.Export(s, path, dbusmenuIface); err != nil {
		return err
	}
	_, err := prop.Export(conn, path, prop.Map{dbusmenuIface: {
		"Version":       {Value: uint32(3)},
		"TextDirection": {Value: "ltr"},
		"Status":        {Value: "normal"},
		"IconThemePath": {Value: []string{}},
	}})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.conn, s.path = conn, path
	s.mu.Unlock()
	return nil
}

// set serves m (nil: an empty menu) and tells hosts when it differs from
// the menu served before. The actions are m's from now on.
func (s *menuServer) set(m *fyne.Menu) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := map[string]int32{}
	root := &menuNode{props: map[string]dbus.Variant{}}
	byID := map[int32]*menuNode{0: root}
	if m != nil {
		if len(m.Items) > 0 {
			root.props["children-display"] = dbus.MakeVariant("submenu")
		}
		root.children = s.nodes(m, 0, "", ids, byID)
	}
	s.root, s.byID, s.ids = root, byID, ids
	for _, seen := range s.served {
		for id := range seen {
			if _, ok := byID[id]; !ok {
				delete(seen, id)
			}
		}
	}
	shape := layoutShape(root)
	if shape == s.shape {
		return
	}
	s.shape = shape
	s.rev++
	if s.conn != nil {
		_ = s.conn.Emit(s.path, dbusmenuIface+".LayoutUpdated", s.rev, int32(0))
	}
}

// nodes makes m's items (under the item parent), keeping the ids of items
// whose key was served before (key: the parent's key, the place, the kind
// and, for a leaf, the label).
func (s *menuServer) nodes(m *fyne.Menu, parent int32, parentKey string, ids map[string]int32, byID map[int32]*menuNode) []*menuNode {
	out := make([]*menuNode, 0, len(m.Items))
	for i, it := range m.Items {
		n := &menuNode{parent: parent, props: map[string]dbus.Variant{}, action: it.Action}
		kind := "item"
		switch {
		case it.IsSeparator:
			kind = "sep"
			n.props["type"] = dbus.MakeVariant("separator")
		case it.ChildMenu != nil:
			kind = "sub"
			n.props["children-display"] = dbus.MakeVariant("submenu")
		}
		key := parentKey + "\x00" + strconv.Itoa(i) + kind
		if kind != "sub" {
			key += "\x01" + it.Label
		}
		id, ok := s.ids[key]
		if !ok {
			id = s.next
			if s.next++; s.next == math.MaxInt32 {
				s.next = 1
			}
		}
		n.id = id
		ids[key] = id
		byID[id] = n
		if !it.IsSeparator {
			n.props["label"] = dbus.MakeVariant(it.Label)
			n.props["enabled"] = dbus.MakeVariant(!it.Disabled)
			if it.Checked {
				n.props["toggle-type"] = dbus.MakeVariant("checkmark")
				n.props["toggle-state"] = dbus.MakeVariant(int32(1))
			}
		}
		if it.ChildMenu != nil {
			n.children = s.nodes(it.ChildMenu, id, key, ids, byID)
		}
		out = append(out, n)
	}
	return out
}

// layoutShape is what a host sees of the menu under n: ids, properties
// (in order of name), children.
func layoutShape(n *menuNode) string {
	var b strings.Builder
	var walk func(n *menuNode)
	walk = func(n *menuNode) {
		keys := make([]string, 0, len(n.props))
		for k := range n.props {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(&b, "(%d", n.id)
		for _, k := range keys {
			fmt.Fprintf(&b, " %q=%s", k, n.props[k].String())
		}
		for _, c := range n.children {
			walk(c)
		}
		b.WriteString(")")
	}
	walk(n)
	return b.String()
}

// layout is the layout under n, depth levels of children deep (-1: all),
// with only the named properties (none named: all).
func (n *menuNode) layout(depth int32, names []string) menuLayout {
	l := menuLayout{ID: n.id, Props: n.properties(names), Children: []dbus.Variant{}}
	if depth == 0 {
		return l
	}
	for _, c := range n.children {
		l.Children = append(l.Children, dbus.MakeVariant(c.layout(depth-1, names)))
	}
	return l
}

func (n *menuNode) properties(names []string) map[string]dbus.Variant {
	if len(names) == 0 {
		return n.props
	}
	out := map[string]dbus.Variant{}
	for _, k := range names {
		if v, ok := n.props[k]; ok {
			out[k] = v
		}
	}
	return out
}

// GetLayout is com.canonical.dbusmenu.GetLayout.
func (s *menuServer) GetLayout(parentID, depth int32, names []string) (uint32, menuLayout, *dbus.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.byID[parentID]
	if !ok {
		return 0, menuLayout{}, unknownItem(parentID)
	}
	return s.rev, n.layout(depth, names), nil
}

// itemProps is one item's properties in GetGroupProperties' answer.
type itemProps struct {
	ID    int32
	Props map[string]dbus.Variant
}

// GetGroupProperties is com.canonical.dbusmenu.GetGroupProperties; ids not
// served are left out (an empty list asks for every item).
func (s *menuServer) GetGroupProperties(host dbus.Sender, ids []int32, names []string) ([]itemProps, *dbus.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waitParents(string(host), ids)
	out := []itemProps{}
	if len(ids) == 0 {
		for id := range s.byID {
			ids = append(ids, id)
		}
	}
	seen := s.served[string(host)]
	if seen == nil {
		if len(s.served) >= 16 { // hosts come and go: forget them all
			s.served = map[string]map[int32]time.Time{}
		}
		seen = map[int32]time.Time{}
		s.served[string(host)] = seen
	}
	now := time.Now()
	for _, id := range ids {
		if n, ok := s.byID[id]; ok {
			out = append(out, itemProps{ID: id, Props: n.properties(names)})
			seen[id] = now
		}
	}
	return out, nil
}

// Time a children's answer waits after its parent's was answered (for
// that reply to be sent first), and at most in all.
const (
	parentAnswered = 20 * time.Millisecond
	parentWait     = 250 * time.Millisecond
)

// waitParents waits (s.mu held, released while waiting) until the
// properties of the submenus holding ids were answered to host at least
// parentAnswered ago, for at most parentWait.
func (s *menuServer) waitParents(host string, ids []int32) {
	for deadline := time.Now().Add(parentWait); time.Now().Before(deadline); {
		wait := false
		for _, id := range ids {
			n, ok := s.byID[id]
			if !ok || n.parent == 0 {
				continue
			}
			if at, ok := s.served[host][n.parent]; !ok || time.Since(at) < parentAnswered {
				wait = true
				break
			}
		}
		if !wait {
			return
		}
		s.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		s.mu.Lock()
	}
}

// GetProperty is com.canonical.dbusmenu.GetProperty.
func (s *menuServer) GetProperty(id int32, name string) (dbus.Variant, *dbus.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.byID[id]
	if !ok {
		return dbus.MakeVariant(""), unknownItem(id)
	}
	v, ok := n.props[name]
	if !ok {
		return dbus.MakeVariant(""), dbus.NewError("org.freedesktop.DBus.Error.InvalidArgs", []any{"no property " + name})
	}
	return v, nil
}

// Event is com.canonical.dbusmenu.Event: "clicked" runs the item's action,
// "opened" (of any item) says the menu shows.
func (s *menuServer) Event(id int32, event string, _ dbus.Variant, _ uint32) *dbus.Error {
	s.mu.Lock()
	n, ok := s.byID[id]
	var fn func()
	if ok && event == "clicked" {
		fn = n.action
	}
	s.mu.Unlock()
	if !ok {
		return unknownItem(id)
	}
	if event == "opened" && s.opened != nil {
		s.opened()
	}
	if fn != nil {
		select {
		case s.actions <- fn:
		default: // a host sending clicks faster than they run: drop
		}
	}
	return nil
}

// menuEvent is one event of EventGroup.
type menuEvent struct {
	ID        int32
	Event     string
	Data      dbus.Variant
	Timestamp uint32
}

// EventGroup is com.canonical.dbusmenu.EventGroup.
func (s *menuServer) EventGroup(events []menuEvent) ([]int32, *dbus.Error) {
	bad := []int32{}
	for _, e := range events {
		if s.Event(e.ID, e.Event, e.Data, e.Timestamp) != nil {
			bad = append(bad, e.ID)
		}
	}
	return bad, nil
}

// AboutToShow is com.canonical.dbusmenu.AboutToShow: the menu is served
// whole, so a host never needs to read it again; the app hears that
// someone looks.
func (s *menuServer) AboutToShow(id int32) (bool, *dbus.Error) {
	if s.opened != nil {
		s.opened()
	}
	return false, nil
}

// AboutToShowGroup is com.canonical.dbusmenu.AboutToShowGroup.
func (s *menuServer) AboutToShowGroup(ids []int32) ([]int32, []int32, *dbus.Error) {
	if s.opened != nil {
		s.opened()
	}
	return []int32{}, []int32{}, nil
}

func unknownItem(id int32) *dbus.Error {
	return dbus.NewError("org.freedesktop.DBus.Error.InvalidArgs", []any{"no menu item " + strconv.Itoa(int(id))})
}
