package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/client"
	"github.com/chadthrottle/chadthrottle/helper/daemon/engine"
	"github.com/chadthrottle/chadthrottle/helper/daemon/polkit"
	"github.com/chadthrottle/chadthrottle/helper/daemon/rules"
	"github.com/chadthrottle/chadthrottle/helper/daemon/server"
)

func (c config) options() backends.Options {
	return backends.Options{Interfaces: c.interfaces, NetNS: c.netns, Tag: c.tag}
}

// serve runs the helper until ctx is done (SIGTERM/SIGINT), the bus goes
// away, or it has been idle for cfg.idleExit. On the way out every limit is
// removed and processes move back to their cgroups.
func serve(ctx context.Context, cfg config, log *slog.Logger) error {
	if os.Geteuid() != 0 {
		log.Warn("not running as root: throttling will fail", "euid", os.Geteuid())
	}
	conn, err := client.Dial(cfg.bus)
	if err != nil {
		return err
	}
	defer conn.Close()
	// One instance per tag touches the kernel: a second one started by the
	// bus while the first is still cleaning up waits here, and one started
	// by hand next to a running helper gives up.
	if taken, err := nameTaken(conn); err != nil {
		return err
	} else if taken {
		return fmt.Errorf("%s is already owned on the bus: another helper is running", api.BusName)
	}
	unlock, err := lockInstance(ctx, filepath.Join(cfg.runDir, lockName(cfg.tag)), 30*time.Second)
	if err != nil {
		return err
	}
	defer unlock()

	feed := &usageFeed{}
	eng, err := build(cfg, log, feed.add)
	if err != nil {
		return err
	}
	defer func() {
		if err := eng.Close(); err != nil {
			log.Error("clean up kernel state", "err", err)
		} else {
			log.Info("removed all limits and kernel state")
		}
	}()
	hist := openHistory(cfg, log, eng, feed)
	defer hist.close()

	auth, err := authority(conn, cfg.bus)
	if err != nil {
		return err
	}
	defer auth.Close()
	srv, err := server.New(server.Config{
		Conn: conn, Engine: eng, History: hist.server(), Auth: auth, Log: log, CallRate: cfg.callRate,
	})
	if err != nil {
		return err
	}
	if err := srv.Export(); err != nil {
		return err
	}
	defer srv.Close()
	hist.onChange(srv.EmitChanged)
	if err := claimName(conn); err != nil {
		return err
	}
	defer conn.ReleaseName(api.BusName)
	log.Info("serving", "bus", cfg.bus, "name", api.BusName, "status", fmt.Sprintf("%+v", eng.Status(0)))

	return runUntilStopped(ctx, conn, eng, srv, hist, cfg, log)
}

func idleTicker(d time.Duration) <-chan time.Time {
	if d <= 0 {
		return nil
	}
	step := d / 4
	if step < 100*time.Millisecond {
		step = 100 * time.Millisecond
	}
	return time.NewTicker(step).C
}

