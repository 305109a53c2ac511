package engine

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// desktopCache holds the system index (built by root from system
// directories) and one index per user of that user's own directories. A
// user's index is built in the background on a thread holding that user's
// file-system credentials (asUser), never under an engine lock: until it is
// ready, or if it never finishes (a hung file system), the user's apps are
// named from the system index. Directories are checked for changes at most
// every desktopRefreshEvery.
type desktopCache struct {
	mu         sync.Mutex
	systemDirs []string
	userDirs   func(uid uint32) []string
	system     *desktopIndex
	sysMtime   map[string]time.Time
	users      map[uint32]*userIndex
	lastCheck  time.Time
	changed    bool // a user's index was (re)built since refresh last said so
	logf       func(string, ...any)
}

type userIndex struct {
	mtime    map[string]time.Time
	idx      *desktopIndex // nil until built
	building bool
	failed   string // why the last build could not run
}

const desktopRefreshEvery = 30 * time.Second

func newDesktopCache(systemDirs []string, userDirs func(uid uint32) []string, logf func(string, ...any)) *desktopCache {
	if systemDirs == nil {
		systemDirs = defaultSystemAppDirs()
	}
	if userDirs == nil {
		userDirs = defaultUserAppDirs
	}
	return &desktopCache{systemDirs: systemDirs, userDirs: userDirs, users: map[uint32]*userIndex{},
		system: buildDesktopIndex(systemDirs), sysMtime: dirMtimes(systemDirs), logf: logf}
}

func defaultSystemAppDirs() []string {
	var dirs []string
	data := os.Getenv("XDG_DATA_DIRS")
	if data == "" {
		data = "/usr/local/share:/usr/share"
	}
	for _, d := range strings.Split(data, ":") {
		if strings.HasPrefix(d, "/") {
			dirs = append(dirs, filepath.Join(d, "applications"))
		}
	}
	dirs = append(dirs, "/var/lib/flatpak/exports/share/applications", "/var/lib/snapd/desktop/applications")
	return dedupe(dirs)
}

func defaultUserAppDirs(uid uint32) []string {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil || u.HomeDir == "" || u.HomeDir == "/" {
		return nil
	}
	return []string{
		filepath.Join(u.HomeDir, ".local/share/applications"),
		filepath.Join(u.HomeDir, ".local/share/flatpak/exports/share/applications"),
	}
}

// primaryGID returns uid's group from the user database (nogroup when it
// has none).
func primaryGID(uid uint32) uint32 {
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		if g, err := strconv.ParseUint(u.Gid, 10, 32); err == nil {
			return uint32(g)
		}
	}
	return 65534
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

func dirMtimes(dirs []string) map[string]time.Time {
	m := make(map[string]time.Time, len(dirs))
	for _, d := range dirs {
		if st, err := os.Stat(d); err == nil {
			m[d] = st.ModTime()
		}
	}
	return m
}

func sameMtimes(a, b map[string]time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !b[k].Equal(v) {
			return false
		}
	}
	return true
}

// lookup finds the entry for a process of uid. It never blocks on the
// user's files: the first lookup for a uid starts building its index.
func (c *desktopCache) lookup(uid uint32, exe, flatpakID string) *desktopEntry {
	c.mu.Lock()
	ui, ok := c.users[uid]
	if !ok {
		ui = &userIndex{}
		c.users[uid] = ui
		c.buildLocked(uid, ui)
	}
	idxs := []*desktopIndex{ui.idx, c.system}
	c.mu.Unlock()
	return lookup(idxs, exe, flatpakID)
}

// buildLocked (re)builds uid's index in the background when its
// directories changed (or it has none yet). One build per user at a time.
func (c *desktopCache) buildLocked(uid uint32, ui *userIndex) {
	if ui.building {
		return
	}
	ui.building = true
	old, have := ui.mtime, ui.idx != nil
	go func() {
		var (
			idx *desktopIndex
			m   map[string]time.Time
		)
		err := asUser(uid, primaryGID(uid), 0, func() {
			dirs := c.userDirs(uid)
			m = dirMtimes(dirs)
			if !have || !sameMtimes(m, old) {
				idx = buildDesktopIndex(dirs)
			}
		})
		c.mu.Lock()
		defer c.mu.Unlock()
		ui.building = false
		if err != nil {
			if msg := err.Error(); msg != ui.failed {
				ui.failed = msg
				if c.logf != nil {
					c.logf("engine: app names from uid %d's .desktop files: %v", uid, err)
				}
			}
			return
		}
		ui.failed = ""
		ui.mtime = m
		if idx != nil {
			ui.idx = idx
			c.changed = true
		}
	}()
}

// refresh rebuilds the system index when its directories changed and
// starts a check of every user's; it does that at most every
// desktopRefreshEvery (unless force), and reports whether any index changed
// since the last call (user indexes finish in the background).
func (c *desktopCache) refresh(now time.Time, force bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	changed := c.changed
	c.changed = false
	if !force && now.Sub(c.lastCheck) < desktopRefreshEvery {
		return changed
	}
	c.lastCheck = now
	if m := dirMtimes(c.systemDirs); !sameMtimes(m, c.sysMtime) {
		c.sysMtime = m
		c.system = buildDesktopIndex(c.systemDirs)
		changed = true
	}
	for uid, ui := range c.users {
		c.buildLocked(uid, ui)
	}
	return changed
}
