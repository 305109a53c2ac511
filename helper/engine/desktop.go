package engine

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// desktopEntry is what the engine takes from a .desktop file.
type desktopEntry struct {
	id        string // desktop file id: org.mozilla.firefox (without .desktop)
	name      string
	icon      string
	noDisplay bool
}

// desktopIndex maps executables to .desktop entries of one set of
// directories.
type desktopIndex struct {
	byPath map[string]*desktopEntry // absolute executable (as written and resolved)
	byBase map[string]*desktopEntry // executable basename
	byID   map[string]*desktopEntry // desktop id (flatpak app id)
}

// interpreters never name an app by themselves: Exec=python3 foo.py must
// not make every python3 process "Foo".
var interpreters = map[string]bool{
	"sh": true, "bash": true, "dash": true, "zsh": true, "fish": true, "env": true,
	"python": true, "python2": true, "python3": true, "perl": true, "ruby": true, "node": true,
	"java": true, "gjs": true, "mono": true, "dotnet": true, "wine": true, "flatpak": true,
	"snap": true, "xdg-open": true, "sudo": true, "pkexec": true, "gtk-launch": true, "exo-open": true,
	"electron": true, "kioclient": true, "kioclient5": true, "gio": true, "busctl": true, "dbus-send": true,
}

// isInterpreter reports whether a program name is an interpreter or
// launcher, ignoring a version suffix (python3.11, node-18).
func isInterpreter(name string) bool {
	return interpreters[name] || interpreters[strings.TrimRight(name, "0123456789.-_")]
}

// binDirs are searched for Exec= commands without a path.
var binDirs = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

func newDesktopIndex() *desktopIndex {
	return &desktopIndex{byPath: map[string]*desktopEntry{}, byBase: map[string]*desktopEntry{}, byID: map[string]*desktopEntry{}}
}

// buildDesktopIndex reads every .desktop file in dirs; earlier directories
// win (XDG order: the user's own first).
func buildDesktopIndex(dirs []string) *desktopIndex {
	idx := newDesktopIndex()
	for _, dir := range dirs {
		idx.addDir(dir, dir)
	}
	return idx
}

func (idx *desktopIndex) addDir(root, dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if e.IsDir() {
			if depth := strings.Count(strings.TrimPrefix(p, root), "/"); depth <= 2 {
				idx.addDir(root, p)
			}
			continue
		}
		if !strings.HasSuffix(e.Name(), ".desktop") {
			continue
		}
		rel, _ := filepath.Rel(root, p)
		id := strings.TrimSuffix(strings.ReplaceAll(rel, "/", "-"), ".desktop")
		b, err := readSmall(p, 256<<10)
		if err != nil {
			continue
		}
		de, execs, ok := parseDesktop(b)
		if !ok {
			continue
		}
		de.id = id
		idx.add(de, execs)
	}
}

func readSmall(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}

// add indexes an entry unless an earlier (higher-priority) one holds the
// key; a visible entry replaces a NoDisplay one.
func (idx *desktopIndex) add(de *desktopEntry, execs []string) {
	put := func(m map[string]*desktopEntry, k string) {
		if k == "" {
			return
		}
		if old, ok := m[k]; ok && !(old.noDisplay && !de.noDisplay) {
			return
		}
		m[k] = de
	}
	put(idx.byID, de.id)
	for _, x := range execs {
		if isInterpreter(filepath.Base(x)) {
			continue
		}
		if strings.HasPrefix(x, "/") {
			put(idx.byPath, filepath.Clean(x))
			if r, err := filepath.EvalSymlinks(x); err == nil {
				put(idx.byPath, r)
			}
		} else {
			for _, d := range binDirs {
				p := filepath.Join(d, x)
				if r, err := filepath.EvalSymlinks(p); err == nil {
					put(idx.byPath, r)
					break
				}
			}
		}
		put(idx.byBase, filepath.Base(x))
	}
}

// parseDesktop parses the [Desktop Entry] group of a .desktop file. It
// returns the entry and the executables its Exec= and TryExec= name; ok is
// false for entries that are not visible applications.
func parseDesktop(b []byte) (de *desktopEntry, execs []string, ok bool) {
	de = &desktopEntry{}
	var typ, exec, tryExec string
	hidden := false
	inEntry := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if line[0] == '[' {
			inEntry = line == "[Desktop Entry]"
			continue
		}
		if !inEntry {
			continue
		}
		k, v, found := strings.Cut(line, "=")
		if !found {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "Type":
			typ = v
		case "Name":
			de.name = unescapeDesktop(v)
		case "Icon":
			de.icon = v
		case "Exec":
			exec = v
		case "TryExec":
			tryExec = v
		case "Hidden":
			hidden = v == "true"
		case "NoDisplay":
			de.noDisplay = v == "true"
		}
	}
	if typ != "Application" || hidden || de.name == "" {
		return nil, nil, false
	}
	if tryExec != "" {
		execs = append(execs, unescapeDesktop(tryExec))
	}
	if p := execProgram(exec); p != "" {
		execs = append(execs, p)
	}
	return de, execs, true
}

