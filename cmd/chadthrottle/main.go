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
//
// One instance runs per session: it owns the session-bus name
// io.github.chadthrottle; launching ChadThrottle again shows its window
// (a --hidden launch changes nothing) and exits 0. A window for another
// machine (--host) is an instance of its own.
//
// Hidden in the tray (--hidden, the "start hidden" setting, or the window
// closed to the tray) it runs the tray icon and its menu only, with no
// connection to the display: next to no CPU and about 26 MB. Showing the
// window starts the program again in the same process (same pid), and so
// does closing the window to the tray; the icon is registered again then.
package main

// (The tray-only mode is gui.RunTray, the switch reexec.go.)

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

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
	resume := takeHandover() // reexec.go: what the previous mode of this process handed over
	next := run(*bus, *host, *hidden || resume.Next == gui.NextTray, resume)
	if next.Next != gui.NextQuit {
		reexec(*bus, *host, next) // does not return
	}
}

// run runs ChadThrottle until it quits or hands over to its other mode:
// the tray only (no Fyne driver: gui.RunTray) or the window (gui.Run).
func run(bus, host string, hidden bool, resume gui.Handover) gui.Handover {
	// the session bus: single instance, notifications, tray host
	session, err := sessionBus(5 * time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chadthrottle: no session bus, so no single instance and no notifications:", err)
	}
	var activate <-chan struct{}
	if session != nil && host == "" {
		activate, err = claimInstance(session, AppID, hidden)
		switch {
		case errors.Is(err, errRunning):
			if !hidden {
				fmt.Fprintln(os.Stderr, "chadthrottle: already running in this session: showed its window")
			}
			os.Exit(0)
		case err != nil: // better a second window than none
			fmt.Fprintln(os.Stderr, "chadthrottle: starting anyway:", err)
		}
	}
	var notify gui.Notifier
	if session != nil {
		notify = &notifier{conn: session}
	}

	backend, closeBackend, err := newBackend(bus, host)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chadthrottle:", err)
		os.Exit(1)
	}
	defer closeBackend()
	if resume.Next != gui.NextQuit && resume.Host != host { // the window had switched to another machine
		if sw := switcher(backend); sw != nil && sw(resume.Host) == nil {
			host = resume.Host
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer startProfile()()

	// Widgets are touched only in fyne.Do (gui's rule), so Fyne may skip
	// its per-call thread checks, which cost a stack trace each.
	app.SetMetadata(fyne.AppMetadata{ID: AppID, Name: "ChadThrottle", Version: api.Version,
		Migrations: map[string]bool{"fyneDo": true}})
	a := app.NewWithID(AppID) // starts nothing: Fyne's driver runs in gui.Run only
	a.SetIcon(assets.AppIconPNG)
	exe, _ := os.Executable()
	tray := gui.NewSystray("ChadThrottle")
	opts := gui.Options{
		Hidden:         hidden,
		TrayAvailable:  trayAvailable,
		TrayOpened:     tray.Opened(),
		Tray:           tray,
		Activate:       activate,
		Notifier:       notify,
		Executable:     exe,
		Host:           host,
		SwitchHost:     switcher(backend),
		OpenStatistics: openStatsHook(),
		TrayHandOver:   true,
		Resume:         resume,
	}
	if gui.StartsInTray(a, opts) {
		return gui.RunTray(ctx, a, tray, backend, opts)
	}
	return gui.Run(ctx, a, backend, opts)
}
