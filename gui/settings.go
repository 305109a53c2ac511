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
	prefTraffic     = "traffic"
)

// Settings are the user's choices, persisted in Fyne preferences.
type Settings struct {
	Unit        Unit
	Autostart   bool   // start at login (XDG autostart entry)
	StartHidden bool   // start in the tray without a window
	Traffic     string // traffic type of new limits: api.TrafficAll, …
}

func loadSettings(p fyne.Preferences) Settings {
	s := Settings{
		Unit:        Unit(p.StringWithFallback(prefUnit, string(UnitAuto))),
		Autostart:   p.Bool(prefAutostart),
		StartHidden: p.Bool(prefStartHidden),
		Traffic:     p.StringWithFallback(prefTraffic, api.TrafficAll),
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
	p.SetBool(prefAutostart, s.Autostart)
	p.SetBool(prefStartHidden, s.StartHidden)
	p.SetString(prefTraffic, s.Traffic)
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

// SetAutostart writes (enabled) or removes the XDG autostart entry that
// starts exe at login, hidden in the tray when hidden is set.
func SetAutostart(enabled, hidden bool, exe string) error {
	path, err := autostartPath()
	if err != nil {
		return err
	}
	if !enabled {
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("remove autostart entry: %w", err)
		}
		return nil
	}
	cmd := quoteExec(exe)
	if hidden {
		cmd += " --hidden"
	}
	content := strings.Join([]string{
		"[Desktop Entry]",
		"Type=Application",
		"Name=ChadThrottle",
		"Comment=Per-application bandwidth limits",
		"Exec=" + cmd,
		"Icon=io.github.chadthrottle",
		"Terminal=false",
		"X-GNOME-Autostart-enabled=true",
		"",
	}, "\n")
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
