package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/client"
)

// helper is what the commands need of *client.Client.
type helper interface {
	Backends(ctx context.Context) ([]api.Backend, error)
	Apps(ctx context.Context) (api.Snapshot, error)
	Rules(ctx context.Context) ([]api.Rule, error)
	SetAppLimit(ctx context.Context, exe string, uid uint32, l api.Limit) error
	RemoveAppLimit(ctx context.Context, exe string, uid uint32) error
	SetProcessLimit(ctx context.Context, pid int32, l api.Limit) error
	RemoveProcessLimit(ctx context.Context, pid int32) error
	// CallerUID is the uid the helper's bus knows us by (the login user
	// on a remote host).
	CallerUID(ctx context.Context) (uint32, error)
	Close() error
}

// target is where the helper is: a bus here, or a bus on a remote host
// reached over ssh.
type target struct {
	bus  string
	host string // [USER@]HOST[:PORT], "" for this machine
}

func connect(t target) (helper, error) { return client.ConnectHost(t.host, t.bus) }

const usage = `usage: chadthrottlectl [--bus system|session|ADDRESS] [-H|--host [USER@]HOST[:PORT]] COMMAND

  -H, --host [USER@]HOST[:PORT]
                          manage HOST's helper over SSH: runs 'ssh -xT [-p PORT] [USER@]HOST
                          systemd-stdio-bridge' (the ssh in PATH with your ssh config, keys and
                          agent); --bus then names the bus on HOST. polkit on HOST decides as
                          for a caller in no active session (see docs/packaging.md)
  --bus and -H/--host may also follow the command.

commands:
  backends [--json]       every compiled backend: kind, name, priority, available, active, reason
  top [--json]            one snapshot of apps and their traffic
  limit (--pid N | --app EXE) [--down RATE] [--up RATE] [--traffic all|internet|local] [--uid N]
                          limit a process (and its children) or an app; --app is a rule
                          that persists and applies to future processes of EXE for your
                          user (or --uid N); a direction not given is unlimited
  unlimit (--pid N | --app EXE) [--uid N]
  rules [--json]          the persisted per-app rules

RATE: 500KB/s, 1.5MB/s (x1000), 1MiB/s (x1024), 8Mbit/s, kbit, Gbit; a bare number is
bytes/s; 0 or none is unlimited.
`

// errUsage marks command-line mistakes (exit status 2).
var errUsage = errors.New("usage")

func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

// run executes one command line and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, dial func(target) (helper, error)) int {
	err := dispatch(ctx, args, stdout, dial)
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "chadthrottlectl: %s\n", api.Printable(explain(err)))
	if errors.Is(err, errUsage) {
		fmt.Fprint(stderr, "run 'chadthrottlectl --help' for usage\n")
		return 2
	}
	return 1
}

// globalFlags adds --bus and -H/--host to fs (they may come before or after
// the command).
func globalFlags(fs *flag.FlagSet, t *target) {
	fs.StringVar(&t.bus, "bus", t.bus, "bus: system, session or a D-Bus address")
	fs.StringVar(&t.host, "host", t.host, "remote host [USER@]HOST[:PORT] reached over ssh")
	fs.StringVar(&t.host, "H", t.host, "short for --host")
}

// explain turns errors into one clear line.
func explain(err error) string {
	msg := strings.TrimPrefix(err.Error(), "usage: ")
	switch {
	case errors.Is(err, client.ErrNotAuthorized):
		return "not authorized: " + msg
	case errors.Is(err, client.ErrInvalidArgument):
		return "invalid argument: " + msg
	case errors.Is(err, client.ErrNotFound):
		return "not found: " + msg
	case errors.Is(err, client.ErrUnavailable):
		return "unavailable: " + msg
	case errors.Is(err, client.ErrQuotaExceeded):
		return "quota exceeded: " + msg
	case errors.Is(err, client.ErrTooManyCalls):
		return "too many calls: " + msg
	}
	return msg
}