// build selects the backends and builds the engine (which initialises them:
// leftovers of a killed run are removed, then the rules are re-applied).
func build(cfg config, log *slog.Logger, usage func(time.Time, []engine.AppUsage)) (*engine.Engine, error) {
	opts := cfg.options()
	reg := allBackends()
	mon, err := backends.Select(backends.KindMonitor, reg.Monitors, cfg.monitor, opts)
	if err != nil {
		return nil, fmt.Errorf("select monitor backend: %w", err)
	}
	up, err := backends.Select(backends.KindUpload, reg.Uploads, cfg.upload, opts)
	if err != nil {
		return nil, fmt.Errorf("select upload backend: %w", err)
	}
	var down backends.DownloadThrottleBackend
	var downWhy error
	switch cfg.download {
	case "none":
		downWhy = errors.New("download limiting was turned off (--download none)")
	case "", "auto":
		down, downWhy = backends.Select(backends.KindDownload, reg.Downloads, cfg.download, opts)
		if downWhy != nil {
			log.Warn("download limiting is unavailable", "reason", downWhy)
		}
	default:
		if down, err = backends.Select(backends.KindDownload, reg.Downloads, cfg.download, opts); err != nil {
			return nil, fmt.Errorf("select download backend: %w", err)
		}
	}
	placer := testPlacer(up)
	var blocker backends.Blocker = backends.NewFakeBudgeter() // with fake placement: fake blocks (and budgets) too
	var blockWhy error
	var global backends.GlobalShaper = backends.NewFakeGlobal()
	var globalWhy error
	if placer == nil {
		if global, globalWhy = backends.Select(backends.KindGlobal, reg.Globals, "", opts); globalWhy != nil {
			log.Warn("the global limit is unavailable", "reason", globalWhy)
		}
		if placer, err = placement(cfg.placement, opts, log); err != nil {
			return nil, err
		}
		if blocker, blockWhy = backends.Select(backends.KindBlock, reg.Blockers, "", opts); blockWhy != nil {
			log.Warn("blocking is unavailable", "reason", blockWhy)
		}
	}
	mgr, err := backends.NewManager(up, down, downWhy, placer)
	if err != nil {
		return nil, err
	}
	mgr.SetBlocker(blocker, blockWhy)
	mgr.SetGlobalShaper(global, globalWhy)
	store, err := rules.Open(cfg.stateDir)
	if err != nil {
		return nil, fmt.Errorf("open rules: %w", err)
	}
	eng, err := engine.New(engine.Config{
		Monitor: mon, Manager: mgr, Rules: store,
		Backends:   append(reg.Statuses(opts), placementStatuses(opts)...),
		Interfaces: cfg.interfaces,
		Usage:      usage,
		Log:        log,
	})
	if err != nil {
		return nil, fmt.Errorf("start engine: %w", err)
	}
	return eng, nil
}

func nameTaken(conn *dbus.Conn) (bool, error) {
	var has bool
	if err := conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, api.BusName).Store(&has); err != nil {
		return false, fmt.Errorf("ask the bus about %s: %w", api.BusName, err)
	}
	return has, nil
}

// authority returns polkit on the system bus (or a bus at an address, where
// tests run polkitd); on a session bus, which belongs to one user, that user
// and root are allowed everything.
func authority(conn *dbus.Conn, bus string) (interface {
	server.Authorizer
	Close()
}, error) {
	if bus == "session" {
		return polkit.NewSameUser(conn, uint32(os.Getuid())), nil
	}
	return polkit.New(conn)
}

func lockName(tag string) string {
	if tag == "" {
		return "helper.lock"
	}
	return "helper-" + filepath.Base(tag) + ".lock"
}

// lockInstance takes an exclusive flock on path, waiting up to timeout.
func lockInstance(ctx context.Context, path string, timeout time.Duration) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create run directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open instance lock: %w", err)
	}
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) || ctx.Err() != nil {
			f.Close()
			return nil, fmt.Errorf("instance lock %s: another helper holds it: %w", path, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// claimName takes the helper's bus name; another owner is an error.
func claimName(conn *dbus.Conn) error {
	reply, err := conn.RequestName(api.BusName, dbus.NameFlagDoNotQueue)
	if err != nil {
		return fmt.Errorf("request bus name %s: %w", api.BusName, err)
	}
	if reply != dbus.RequestNameReplyPrimaryOwner {
		return fmt.Errorf("bus name %s is taken (reply %d): another helper is running", api.BusName, reply)
	}
	return nil
}

// runUntilStopped runs the engine until a signal, the loss of the bus, the
// engine's end or, when idle exit is on, a long enough idle time.
func runUntilStopped(ctx context.Context, conn *dbus.Conn, eng *engine.Engine, srv *server.Server, hist *historyService, cfg config, log *slog.Logger) error {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go hist.run(runCtx)
	done := make(chan error, 1)
	go func() { done <- eng.Run(runCtx) }()
	idle := idleTicker(cfg.idleExit)
	for {
		select {
		case <-ctx.Done():
			log.Info("stopping on signal")
			return nil
		case <-conn.Context().Done():
			return errors.New("lost the bus connection")
		case err := <-done:
			if err != nil {
				return fmt.Errorf("engine: %w", err)
			}
			log.Info("engine stopped")
			return nil
		case <-idle:
			if eng.Idle() && hist.idle() && time.Since(srv.LastCall()) >= cfg.idleExit {
				log.Info("exiting: idle with no limits and no clients", "idle", time.Since(srv.LastCall()).Round(time.Second))
				return nil
			}
		}
	}
}
