package gui

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// Column is a sortable column of the app list.
type Column int

// Columns of the app list, in display order.
const (
	ColName Column = iota
	ColDown
	ColUp
	ColTotalDown
	ColTotalUp
	ColLimit // limited apps first
	numColumns
)

var columnTitles = [numColumns]string{"Application", "Download", "Upload", "Downloaded", "Uploaded", "Download limit"}

// Title is the column header text.
func (c Column) Title() string {
	if c < 0 || c >= numColumns {
		return "?"
	}
	return columnTitles[c]
}

// view is the sorted, filtered list of apps the window shows. It is owned
// by the UI goroutine.
type view struct {
	all    []api.App
	rows   []api.App // all, filtered and sorted
	sortBy Column
	asc    bool
	filter string
	// frozen keeps the current row order (new apps go last) so rows do
	// not move under the pointer while the person works with them.
	frozen bool
	order  map[string]int
	// dupNames holds names more than one app has (their rows show the
	// executable too)
	dupNames map[string]bool
	// hideIdle leaves out apps that are idle (see idle) unless a filter
	// is typed; active is when each app last moved bytes, as this window
	// saw it, and now the clock (tests set it).
	hideIdle bool
	active   map[string]activity
	now      func() time.Time
}

// activity is an app's byte total and when it last changed.
type activity struct {
	bytes uint64
	at    time.Time
}

// IdleAfter is how long an app without a limit or rule may move no bytes
// before "hide idle apps" leaves it out.
const IdleAfter = 3 * time.Minute

func newView() *view {
	return &view{sortBy: ColDown, hideIdle: true, active: map[string]activity{}, now: time.Now}
}

// noteActivity records, for each app, when its bytes last changed; an app
// seen for the first time with bytes counts as active now.
func (v *view) noteActivity(apps []api.App) {
	now := v.now()
	seen := make(map[string]bool, len(apps))
	for i := range apps {
		a := &apps[i]
		seen[a.ID] = true
		total := a.RxBytes + a.TxBytes
		prev, ok := v.active[a.ID]
		if a.RxRate+a.TxRate > 0 || (total != prev.bytes && (ok || total > 0)) {
			prev.at = now
		}
		prev.bytes = total
		v.active[a.ID] = prev
	}
	for id := range v.active {
		if !seen[id] {
			delete(v.active, id)
		}
	}
}

// idle reports whether a has no limit, no rule, and moved no bytes for
// IdleAfter.
func (v *view) idle(a *api.App) bool {
	if limited(a) || a.Rule {
		return false
	}
	at := v.active[a.ID].at
	return at.IsZero() || v.now().Sub(at) > IdleAfter
}

// setHideIdle turns "hide idle apps" on or off.
func (v *view) setHideIdle(on bool) {
	v.hideIdle = on
	v.frozen = false
	v.recompute()
}

// setApps replaces the data and recomputes rows.
func (v *view) setApps(apps []api.App) {
	v.all = apps
	v.noteActivity(apps)
	seen := make(map[string]bool, len(apps))
	clear(v.dupNames)
	for _, a := range apps {
		if seen[a.Name] {
			if v.dupNames == nil {
				v.dupNames = map[string]bool{}
			}
			v.dupNames[a.Name] = true
		}
		seen[a.Name] = true
	}
	v.recompute()
}

// setSort sorts by c; choosing the current column again flips the order.
// Names sort ascending first, numbers descending first.
func (v *view) setSort(c Column) {
	v.frozen = false
	if c == v.sortBy {
		v.asc = !v.asc
	} else {
		v.sortBy = c
		v.asc = c == ColName
	}
	v.recompute()
}

func (v *view) setFilter(f string) {
	v.filter = strings.ToLower(strings.TrimSpace(f))
	v.frozen = false
	v.recompute()
}

func limited(a *api.App) bool { return a.Limit.Down != 0 || a.Limit.Up != 0 }

func (v *view) recompute() {
	rows := v.rows[:0]
	for _, a := range v.all {
		switch {
		case v.filter == "":
			if !v.hideIdle || !v.idle(&a) {
				rows = append(rows, a)
			}
		case strings.Contains(strings.ToLower(a.Name), v.filter) || strings.Contains(strings.ToLower(a.Exe), v.filter):
			rows = append(rows, a) // a search finds idle apps too
		}
	}
	v.rows = rows
	if v.frozen && v.order != nil {
		slices.SortStableFunc(rows, func(a, b api.App) int {
			ia, oka := v.order[a.ID]
			ib, okb := v.order[b.ID]
			switch {
			case oka && okb:
				return cmp.Compare(ia, ib)
			case oka:
				return -1
			case okb:
				return 1
			}
			return v.compare(&a, &b)
		})
		return
	}
	slices.SortStableFunc(rows, func(a, b api.App) int { return v.compare(&a, &b) })
	if v.order == nil {
		v.order = map[string]int{}
	}
	clear(v.order)
	for i := range rows {
		v.order[rows[i].ID] = i
	}
}

// key is a's value in a numeric sort column.
func (v *view) key(a *api.App) uint64 {
	switch v.sortBy {
	case ColDown:
		return a.RxRate
	case ColUp:
		return a.TxRate
	case ColTotalDown:
		return a.RxBytes
	case ColTotalUp:
		return a.TxBytes
	case ColLimit:
		if limited(a) {
			return 1
		}
	}
	return 0
}

// compare orders two apps by the sort column; ties go by name, then id,
// so rows do not jump around.
func (v *view) compare(a, b *api.App) int {
	var c int
	if v.sortBy == ColName {
		c = cmp.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
	} else {
		c = cmp.Compare(v.key(a), v.key(b))
	}
	if !v.asc {
		c = -c
	}
	if c == 0 {
		c = cmp.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
	}
	if c == 0 {
		c = cmp.Compare(a.ID, b.ID)
	}
	return c
}

// index returns the row of app id, or -1.
func (v *view) index(id string) int {
	for i := range v.rows {
		if v.rows[i].ID == id {
			return i
		}
	}
	return -1
}

// app returns the app with id from all apps.
func (v *view) app(id string) (api.App, bool) {
	for _, a := range v.all {
		if a.ID == id {
			return a, true
		}
	}
	return api.App{}, false
}

// topApps returns up to n apps by current total rate (for the tray), apps
// with a limit first when nothing moves.
func topApps(apps []api.App, n int) []api.App {
	// The tray offers quick limits: apps shown without their path (another
	// user's, to a caller without manage) cannot take one.
	s := slices.DeleteFunc(slices.Clone(apps), func(a api.App) bool { return a.Exe == "" })
	slices.SortStableFunc(s, func(a, b api.App) int {
		if c := cmp.Compare(b.RxRate+b.TxRate, a.RxRate+a.TxRate); c != 0 {
			return c
		}
		if la, lb := limited(&a), limited(&b); la != lb {
			if la {
				return -1
			}
			return 1
		}
		if c := cmp.Compare(b.RxBytes+b.TxBytes, a.RxBytes+a.TxBytes); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	if len(s) > n {
		s = s[:n]
	}
	return s
}