// execProgram returns the program an Exec= line runs, skipping env and
// VAR=value prefixes.
func execProgram(exec string) string {
	for _, tok := range splitExec(exec) {
		if tok == "env" || strings.HasPrefix(tok, "-") {
			continue
		}
		if i := strings.IndexByte(tok, '='); i > 0 && !strings.Contains(tok[:i], "/") {
			continue // VAR=value
		}
		if strings.HasPrefix(tok, "%") {
			return ""
		}
		return tok
	}
	return ""
}

// splitExec splits an Exec= value into arguments, honouring double quotes
// and backslash escapes as the Desktop Entry spec describes.
func splitExec(s string) []string {
	var (
		out   []string
		cur   strings.Builder
		quote bool
		have  bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			have = true
		case c == '"':
			quote = !quote
			have = true
		case (c == ' ' || c == '\t') && !quote:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

func unescapeDesktop(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	r := strings.NewReplacer(`\s`, " ", `\n`, " ", `\t`, " ", `\r`, "", `\\`, `\`)
	return r.Replace(s)
}

// lookup finds the entry for a process: by flatpak app id, by resolved
// executable, then by basename.
func (idx *desktopIndex) lookup(exe, flatpakID string) *desktopEntry {
	if flatpakID != "" {
		if de, ok := idx.byID[flatpakID]; ok {
			return de
		}
	}
	if exe == "" {
		return nil
	}
	if de, ok := idx.byPath[exe]; ok {
		return de
	}
	if de, ok := idx.byBase[filepath.Base(exe)]; ok {
		return de
	}
	return nil
}

// flatpakID extracts a Flatpak app id from a systemd scope in a cgroup path
// (…/app-flatpak-org.mozilla.firefox-1234.scope).
func flatpakID(cgroup string) string {
	base := filepath.Base(cgroup)
	rest, ok := strings.CutPrefix(base, "app-flatpak-")
	if !ok {
		return ""
	}
	rest = strings.TrimSuffix(rest, ".scope")
	if i := strings.LastIndexByte(rest, '-'); i > 0 {
		rest = rest[:i]
	}
	return rest
}

// desktopCache holds the system index and one index per user (the user's
// own directories first, then the system's), rebuilt when a directory
// changes (checked at most every refreshEvery).
type desktopCache struct {
	mu          sync.Mutex
	systemDirs  []string
	userDirs    func(uid uint32) []string
	users       map[uint32]*userIndex
	lastCheck   time.Time
	refreshDone int // generation, bumped on rebuild
}

type userIndex struct {
	dirs  []string
	mtime map[string]time.Time
	idx   *desktopIndex
}

const desktopRefreshEvery = 30 * time.Second

func newDesktopCache(systemDirs []string, userDirs func(uid uint32) []string) *desktopCache {
	if systemDirs == nil {
		systemDirs = defaultSystemAppDirs()
	}
	if userDirs == nil {
		userDirs = defaultUserAppDirs
	}
	return &desktopCache{systemDirs: systemDirs, userDirs: userDirs, users: map[uint32]*userIndex{}}
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

// index returns the index for uid, building it on first use.
func (c *desktopCache) index(uid uint32) *desktopIndex {
	c.mu.Lock()
	defer c.mu.Unlock()
	ui, ok := c.users[uid]
	if !ok {
		dirs := append(c.userDirs(uid), c.systemDirs...)
		ui = &userIndex{dirs: dirs, mtime: dirMtimes(dirs), idx: buildDesktopIndex(dirs)}
		c.users[uid] = ui
	}
	return ui.idx
}

// refresh rebuilds the indexes whose directories changed; it does the work
// at most every desktopRefreshEvery and reports whether anything changed.
func (c *desktopCache) refresh(now time.Time, force bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !force && now.Sub(c.lastCheck) < desktopRefreshEvery {
		return false
	}
	c.lastCheck = now
	changed := false
	for _, ui := range c.users {
		m := dirMtimes(ui.dirs)
		if sameMtimes(m, ui.mtime) {
			continue
		}
		ui.mtime = m
		ui.idx = buildDesktopIndex(ui.dirs)
		changed = true
	}
	if changed {
		c.refreshDone++
	}
	return changed
}
