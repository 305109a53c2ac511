package gui

import (
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/theme"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// TestScreens renders the window in its main states with Fyne's software
// painter and saves PNGs as test artifacts (go test -artifacts keeps
// them), so a person can look at every state without a display.
func TestScreens(t *testing.T) {
	apps := testApps()
	apps[1].Limit = api.Limit{Down: 1_000_000, Traffic: api.TrafficAll}
	fx := newFixture(t, apps)
	fx.app.Settings().SetTheme(theme.DefaultTheme())
	fx.ui.win.Resize(fyne.NewSize(1240, 780))
	save := func(name string) {
		t.Helper()
		fx.drain()
		// The desktop driver lays out again each frame when a text's
		// size changed; the test canvas does not.
		fx.ui.root.Refresh()
		img := fx.ui.win.Canvas().Capture()
		if !varied(img) {
			t.Errorf("%s: the capture is one flat colour", name)
		}
		path := filepath.Join(t.ArtifactDir(), name+".png")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := png.Encode(f, img); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %s", name, path)
	}
	fx.ui.apps.list.Select(fx.ui.view.index("1000:/usr/bin/firefox"))
	fx.poll()
	save("connected")

	fx.app.Settings().SetTheme(theme.LightTheme()) //nolint:staticcheck // the light variant, as a desktop in light mode gives it
	fx.poll()
	save("connected-light")
	fx.app.Settings().SetTheme(theme.DefaultTheme())
	fx.poll()

	fx.ui.opts.SwitchHost = func(string) error { return nil }
	addRecentHost(fx.app.Preferences(), "admin@nas.lan")
	addRecentHost(fx.app.Preferences(), "root@router:2222")
	fx.ui.showSettings()
	save("settings")
	fx.ui.win.Canvas().Overlays().Top().Hide()
	fx.ui.win.Canvas().Overlays().Remove(fx.ui.win.Canvas().Overlays().Top())
	fx.ui.showLimitDialog(apps[0])
	save("custom-limit")
	fx.ui.win.Canvas().Overlays().Remove(fx.ui.win.Canvas().Overlays().Top())

	fx.fake.SetStatus(api.Status{Version: "1", Monitor: "ebpf", Upload: "tc_htb", DownloadReason: "IFB devices cannot be created here"})
	fx.fake.SetPermissions(api.Permissions{Monitor: api.PermYes, LimitOwn: api.PermNo, Manage: api.PermNo})
	fx.ui.needStatus.Store(true)
	fx.poll()
	save("degraded-readonly")

	fx.fake.SetReadError(fmt.Errorf("%w: no owner", ErrHelperMissing))
	fx.poll()
	save("helper-missing")

	fx.ui.switchHost("admin@nas.lan")
	fx.fake.SetReadError(nil)
	fx.fake.SetPermissions(api.Permissions{Monitor: api.PermYes, LimitOwn: api.PermYes, Manage: api.PermAuth})
	fx.fake.SetStatus(api.Status{Version: "1", Monitor: "ebpf", Upload: "ebpf_cgroup", Download: "ebpf_cgroup", Interfaces: "enp3s0"})
	fx.poll()
	save("remote-connected")
	fx.fake.SetReadError(fmt.Errorf("%w: cannot connect to admin@nas.lan: the SSH login was refused (admin@nas.lan: Permission denied (publickey).)", ErrUnreachable))
	fx.poll()
	save("remote-unreachable")
	fx.fake.SetReadError(fmt.Errorf("%w: polkit", ErrNotAuthorized))
	fx.poll()
	save("remote-unauthorized")
}

// varied reports whether an image has more than one colour.
func varied(img image.Image) bool {
	b := img.Bounds()
	first := img.At(b.Min.X, b.Min.Y)
	r0, g0, b0, _ := first.RGBA()
	for y := b.Min.Y; y < b.Max.Y; y += 7 {
		for x := b.Min.X; x < b.Max.X; x += 7 {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r != r0 || g != g0 || bl != b0 {
				return true
			}
		}
	}
	return false
}
