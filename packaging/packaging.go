// Package packaging describes how ChadThrottle is installed: every file the
// .deb/.rpm (nfpm.yaml) and `make install` (scripts/install.sh) put on the
// system, where each comes from, and the D-Bus and polkit names those files
// carry, taken from helper/api. The files themselves live beside this one
// (dbus/, systemd/, polkit/, desktop/, metainfo/); tests check that they
// mention exactly the names of helper/api and that nfpm.yaml, install.sh and
// the built package install exactly Files.
package packaging

import (
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// AppID is the desktop application ID: the .desktop file, the AppStream
// component and the icon are named after it.
const AppID = "io.github.chadthrottle"

// Installed paths (with PREFIX=/usr) that other files refer to.
const (
	HelperPath = "/usr/libexec/chadthrottle/chadthrottle-helper"
	UnitName   = "chadthrottle-helper.service"
	StateDir   = api.StateDir   // rules; created by the package, removed on purge
	RuntimeDir = api.RuntimeDir // the helper's crash-recovery records
)

// IconSizes are the hicolor PNG sizes shipped besides the scalable SVG
// (assets/icons/hicolor/<N>x<N>/apps/).
var IconSizes = []int{16, 22, 24, 32, 48, 64, 128, 256, 512}

// File is one installed file.
type File struct {
	// Src is the file in the source tree, relative to the repository
	// root; "bin/NAME" is a built binary (make build).
	Src string
	// Dst is the installed path with PREFIX=/usr.
	Dst  string
	Mode fs.FileMode
	// Config marks a configuration file: kept on package removal,
	// deleted on purge.
	Config bool
}

// Dir is a directory the packages own: created on install, removed on
// removal when empty (rpm removes no directory it does not own).
type Dir struct {
	Path string
	Mode fs.FileMode
}

// Dirs lists the directories the packages own besides the parents of Files
// that other packages share.
var Dirs = []Dir{{"/usr/libexec/chadthrottle", 0o755}, {StateDir, 0o700}}

// Files lists every file the packages install, in nfpm.yaml's order.
func Files() []File {
	files := []File{
		{Src: "bin/chadthrottle", Dst: "/usr/bin/chadthrottle", Mode: 0o755},
		{Src: "bin/chadthrottlectl", Dst: "/usr/bin/chadthrottlectl", Mode: 0o755},
		{Src: "bin/chadthrottle-helper", Dst: HelperPath, Mode: 0o755},
		{Src: "packaging/dbus/" + api.BusName + ".conf", Dst: "/usr/share/dbus-1/system.d/" + api.BusName + ".conf", Mode: 0o644},
		{Src: "packaging/dbus/" + api.BusName + ".service", Dst: "/usr/share/dbus-1/system-services/" + api.BusName + ".service", Mode: 0o644},
		{Src: "packaging/systemd/" + UnitName, Dst: "/usr/lib/systemd/system/" + UnitName, Mode: 0o644},
		{Src: "packaging/polkit/" + AppID + ".policy", Dst: "/usr/share/polkit-1/actions/" + AppID + ".policy", Mode: 0o644},
		{Src: "packaging/desktop/" + AppID + ".desktop", Dst: "/usr/share/applications/" + AppID + ".desktop", Mode: 0o644},
		{Src: "packaging/metainfo/" + AppID + ".metainfo.xml", Dst: "/usr/share/metainfo/" + AppID + ".metainfo.xml", Mode: 0o644},
		{Src: "assets/icons/" + AppID + ".svg", Dst: "/usr/share/icons/hicolor/scalable/apps/" + AppID + ".svg", Mode: 0o644},
	}
	for _, n := range IconSizes {
		rel := fmt.Sprintf("%dx%d/apps/%s.png", n, n, AppID)
		files = append(files, File{Src: "assets/icons/hicolor/" + rel, Dst: "/usr/share/icons/hicolor/" + rel, Mode: 0o644})
	}
	files = append(files, Docs...)
	files = append(files, File{Src: "LICENSE", Dst: "/usr/share/doc/chadthrottle/copyright", Mode: 0o644})
	// The autostart entry has the name of the one the window's settings
	// write to ~/.config/autostart, so that one overrides this one.
	return append(files, File{Src: "packaging/autostart/" + AppID + ".desktop",
		Dst: "/etc/xdg/autostart/" + AppID + ".desktop", Mode: 0o644, Config: true})
}

// Docs are the man pages and shell completions, generated from the
// commands' definitions (make generate; cmd/chadthrottlectl
// TestGeneratedFiles keeps them current). zsh's is where Debian's zsh
// looks (vendor-completions).
var Docs = []File{
	{Src: "packaging/man/chadthrottle.1", Dst: "/usr/share/man/man1/chadthrottle.1", Mode: 0o644},
	{Src: "packaging/man/chadthrottlectl.1", Dst: "/usr/share/man/man1/chadthrottlectl.1", Mode: 0o644},
	{Src: "packaging/man/chadthrottle-helper.8", Dst: "/usr/share/man/man8/chadthrottle-helper.8", Mode: 0o644},
	{Src: "packaging/completion/chadthrottlectl.bash", Dst: "/usr/share/bash-completion/completions/chadthrottlectl", Mode: 0o644},
	{Src: "packaging/completion/_chadthrottlectl", Dst: "/usr/share/zsh/vendor-completions/_chadthrottlectl", Mode: 0o644},
	{Src: "packaging/completion/chadthrottlectl.fish", Dst: "/usr/share/fish/vendor_completions.d/chadthrottlectl.fish", Mode: 0o644},
}

// InstallPath is where `make install` puts a file whose package path is
// dst, for a PREFIX and SYSCONFDIR (default /usr and /etc): /usr/… moves
// to prefix and /etc/… to sysconfdir, except for the two files whose
// daemon reads only fixed places — polkit actions stay in
// /usr/share/polkit-1/actions, and the bus policy goes to
// sysconfdir/dbus-1/system.d when prefix is not /usr. D-Bus activation and
// systemd find the rest with prefix /usr or /usr/local.
func InstallPath(dst, prefix, sysconfdir string) string {
	prefix = strings.TrimSuffix(prefix, "/")
	switch {
	case strings.HasPrefix(dst, "/usr/share/polkit-1/"):
		return dst
	case strings.HasPrefix(dst, "/usr/share/dbus-1/system.d/") && prefix != "/usr":
		return path.Join(sysconfdir, "dbus-1/system.d", path.Base(dst))
	case strings.HasPrefix(dst, "/usr/"):
		return prefix + strings.TrimPrefix(dst, "/usr")
	case strings.HasPrefix(dst, "/etc/"):
		return path.Join(sysconfdir, strings.TrimPrefix(dst, "/etc/"))
	}
	return dst
}