func dispatch(ctx context.Context, args []string, stdout io.Writer, dial func(target) (helper, error)) error {
	global := flag.NewFlagSet("chadthrottlectl", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	tg := target{bus: "system"}
	globalFlags(global, &tg)
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageErr("%v", err)
	}
	rest := global.Args()
	if len(rest) == 0 {
		return usageErr("no command given (backends, top, limit, unlimit, rules)")
	}
	cmd, cargs := rest[0], rest[1:]
	if cmd == "help" {
		return flag.ErrHelp
	}
	var c *command
	for i := range commands {
		if commands[i].name == cmd {
			c = &commands[i]
		}
	}
	if c == nil {
		return usageErr("unknown command %q (backends, top, limit, unlimit, rules)", cmd)
	}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o := c.flags(fs)
	globalFlags(fs, &tg)
	if err := fs.Parse(cargs); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageErr("%s: %v", cmd, err)
	}
	if fs.NArg() > 0 {
		return usageErr("%s: unexpected argument %q", cmd, fs.Arg(0))
	}
	if tg.host != "" {
		if _, err := client.ParseHost(tg.host); err != nil {
			return usageErr("--host: %v", err)
		}
	}
	o.host = tg.host
	if err := o.check(); err != nil {
		return err
	}
	h, err := dial(tg)
	if err != nil {
		return err
	}
	defer h.Close()
	return c.run(ctx, h, o, stdout)
}

// opts holds every command's flags.
type opts struct {
	json      bool
	pid       int
	app       string
	down, up  string
	traffic   string
	uid       int64
	needLimit bool
	needTarg  bool
	host      string // remote host, "" here
	seen      map[string]bool
	fs        *flag.FlagSet

	limit api.Limit
}

func (o *opts) check() error {
	o.seen = map[string]bool{}
	o.fs.Visit(func(f *flag.Flag) { o.seen[f.Name] = true })
	if o.needTarg {
		switch {
		case o.seen["pid"] == o.seen["app"]:
			return usageErr("%s: give exactly one of --pid N or --app EXE", o.fs.Name())
		case o.seen["pid"] && (o.pid <= 0 || o.pid > 1<<31-1):
			return usageErr("%s: --pid %d is not a process id", o.fs.Name(), o.pid)
		case o.seen["app"] && o.app == "":
			return usageErr("%s: --app needs an executable", o.fs.Name())
		case o.seen["uid"] && !o.seen["app"]:
			return usageErr("%s: --uid goes with --app", o.fs.Name())
		case o.seen["uid"] && (o.uid < 0 || o.uid > 0xfffffffe):
			return usageErr("%s: --uid %d is out of range", o.fs.Name(), o.uid)
		}
	}
	if o.needLimit {
		if !o.seen["down"] && !o.seen["up"] {
			return usageErr("limit: give --down RATE and/or --up RATE (0 or none = unlimited)")
		}
		var err error
		if o.seen["down"] {
			if o.limit.Down, err = api.ParseRate(o.down); err != nil {
				return usageErr("--down: %v", err)
			}
		}
		if o.seen["up"] {
			if o.limit.Up, err = api.ParseRate(o.up); err != nil {
				return usageErr("--up: %v", err)
			}
		}
		switch o.traffic {
		case api.TrafficAll, api.TrafficInternet, api.TrafficLocal:
		default:
			return usageErr("--traffic %q: want all, internet or local", o.traffic)
		}
		o.limit.Traffic = o.traffic
	}
	return nil
}

type command struct {
	name  string
	flags func(fs *flag.FlagSet) *opts
	run   func(ctx context.Context, h helper, o *opts, w io.Writer) error
}

func jsonFlag(fs *flag.FlagSet) *opts {
	o := &opts{fs: fs}
	fs.BoolVar(&o.json, "json", false, "print JSON")
	return o
}

func targetFlags(fs *flag.FlagSet) *opts {
	o := &opts{fs: fs, needTarg: true}
	fs.IntVar(&o.pid, "pid", 0, "process id")
	fs.StringVar(&o.app, "app", "", "executable (a rule)")
	fs.Int64Var(&o.uid, "uid", int64(os.Getuid()), "uid of the app rule (default: yours)")
	return o
}

