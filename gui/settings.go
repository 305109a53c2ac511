package gui

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"fyne.io/fyne/v2"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// Preference keys (Fyne preferences, per user).
const (
	prefUnit        = "unit"
	prefAutostart   = "autostart"
	prefStartHidden = "start-hidden"
	prefShowIdle    = "show-idle-apps"
	prefTraffic     = "traffic"
	prefRecentHosts = "recent-hosts"
)

// MaxRecentHosts is how many remote machines Settings remembers.
const MaxRecentHosts = 6

// ThisComputer is how Settings names the local helper among the machines.
const ThisComputer = "This computer"

// recentHosts returns the remote machines connected to lately, newest
// first.
func recentHosts(p fyne.Preferences) []string {
	var out []string
	for _, h := range p.StringList(prefRecentHosts) {
		if h = strings.TrimSpace(h); h != "" && len(out) < MaxRecentHosts {
			out = append(out, h)
		}
	}
	return out
}

// addRecentHost puts host first in the recent machines.
func addRecentHost(p fyne.Preferences, host string) {
	list := []string{host}
	for _, h := range recentHosts(p) {
		if h != host && len(list) < MaxRecentHosts {
			list = append(list, h)
		}
	}
	p.SetStringList(prefRecentHosts, list)
}

// Settings are the user's choices, persisted in Fyne preferences.
type Settings struct {
	Unit        Unit
	Autostart   bool   // start at login (XDG autostart entry)
	StartHidden bool   // start in the tray without a window
	Traffic     string // traffic type of new limits: api.TrafficAll, …
	// ShowIdle lists idle apps too (without a limit or rule, no traffic
	// for IdleAfter); off by default.
	ShowIdle bool
}

func loadSettings(p fyne.Preferences) Settings {
	s := Settings{
		Unit:        Unit(p.StringWithFallback(prefUnit, string(UnitAuto))),
		Autostart:   AutostartEnabled(),
		StartHidden: p.Bool(prefStartHidden),
		Traffic:     p.StringWithFallback(prefTraffic, api.TrafficAll),
		ShowIdle:    p.Bool(prefShowIdle),
	}
	valid := false
	for _, u := range Units {
		valid = valid || u == s.Unit
	}
	if !valid {
		s.Unit = UnitAuto
	}
	switch s.Traffic {
	case api.TrafficAll, api.TrafficInternet, api.TrafficLocal:
	default:
		s.Traffic = api.TrafficAll
	}
	return s
}

func (s Settings) save(p fyne.Preferences) {
	p.SetString(prefUnit, string(s.Unit))
	p.SetBool(prefAutostart, s.Autostart) // informational: the entries on disk decide
	p.SetBool(prefStartHidden, s.StartHidden)
	p.SetString(prefTraffic, s.Traffic)
	p.SetBool(prefShowIdle, s.ShowIdle)
}

var trafficLabels = []struct{ value, label string }{
	{api.TrafficAll, "All traffic"},
	{api.TrafficInternet, "Internet only"},
	{api.TrafficLocal, "Local network only"},
}

func trafficLabel(v string) string {
	for _, t := range trafficLabels {
		if t.value == v {
			return t.label
		}
	}
	return trafficLabels[0].label
}

func trafficValue(label string) string {
	for _, t := range trafficLabels {
		if t.label == label {
			return t.value
		}
	}
	return api.TrafficAll
}

// AutostartFile is the XDG autostart entry's name.
const AutostartFile = "io.github.chadthrottle.desktop"

// autostartPath returns $XDG_CONFIG_HOME/autostart/AutostartFile.
func autostartPath() (string, error) {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("find home directory: %w", err)
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "autostart", AutostartFile), nil
}

// systemAutostart returns the system-wide autostart entry the package
// installs (in $XDG_CONFIG_DIRS, default /etc/xdg), or "".
func systemAutostart() string {
	dirs := os.Getenv("XDG_CONFIG_DIRS")
	if dirs == "" {
		dirs = "/etc/xdg"
	}
	for _, d := range filepath.SplitList(dirs) {
		p := filepath.Join(d, "autostart", AutostartFile)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// AutostartEnabled reports whether ChadThrottle starts at login: the user's
// entry decides when there is one (Hidden=true means off, as the XDG
// autostart spec says), otherwise the system entry's presence does.
func AutostartEnabled() bool {
	path, err := autostartPath()
	if err != nil {
		return false
	}
	if b, err := os.ReadFile(path); err == nil {
		return !strings.Contains(string(b), "\nHidden=true")
	}
	return systemAutostart() != ""
}

// SetAutostart writes the user's XDG autostart entry that starts exe at
// login (hidden in the tray when hidden is set), or turns start at login
// off: by removing the user's entry, or, when the package installed a
// system-wide entry, by writing a user entry with Hidden=true that masks it.
func SetAutostart(enabled, hidden bool, exe string) error {
	path, err := autostartPath()
	if err != nil {
		return err
	}
	if !enabled && systemAutostart() == "" {
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("remove autostart entry: %w", err)
		}
		return nil
	}
	cmd := "chadthrottle"
	if exe != "" {
		cmd = quoteExec(exe)
	}
	if hidden {
		cmd += " --hidden"
	}
	lines := []string{
		"[Desktop Entry]",
		"Type=Application",
		"Name=ChadThrottle",
		"Comment=Per-application bandwidth limits",
		"Exec=" + cmd,
		"Icon=io.github.chadthrottle",
		"Terminal=false",
	}
	if enabled {
		lines = append(lines, "X-GNOME-Autostart-enabled=true")
	} else {
		lines = append(lines, "Hidden=true", "X-GNOME-Autostart-enabled=false")
	}
	content := strings.Join(append(lines, ""), "\n")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create autostart directory: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return fmt.Errorf("write autostart entry: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write autostart entry: %w", err)
	}
	return nil
}

// quoteExec quotes an Exec= argument per the desktop entry spec.
func quoteExec(s string) string {
	if s == "" {
		return "chadthrottle"
	}
	if !strings.ContainsAny(s, " \t\n\"'\\><~|&;$*?#()`%") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\\\`, `"`, `\\"`, "`", "\\\\`", "$", `\\$`, "%", "%%")
	return `"` + r.Replace(s) + `"`
}
