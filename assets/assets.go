// Package assets holds ChadThrottle's icons: the app icon as SVG with PNG
// sizes generated from it (packaging installs them into the hicolor theme),
// the tray icons (normal and "limits active", PNG because tray hosts handle
// PNG best) and a generic icon for apps without one. All are embedded.
package assets

import (
	_ "embed"

	"fyne.io/fyne/v2"
)

var (
	//go:embed icons/io.github.chadthrottle.svg
	appIconSVG []byte
	//go:embed icons/hicolor/256x256/apps/io.github.chadthrottle.png
	appIconPNG []byte
	//go:embed tray/normal.png
	trayNormalPNG []byte
	//go:embed tray/limited.png
	trayLimitedPNG []byte
	//go:embed generic-app.svg
	genericAppSVG []byte
)

// Resources; each is a fresh static resource over the embedded bytes.
var (
	// AppIcon is the application icon (SVG).
	AppIcon = fyne.NewStaticResource("io.github.chadthrottle.svg", appIconSVG)
	// AppIconPNG is the application icon as a 256×256 PNG (window icon).
	AppIconPNG = fyne.NewStaticResource("io.github.chadthrottle.png", appIconPNG)
	// TrayIcon is the tray icon when no limit is active.
	TrayIcon = fyne.NewStaticResource("chadthrottle-tray.png", trayNormalPNG)
	// TrayLimitedIcon is the tray icon while limits are active.
	TrayLimitedIcon = fyne.NewStaticResource("chadthrottle-tray-limited.png", trayLimitedPNG)
	// GenericAppIcon stands in for apps whose .desktop file names no icon.
	GenericAppIcon = fyne.NewStaticResource("generic-app.svg", genericAppSVG)
)