var commands = []command{
	{"backends", jsonFlag, cmdBackends},
	{"top", jsonFlag, cmdTop},
	{"rules", jsonFlag, cmdRules},
	{"limit", func(fs *flag.FlagSet) *opts {
		o := targetFlags(fs)
		o.needLimit = true
		fs.StringVar(&o.down, "down", "", "download RATE")
		fs.StringVar(&o.up, "up", "", "upload RATE")
		fs.StringVar(&o.traffic, "traffic", api.TrafficAll, "all, internet or local")
		return o
	}, cmdLimit},
	{"unlimit", targetFlags, cmdUnlimit},
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func cmdBackends(ctx context.Context, h helper, o *opts, w io.Writer) error {
	bs, err := h.Backends(ctx)
	if err != nil {
		return err
	}
	if o.json {
		type backend struct {
			Kind      string `json:"kind"`
			Name      string `json:"name"`
			Priority  int32  `json:"priority"`
			Available bool   `json:"available"`
			Active    bool   `json:"active"`
			Reason    string `json:"reason"`
		}
		out := struct {
			Backends []backend `json:"backends"`
		}{Backends: []backend{}}
		for _, b := range bs {
			out.Backends = append(out.Backends, backend(b))
		}
		return writeJSON(w, out)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tNAME\tPRIORITY\tAVAILABLE\tACTIVE\tREASON")
	for _, b := range bs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", b.Kind, b.Name, b.Priority, yesNo(b.Available), yesNo(b.Active), api.Printable(b.Reason))
	}
	return tw.Flush()
}

// topApp is one app in `top --json`, exactly the contract's keys.
type topApp struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Exe     string   `json:"exe"`
	PIDs    []int32  `json:"pids"`
	RxRate  uint64   `json:"rx_rate"`
	TxRate  uint64   `json:"tx_rate"`
	RxBytes uint64   `json:"rx_bytes"`
	TxBytes uint64   `json:"tx_bytes"`
	Limit   topLimit `json:"limit"`
}

type topLimit struct {
	Down uint64 `json:"down"`
	Up   uint64 `json:"up"`
}

func cmdTop(ctx context.Context, h helper, o *opts, w io.Writer) error {
	snap, err := h.Apps(ctx)
	if err != nil {
		return err
	}
	apps := append([]api.App(nil), snap.Apps...)
	sort.SliceStable(apps, func(i, j int) bool {
		a, b := apps[i].RxRate+apps[i].TxRate, apps[j].RxRate+apps[j].TxRate
		if a != b {
			return a > b
		}
		return apps[i].RxBytes+apps[i].TxBytes > apps[j].RxBytes+apps[j].TxBytes
	})
	if o.json {
		out := struct {
			Apps []topApp `json:"apps"`
		}{Apps: []topApp{}}
		for _, a := range apps {
			pids := a.PIDs
			if pids == nil {
				pids = []int32{}
			}
			out.Apps = append(out.Apps, topApp{a.ID, a.Name, a.Exe, pids, a.RxRate, a.TxRate, a.RxBytes, a.TxBytes,
				topLimit{a.Limit.Down, a.Limit.Up}})
		}
		return writeJSON(w, out)
	}
	fmt.Fprintf(w, "total: down %s, up %s (unattributed %s); since start: down %s, up %s\n",
		api.FormatRate(snap.RxRate), api.FormatRate(snap.TxRate), api.FormatRate(snap.UnknownRate),
		api.FormatBytes(snap.RxBytes), api.FormatBytes(snap.TxBytes))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tUSER\tPIDS\tDOWN\tUP\tTOTAL DOWN\tTOTAL UP\tLIMIT DOWN\tLIMIT UP")
	for _, a := range apps {
		rate := func(r uint64) string {
			if r == 0 {
				return "0"
			}
			return api.FormatRate(r)
		}
		lim := func(r uint64) string {
			if r == 0 {
				return "-"
			}
			s := api.FormatRate(r)
			if a.Rule {
				s += " (rule)"
			}
			return s
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", appLabel(a), userLabel(a), pidList(a.PIDs),
			rate(a.RxRate), rate(a.TxRate), api.FormatBytes(a.RxBytes), api.FormatBytes(a.TxBytes),
			lim(a.Limit.Down), lim(a.Limit.Up))
	}
	return tw.Flush()
}

// appLabel and the other text output pass what processes and .desktop
// files of other users chose through api.Printable: a name cannot write
// terminal escapes.
func appLabel(a api.App) string {
	name := a.Name
	if name == "" {
		name = filepath.Base(a.Exe)
	}
	if a.Exe != "" && name != a.Exe {
		return api.Printable(name + " (" + a.Exe + ")")
	}
	return api.Printable(name)
}

func userLabel(a api.App) string {
	if a.User != "" {
		return api.Printable(a.User)
	}
	return strconv.FormatUint(uint64(a.UID), 10)
}

