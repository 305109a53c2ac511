package engine

import (
	"bufio"
	"bytes"
	"path/filepath"
	"strings"
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
	budget := &buildBudget{deadline: time.Now().Add(desktopBuildLimit)}
	for _, dir := range dirs {
		idx.addDir(dir, dir, budget)
	}
	return idx
}

// Bounds of one index build: a user's directories are theirs to fill.
const (
	maxDesktopFile    = 256 << 10 // bytes of one .desktop file
	maxDirEntries     = 4096      // entries read from one directory
	maxDesktopFiles   = 8192      // .desktop files read in one build
	desktopBuildLimit = 5 * time.Second
)

// buildBudget bounds one index build in files and time.
type buildBudget struct {
	files    int
	deadline time.Time
}

func (b *buildBudget) spent() bool {
	return b.files >= maxDesktopFiles || time.Now().After(b.deadline)
}

func (idx *desktopIndex) addDir(root, dir string, budget *buildBudget) {
	entries, err := readDirNames(dir, maxDirEntries)
	if err != nil && len(entries) == 0 {
		return
	}
	for _, e := range entries {
		if budget.spent() {
			return
		}
		p := filepath.Join(dir, e.Name())
		if e.IsDir() { // the entry itself: a link to a directory is not followed
			if depth := strings.Count(strings.TrimPrefix(p, root), "/"); depth <= 2 {
				idx.addDir(root, p, budget)
			}
			continue
		}
		if !strings.HasSuffix(e.Name(), ".desktop") {
			continue
		}
		budget.files++
		rel, _ := filepath.Rel(root, p)
		id := strings.TrimSuffix(strings.ReplaceAll(rel, "/", "-"), ".desktop")
		b, err := readRegular(p, maxDesktopFile)
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

// lookup finds the entry for a process in idxs (highest priority first):
// by flatpak app id, by resolved executable, then by basename; at each
// step a visible entry wins over a NoDisplay one.
func lookup(idxs []*desktopIndex, exe, flatpakID string) *desktopEntry {
	find := func(key string, m func(*desktopIndex) map[string]*desktopEntry) *desktopEntry {
		var hidden *desktopEntry
		for _, idx := range idxs {
			if idx == nil {
				continue
			}
			if de, ok := m(idx)[key]; ok {
				if !de.noDisplay {
					return de
				}
				if hidden == nil {
					hidden = de
				}
			}
		}
		return hidden
	}
	if flatpakID != "" {
		if de := find(flatpakID, func(i *desktopIndex) map[string]*desktopEntry { return i.byID }); de != nil {
			return de
		}
	}
	if exe == "" {
		return nil
	}
	if de := find(exe, func(i *desktopIndex) map[string]*desktopEntry { return i.byPath }); de != nil {
		return de
	}
	return find(filepath.Base(exe), func(i *desktopIndex) map[string]*desktopEntry { return i.byBase })
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
