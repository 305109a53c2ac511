// Command chadthrottle is ChadThrottle's desktop app: a window with one row
// per application (live rates, download and upload sliders) and a tray
// icon with quick limits. It runs as the user and talks to
// chadthrottle-helper over D-Bus.
//
//	chadthrottle [--bus system|session|ADDRESS] [--host [USER@]HOST[:PORT]] [--hidden]
//
// --host manages another machine's helper over SSH (ssh -xT HOST
// systemd-stdio-bridge, as systemctl -H does); --bus then names the bus
// there.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"

	"github.com/chadthrottle/chadthrottle/assets"
	"github.com/chadthrottle/chadthrottle/gui"
	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/client"
)

// AppID is the Fyne app id: preferences live under it, and it matches the
// .desktop file name.
const AppID = "io.github.chadthrottle"

func main() {
	bus := flag.String("bus", "system", "bus of the helper: system, session or a D-Bus address")
	hidden := flag.Bool("hidden", false, "start in the tray without opening the window")
	host := flag.String("host", "", "manage the helper of this machine over SSH: [USER@]HOST[:PORT] (ssh from PATH, your ssh config and agent)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "chadthrottle: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}

	if *host != "" {
		if _, err := client.ParseHost(*host); err != nil {
			fmt.Fprintln(os.Stderr, "chadthrottle: --host:", err)
			os.Exit(2)
		}
	}
	backend, closeBackend, err := newBackend(*bus, *host)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chadthrottle:", err)
		os.Exit(1)
	}
	defer closeBackend()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer startProfile()()

	// Widgets are touched only in fyne.Do (gui's rule), so Fyne may skip
	// its per-call thread checks, which cost a stack trace each.
	app.SetMetadata(fyne.AppMetadata{ID: AppID, Name: "ChadThrottle", Version: api.Version,
		Migrations: map[string]bool{"fyneDo": true}})
	a := app.NewWithID(AppID)
	a.SetIcon(assets.AppIconPNG)
	exe, _ := os.Executable()
	gui.Run(ctx, a, backend, gui.Options{
		Hidden:        *hidden,
		TrayAvailable: trayAvailable,
		Executable:    exe,
		Host:          *host,
		SwitchHost:    switcher(backend),
	})
}
