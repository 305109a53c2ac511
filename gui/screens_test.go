package gui

import (
	"fmt"
	"image"
	"image/png"
	"math"
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
	apps[0].Limit = api.Limit{Down: 2_000_000, Up: 500_000, DownTraffic: api.TrafficInternet, UpTraffic: api.TrafficAll}
	fx := newFixture(t, apps)
	fx.app.Settings().SetTheme(theme.DefaultTheme())
	fx.ui.win.Resize(fyne.NewSize(1240, 780))
	save := func(name string) {
		t.Helper()
		fx.drain()
		captureWindow(t, fx, name)
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

// TestMetainfoScreenshot renders the window as a person would see it on an
// ordinary desktop — several everyday apps, one of them limited, their
// processes and connections — for the AppStream screenshot
// (docs/screenshot.png is this artifact, desktop.png).
func TestMetainfoScreenshot(t *testing.T) {
	apps := []api.App{
		{ID: "1000:/usr/lib/firefox/firefox", Name: "Firefox", Exe: "/usr/lib/firefox/firefox", UID: 1000, User: "alex", PIDs: []int32{2211, 2290, 2301, 2317},
			RxRate: 2_400_000, TxRate: 85_000, RxBytes: 1_840_000_000, TxBytes: 96_000_000},
		{ID: "1000:/usr/games/steam", Name: "Steam", Exe: "/usr/games/steam", UID: 1000, User: "alex", PIDs: []int32{3120, 3188},
			RxRate: 4_980_000, TxRate: 41_000, RxBytes: 23_700_000_000, TxBytes: 310_000_000, Limit: api.Limit{Down: 5_000_000, Traffic: api.TrafficInternet}, Rule: true},
		{ID: "1000:/usr/share/spotify/spotify", Name: "Spotify", Exe: "/usr/share/spotify/spotify", UID: 1000, User: "alex", PIDs: []int32{2840},
			RxRate: 320_000, TxRate: 6_000, RxBytes: 412_000_000, TxBytes: 9_000_000},
		{ID: "1000:/usr/bin/transmission-gtk", Name: "Transmission", Exe: "/usr/bin/transmission-gtk", UID: 1000, User: "alex", PIDs: []int32{4001},
			RxRate: 150_000, TxRate: 610_000, RxBytes: 3_100_000_000, TxBytes: 5_600_000_000},
		{ID: "1000:/usr/bin/thunderbird", Name: "Thunderbird", Exe: "/usr/bin/thunderbird", UID: 1000, User: "alex", PIDs: []int32{2550},
			RxRate: 12_000, TxRate: 3_000, RxBytes: 88_000_000, TxBytes: 4_000_000},
		{ID: "1000:/usr/bin/nextcloud", Name: "Nextcloud", Exe: "/usr/bin/nextcloud", UID: 1000, User: "alex", PIDs: []int32{2602}}, // idle: hidden
		{ID: "0:/usr/sbin/cupsd", Name: "cupsd", Exe: "/usr/sbin/cupsd", UID: 0, User: "root", PIDs: []int32{640}},                  // idle: hidden
		{ID: "0:/usr/sbin/chronyd", Name: "chronyd", Exe: "/usr/sbin/chronyd", UID: 0, User: "root", PIDs: []int32{712},
			RxRate: 90, TxRate: 90, RxBytes: 310_000, TxBytes: 305_000},
	}
	fx := newFixture(t, apps)
	fx.app.Settings().SetTheme(theme.DefaultTheme())
	fx.ui.win.Resize(fyne.NewSize(1240, 780))
	fx.fake.SetStatus(api.Status{Version: "0.9.0", Monitor: "ebpf", Upload: "ebpf_cgroup", Download: "ebpf_cgroup", Interfaces: "wlp2s0"})
	fx.ui.needStatus.Store(true)
	var hist []api.Sample
	for i := 0; i < 60; i++ {
		w := float64(i)
		hist = append(hist, api.Sample{RxRate: uint64(4_700_000 + 300_000*math.Sin(w/3)), TxRate: uint64(40_000 + 10_000*math.Cos(w/5))})
	}
	fx.fake.SetDetails(api.AppDetails{
		App: apps[1],
		Processes: []api.Process{
			{PID: 3120, PPID: 1, UID: 1000, Comm: "steam", Cmdline: "/usr/games/steam -silent", RxRate: 4_900_000, TxRate: 38_000, RxBytes: 23_600_000_000, TxBytes: 300_000_000},
			{PID: 3188, PPID: 3120, UID: 1000, Comm: "steamwebhelper", Cmdline: "steamwebhelper -lang=en_US", RxRate: 80_000, TxRate: 3_000, RxBytes: 100_000_000, TxBytes: 10_000_000},
		},
		Connections: []api.Connection{
			{PID: 3120, Proto: "tcp", Local: "192.168.1.23:51234", Remote: "93.184.216.34:443", Traffic: api.TrafficInternet, RxRate: 4_900_000, TxRate: 38_000},
			{PID: 3188, Proto: "tcp", Local: "192.168.1.23:51240", Remote: "151.101.1.69:443", Traffic: api.TrafficInternet, RxRate: 80_000, TxRate: 3_000},
		},
		History: hist,
	})
	for i := 0; i < 40; i++ {
		apps[0].RxRate = uint64(2_000_000 + 600_000*math.Sin(float64(i)/4))
		fx.fake.SetApps(apps)
		fx.poll()
	}
	fx.ui.apps.list.Select(fx.ui.view.index(apps[1].ID))
	fx.poll()
	fx.drain()
	captureWindow(t, fx, "desktop")
	// the narrowest window the layout is made for (issue #17), hide-idle on
	// (the default)
	fx.ui.win.Resize(fyne.NewSize(1024, 700))
	fx.poll()
	captureWindow(t, fx, "desktop-1024")
}

// captureWindow saves the window, rendered by Fyne's software painter, as
// name.png in the test's artifacts (go test -artifacts keeps them).
func captureWindow(t *testing.T, fx *fixture, name string) {
	t.Helper()
	// The desktop driver lays out again each frame when a text's size
	// changed; the test canvas does not.
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