func pidList(pids []int32) string {
	if len(pids) == 0 {
		return "-"
	}
	var b strings.Builder
	for i, p := range pids {
		if i == 4 {
			fmt.Fprintf(&b, ",+%d", len(pids)-4)
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(p)))
	}
	return b.String()
}

func cmdRules(ctx context.Context, h helper, o *opts, w io.Writer) error {
	rs, err := h.Rules(ctx)
	if err != nil {
		return err
	}
	if o.json {
		if rs == nil {
			rs = []api.Rule{}
		}
		return writeJSON(w, struct {
			Rules []api.Rule `json:"rules"`
		}{rs})
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EXE\tUID\tDOWN\tUP\tTRAFFIC")
	for _, r := range rs {
		traffic := r.Limit.Traffic
		if traffic == "" {
			traffic = api.TrafficAll
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", api.Printable(r.Exe), r.UID, api.FormatRate(r.Limit.Down), api.FormatRate(r.Limit.Up), traffic)
	}
	return tw.Flush()
}

// resolveExe turns EXE into the path the helper sees in /proc/PID/exe: a
// bare name is looked up in PATH, symlinks are resolved. A path that does
// not exist here is kept as given (a rule for a program not installed yet).
//
// On a remote host nothing can be looked up here: EXE must be the full path
// there, taken as given.
func resolveExe(exe, host string) (string, error) {
	if host != "" {
		if !strings.HasPrefix(exe, "/") {
			return "", usageErr("--app %q: on a remote host give the full path of the executable there", exe)
		}
		return filepath.Clean(exe), nil
	}
	if !strings.Contains(exe, "/") {
		p, err := exec.LookPath(exe)
		if err != nil {
			return "", usageErr("--app %q: not found in PATH; give the full path of the executable", exe)
		}
		exe = p
	}
	abs, err := filepath.Abs(exe)
	if err != nil {
		return "", usageErr("--app %q: %v", exe, err)
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	return abs, nil
}

func cmdLimit(ctx context.Context, h helper, o *opts, w io.Writer) error {
	if o.limit.Down == 0 && o.limit.Up == 0 {
		return cmdUnlimit(ctx, h, o, w)
	}
	if o.seen["pid"] {
		if err := h.SetProcessLimit(ctx, int32(o.pid), o.limit); err != nil {
			return err
		}
		fmt.Fprintf(w, "limited process %d: %s\n", o.pid, describe(o.limit))
		return nil
	}
	exe, err := resolveExe(o.app, o.host)
	if err != nil {
		return err
	}
	if err := o.remoteUID(ctx, h); err != nil {
		return err
	}
	if err := h.SetAppLimit(ctx, exe, uint32(o.uid), o.limit); err != nil {
		return err
	}
	fmt.Fprintf(w, "rule set for %s (uid %d): %s\n", api.Printable(exe), o.uid, describe(o.limit))
	return nil
}

// remoteUID makes the default --uid of a remote host's app rule the login
// user's there (uids differ between machines).
func (o *opts) remoteUID(ctx context.Context, h helper) error {
	if o.host == "" || o.seen["uid"] {
		return nil
	}
	uid, err := h.CallerUID(ctx)
	if err != nil {
		return err
	}
	o.uid = int64(uid)
	return nil
}

func describe(l api.Limit) string {
	s := fmt.Sprintf("down %s, up %s", api.FormatRate(l.Down), api.FormatRate(l.Up))
	if l.Traffic != "" && l.Traffic != api.TrafficAll {
		s += ", " + l.Traffic + " traffic only"
	}
	return s
}

func cmdUnlimit(ctx context.Context, h helper, o *opts, w io.Writer) error {
	if o.seen["pid"] {
		if err := h.RemoveProcessLimit(ctx, int32(o.pid)); err != nil {
			return err
		}
		fmt.Fprintf(w, "removed the limit of process %d\n", o.pid)
		return nil
	}
	exe, err := resolveExe(o.app, o.host)
	if err != nil {
		return err
	}
	if err := o.remoteUID(ctx, h); err != nil {
		return err
	}
	if err := h.RemoveAppLimit(ctx, exe, uint32(o.uid)); err != nil {
		return err
	}
	fmt.Fprintf(w, "removed the rule for %s (uid %d)\n", api.Printable(exe), o.uid)
	return nil
}
