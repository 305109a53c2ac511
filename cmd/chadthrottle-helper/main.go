// Command chadthrottle-helper is ChadThrottle's root daemon: it hosts the
// monitor and throttle backends and serves clients on D-Bus as
// io.github.chadthrottle.Helper1, authorizing every call with polkit.
//
//	chadthrottle-helper [--bus system|session|ADDRESS] [--interface IFACE]
//	    [--monitor NAME] [--upload NAME] [--download NAME|none]
//	    [--state-dir DIR] [--idle-exit DURATION] [--user-call-rate N] [--list-backends]
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/daemon/server"
)

func main() {
	var cfg config
	flag.StringVar(&cfg.bus, "bus", "system", "bus to serve on: system, session or a D-Bus address")
	flag.Func("interface", "interface to shape (repeatable or a comma list; default: the default-route interfaces)", func(s string) error {
		for _, f := range strings.Split(s, ",") {
			if f = strings.TrimSpace(f); f != "" {
				cfg.interfaces = append(cfg.interfaces, f)
			}
		}
		return nil
	})
	flag.StringVar(&cfg.monitor, "monitor", "auto", "monitor backend name, or auto")
	flag.StringVar(&cfg.upload, "upload", "auto", "upload throttle backend name, or auto")
	flag.StringVar(&cfg.download, "download", "auto", "download throttle backend name, auto, or none")
	flag.StringVar(&cfg.stateDir, "state-dir", api.StateDir, "directory of the persisted rules and the traffic history database (history.db)")
	flag.StringVar(&cfg.runDir, "run-dir", api.RuntimeDir, "directory of the instance lock and cgroup origins")
	flag.DurationVar(&cfg.idleExit, "idle-exit", 0, "exit after this long with no limits and no client calls (0: never; for D-Bus activation)")
	flag.StringVar(&cfg.netns, "netns", "", "network namespace (path, e.g. /run/netns/NAME) to shape and monitor; empty: the helper's own")
	flag.StringVar(&cfg.placement, "placement", "auto", "how limits find their processes: auto, socket_tags (tag sockets in the kernel, nobody moves) or cgroup (move a limited process into a child cgroup of its own cgroup, inside its systemd unit; the fallback)")
	flag.StringVar(&cfg.tag, "tag", "", "suffix for kernel object names (parallel test instances); empty in production")
	flag.Float64Var(&cfg.callRate, "user-call-rate", server.DefaultCallRate, "D-Bus calls per second one user (not root) may make; more get io.github.chadthrottle.Error.TooManyCalls")
	list := flag.Bool("list-backends", false, "print every compiled backend (kind, name, priority, available, reason) and exit")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "chadthrottle-helper: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}
	if *list {
		listBackends(os.Stdout, cfg.options())
		return
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := serve(ctx, cfg, log); err != nil {
		log.Error("chadthrottle-helper failed", "err", err)
		stop()
		os.Exit(1)
	}
}

// config is the helper's command line.
type config struct {
	bus                       string
	interfaces                []string
	monitor, upload, download string
	stateDir, runDir          string
	idleExit                  time.Duration
	netns                     string
	tag                       string
	placement                 string // auto, socket_tags or cgroup
	callRate                  float64
}
