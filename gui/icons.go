package gui

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"fyne.io/fyne/v2"

	"github.com/chadthrottle/chadthrottle/assets"
)

// iconCache resolves api.App.Icon values (an icon name from a .desktop file
// or an absolute path) to resources once per name; misses are remembered
// too. Safe for concurrent use; lookups read files, so call resolve off the
// UI goroutine.
type iconCache struct {
	mu   sync.Mutex
	m    map[string]fyne.Resource
	dirs []string // icon theme base dirs, most specific first
}

func newIconCache() *iconCache {
	return &iconCache{m: map[string]fyne.Resource{}, dirs: iconBaseDirs()}
}

// iconBaseDirs lists $XDG_DATA_HOME/icons, ~/.icons, $XDG_DATA_DIRS/icons
// and /usr/share/pixmaps, as the icon theme spec orders them.
func iconBaseDirs() []string {
	var dirs []string
	home, _ := os.UserHomeDir()
	dataHome := os.Getenv("XDG_DATA_HOME")
	if dataHome == "" && home != "" {
		dataHome = filepath.Join(home, ".local", "share")
	}
	if dataHome != "" {
		dirs = append(dirs, filepath.Join(dataHome, "icons"))
	}
	if home != "" {
		dirs = append(dirs, filepath.Join(home, ".icons"))
	}
	dataDirs := os.Getenv("XDG_DATA_DIRS")
	if dataDirs == "" {
		dataDirs = "/usr/local/share:/usr/share"
	}
	for _, d := range strings.Split(dataDirs, ":") {
		if d != "" {
			dirs = append(dirs, filepath.Join(d, "icons"))
		}
	}
	return dirs
}

// Sizes tried in the hicolor theme (and the common default themes), best
// for a 32 px row first.
var iconSizes = []string{"48x48", "64x64", "32x32", "scalable", "128x128", "256x256", "96x96", "24x24", "512x512", "22x22", "16x16"}

var iconThemes = []string{"hicolor", "Adwaita", "breeze", "Papirus"}

// resolve returns the resource for an icon name or path, or the generic
// app icon.
func (c *iconCache) resolve(icon string) fyne.Resource {
	if icon == "" {
		return assets.GenericAppIcon
	}
	c.mu.Lock()
	r, ok := c.m[icon]
	c.mu.Unlock()
	if ok {
		return r
	}
	r = c.lookup(icon)
	if r == nil {
		r = assets.GenericAppIcon
	}
	c.mu.Lock()
	c.m[icon] = r
	c.mu.Unlock()
	return r
}

func (c *iconCache) lookup(icon string) fyne.Resource {
	if filepath.IsAbs(icon) {
		return loadIcon(icon)
	}
	if strings.ContainsAny(icon, "/\\") || icon == "." || icon == ".." {
		return nil
	}
	for _, base := range c.dirs {
		for _, th := range iconThemes {
			for _, size := range iconSizes {
				dir := filepath.Join(base, th, size, "apps")
				for _, ext := range []string{".png", ".svg"} {
					if r := loadIcon(filepath.Join(dir, icon+ext)); r != nil {
						return r
					}
				}
			}
		}
	}
	for _, ext := range []string{".png", ".svg"} { // Fyne cannot draw XPM
		if r := loadIcon(filepath.Join("/usr/share/pixmaps", icon+ext)); r != nil {
			return r
		}
	}
	return nil
}

// loadIcon reads a PNG or SVG file of sane size, or returns nil.
func loadIcon(path string) fyne.Resource {
	ext := strings.ToLower(filepath.Ext(path))
	if ext != ".png" && ext != ".svg" {
		return nil
	}
	// Icon= comes from other users' .desktop files too: never block on a
	// FIFO put there (O_NONBLOCK, then fstat), never read more than 2 MiB.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() == 0 || st.Size() > 2<<20 {
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(f, 2<<20))
	if err != nil {
		return nil
	}
	return fyne.NewStaticResource(filepath.Base(path), b)
}
