package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/client"
)

// helper is what the commands need of *client.Client.
type helper interface {
	Status(ctx context.Context) (api.Status, error)
	Permissions(ctx context.Context) (api.Permissions, error)
	Backends(ctx context.Context) ([]api.Backend, error)
	Apps(ctx context.Context) (api.Snapshot, error)
	AppDetails(ctx context.Context, appID string) (api.AppDetails, error)
	Rules(ctx context.Context) ([]api.Rule, error)
	SetAppLimit(ctx context.Context, exe string, uid uint32, l api.Limit) error
	RemoveAppLimit(ctx context.Context, exe string, uid uint32) error
	SetProcessLimit(ctx context.Context, pid int32, l api.Limit) error
	RemoveProcessLimit(ctx context.Context, pid int32) error
	SetPaused(ctx context.Context, paused bool) error
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

// Exit statuses (the CLI contract; README and the man page list them).
const (
	exitOK           = 0
	exitFailure      = 1
	exitUsage        = 2
	exitNotAuth      = 3
	exitNotFound     = 4
	exitHelperAbsent = 5
)

// exitCodes documents the exit statuses for --help and the man page.
var exitCodes = []struct {
	code int
	what string
}{
	{exitOK, "success"},
	{exitFailure, "failure (the kernel or the helper refused, a quota or call limit was reached, the operation was cancelled)"},
	{exitUsage, "usage error: unknown command or flag, invalid value (also when the helper rejects an argument as invalid)"},
	{exitNotAuth, "not authorized: polkit refused (or authentication was dismissed)"},
	{exitNotFound, "not found: no such process, app or rule"},
	{exitHelperAbsent, "helper unavailable: the bus, the helper or (with --host) ssh, the remote host or its bus cannot be reached"},
}

// errUsage marks command-line mistakes (exit status 2).
var errUsage = errors.New("usage")

func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

// errNotFound marks a name that matches nothing (exit status 4).
var errNotFound = errors.New("not found")

// errUnreachable marks a helper that cannot be reached (exit status 5).
var errUnreachable = errors.New("helper unreachable")

type unreachable struct{ err error }

func (u unreachable) Error() string        { return u.err.Error() }
func (u unreachable) Is(target error) bool { return target == errUnreachable }
func (u unreachable) Unwrap() error        { return u.err }

// exitCode maps an error to the exit status.
func exitCode(err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errUsage), errors.Is(err, client.ErrInvalidArgument):
		return exitUsage
	case errors.Is(err, client.ErrNotAuthorized):
		return exitNotAuth
	case errors.Is(err, client.ErrNotFound), errors.Is(err, errNotFound):
		return exitNotFound
	case errors.Is(err, errUnreachable), errors.Is(err, client.ErrHelperMissing):
		return exitHelperAbsent
	}
	return exitFailure
}

// run executes one command line and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, dial func(target) (helper, error)) int {
	o, err := parse(args)
	if err == nil && o.help {
		writeHelp(stdout, o.cmd)
		return exitOK
	}
	if err == nil {
		err = execute(ctx, o, stdout, stderr, dial)
	}
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "chadthrottlectl: %s\n", api.Printable(explain(err)))
	code := exitCode(err)
	if errors.Is(err, errUsage) {
		name := "chadthrottlectl"
		if o != nil && o.cmd != nil && findCommand(o.cmd.name) != nil {
			name += " " + o.cmd.name
		}
		fmt.Fprintf(stderr, "run '%s --help' for usage\n", name)
	}
	return code
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

// execute checks what one flag cannot check alone, connects and runs the
// command.
func execute(ctx context.Context, o *opts, stdout, stderr io.Writer, dial func(target) (helper, error)) error {
	c := o.cmd
	if c.check != nil {
		if err := c.check(o); err != nil {
			return err
		}
	}
	cl := &call{ctx: ctx, o: o, w: stdout, ew: stderr}
	if c.local {
		return c.run(cl)
	}
	h, err := dial(target{bus: o.bus, host: o.host})
	if err != nil {
		if exitCode(err) == exitFailure {
			err = unreachable{err}
		}
		return err
	}
	defer h.Close()
	cl.h = h
	return c.run(cl)
}

// call is one running command.
type call struct {
	ctx context.Context
	o   *opts
	h   helper // nil for local commands
	w   io.Writer
	ew  io.Writer
}

// opts holds the parsed command line.
type opts struct {
	cmd  *command
	args []string
	seen map[string]bool
	help bool

	bus, host string

	json     bool
	watch    bool
	interval time.Duration
	pid      int32
	app      string
	uid      uint32
	down, up uint64
	traffic  string
}

// flagDef is one flag: the table below drives parsing, --help, the man
// page and shell completion.
type flagDef struct {
	name  string // long name, used as --name
	short byte   // one-letter form (-H), or 0
	arg   string // value placeholder (RATE), "" for a switch
	help  string
	// values lists the values a flag or argument takes, for completion.
	values []string
	// complete names a completion of a free value: "file", "host",
	// "pid", "command" or "".
	complete string
	// set validates the value and stores it; its error is a usage error.
	set func(o *opts, v string) error
}

// command is one command of the table.
type command struct {
	name     string
	synopsis string // flags and arguments after the command name
	summary  string // one line
	help     string // paragraphs for --help and the man page
	examples []string
	flags    []*flagDef
	// args: how many positional arguments (min, max) and their values
	// for completion.
	minArgs, maxArgs int
	argName          string
	argValues        []string
	local            bool // needs no helper
	check            func(o *opts) error
	run              func(c *call) error
}

var (
	fBus = &flagDef{name: "bus", arg: "BUS", values: []string{"system", "session"},
		help: "the helper's bus: system (default), session or a D-Bus address (unix:path=…); with --host, the bus on HOST",
		set: func(o *opts, v string) error {
			if v != "system" && v != "session" && !strings.Contains(v, ":") {
				return fmt.Errorf("%q is not system, session or a D-Bus address (unix:path=…)", v)
			}
			o.bus = v
			return nil
		}}
	fHost = &flagDef{name: "host", short: 'H', arg: "[USER@]HOST[:PORT]", complete: "host",
		help: "manage HOST's helper over SSH: runs 'ssh -xT [-p PORT] [USER@]HOST systemd-stdio-bridge' (the ssh in PATH " +
			"with your ssh config, keys and agent); polkit on HOST decides as for a caller in no active session (see docs/packaging.md)",
		set: func(o *opts, v string) error {
			if _, err := client.ParseHost(v); err != nil {
				return err
			}
			o.host = v
			return nil
		}}
	fHelp = &flagDef{name: "help", short: 'h', help: "show help (of the command, after one)",
		set: func(o *opts, _ string) error { o.help = true; return nil }}
	fJSON = &flagDef{name: "json", help: "print JSON: every field the text shows, names exact (the text escapes control characters)",
		set: func(o *opts, _ string) error { o.json = true; return nil }}
	fWatch = &flagDef{name: "watch", help: "refresh the table until q (or Ctrl-C) is pressed; without a terminal, print a table every interval",
		set: func(o *opts, _ string) error { o.watch = true; return nil }}
	fInterval = &flagDef{name: "interval", arg: "D", values: []string{"1s", "2s", "5s"},
		help: "with --watch: refresh every D (a duration such as 500ms, 2s or a number of seconds; 100ms to 1h; default 1s)",
		set: func(o *opts, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				f, ferr := strconv.ParseFloat(v, 64)
				if ferr != nil {
					return fmt.Errorf("%q is not a duration (500ms, 2s, 1m)", v)
				}
				d = time.Duration(f * float64(time.Second))
			}
			if d < 100*time.Millisecond || d > time.Hour {
				return fmt.Errorf("%s is out of range (100ms to 1h)", v)
			}
			o.interval = d
			return nil
		}}
	fPID = &flagDef{name: "pid", arg: "N", complete: "pid", help: "a process (and the children it starts)",
		set: func(o *opts, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 || n > 1<<31-1 {
				return fmt.Errorf("%q is not a process id", v)
			}
			o.pid = int32(n)
			return nil
		}}
	fApp = &flagDef{name: "app", arg: "EXE", complete: "command",
		help: "an executable (a name in PATH or a path; on a remote host the full path there): a rule for its running and " +
			"future processes of one user, kept across restarts",
		set: func(o *opts, v string) error {
			if strings.TrimSpace(v) == "" {
				return errors.New("needs an executable")
			}
			o.app = v
			return nil
		}}
	fUID = &flagDef{name: "uid", arg: "N",
		help: "the user whose rule it is (default: yours; under sudo, the user who ran sudo; on a remote host, the login user there); " +
			"another user's needs the manage permission",
		set: func(o *opts, v string) error {
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil || n > 0xfffffffe {
				return fmt.Errorf("%q is not a uid (0 to 4294967294)", v)
			}
			o.uid = uint32(n)
			return nil
		}}
	fDown = &flagDef{name: "down", arg: "RATE", values: []string{"none", "100KB/s", "500KB/s", "1MB/s", "10MB/s"},
		help: "download limit: bytes a second delivered to the app; 0 or none = unlimited",
		set:  func(o *opts, v string) (err error) { o.down, err = api.ParseRate(v); return err }}
	fUp = &flagDef{name: "up", arg: "RATE", values: []string{"none", "100KB/s", "500KB/s", "1MB/s", "10MB/s"},
		help: "upload limit: bytes a second the app sends; 0 or none = unlimited",
		set:  func(o *opts, v string) (err error) { o.up, err = api.ParseRate(v); return err }}
	fTraffic = &flagDef{name: "traffic", arg: "KIND", values: []string{api.TrafficAll, api.TrafficInternet, api.TrafficLocal},
		help: "which traffic the limit applies to: all (default), internet (not private, link-local or loopback addresses) or local",
		set: func(o *opts, v string) error {
			switch v {
			case api.TrafficAll, api.TrafficInternet, api.TrafficLocal:
				o.traffic = v
				return nil
			}
			return fmt.Errorf("%q: want all, internet or local", v)
		}}
)

// globalFlags go before or after the command.
var globalFlags = []*flagDef{fBus, fHost, fHelp}

// commands is the table of commands, in the order help lists them.
var commands []*command

func init() {
	commands = []*command{
		{name: "top", synopsis: "[--json] [--watch [--interval D]]", summary: "apps and their traffic, busiest first",
			help: "Lists every app (the processes of one executable and one user) with its user, processes, current download " +
				"and upload rates (bytes a second delivered to and sent by the app), totals since the helper started, limits " +
				"(\"rule\" when a saved rule sets them) and its ID for 'details'. Other users' apps show only name, user and " +
				"traffic, and a hidden ID (UID:#hash), unless you have the manage permission.",
			examples: []string{"chadthrottlectl top", "chadthrottlectl top --watch --interval 2s", "chadthrottlectl top --json | jq '.apps[0]'"},
			flags:    []*flagDef{fJSON, fWatch, fInterval}, check: checkTop, run: cmdTop},
		{name: "details", synopsis: "APP [--json]", summary: "the processes and connections of one app",
			help: "Shows one app as the window's details pane does: its processes (pid, parent, command line, rates, totals, " +
				"limit) and connections (protocol, remote and local address, internet or local, rates, totals); --json adds " +
				"the last 60 seconds of rates. APP is an ID from 'top' (UID:/path/to/exe, or UID:#hash for another user's " +
				"app), or an executable's path or name, or an app's name, matched against the running apps.",
			examples: []string{"chadthrottlectl details firefox", "chadthrottlectl details 1000:/usr/lib/firefox/firefox --json"},
			minArgs:  1, maxArgs: 1, argName: "APP", flags: []*flagDef{fJSON}, run: cmdDetails},
		{name: "limit", synopsis: "(--pid N | --app EXE) [--down RATE] [--up RATE] [--traffic all|internet|local] [--uid N]",
			summary: "limit a process or an app (a rule)",
			help: "Limits a process and its children (--pid) or an app (--app: a rule that applies to its running and future " +
				"processes of one user and persists across restarts). A direction not given is unlimited; both 0 removes the " +
				"limit. Under sudo the rule is for the user who ran sudo (SUDO_UID), not root; --uid 0 makes it root's. " +
				"An --app that is a script (#!, like many distributions' /usr/bin/firefox) is never a process's executable: " +
				"the command names the program the script runs (or that runs now) and, in a terminal, asks which to limit. " +
				"Limiting your own apps needs the limit-own permission; in a terminal without a graphical authentication " +
				"agent (SSH), polkit asks for a password there (pkttyagent).",
			examples: []string{"chadthrottlectl limit --app /usr/bin/firefox --down 1MB/s --up 200KB/s",
				"chadthrottlectl limit --pid 4242 --down 500KB/s --traffic internet", "sudo chadthrottlectl limit --app rsync --up 5MB/s --uid 0",
				"chadthrottlectl -H admin@fileserver:2222 limit --app /usr/bin/rsync --up 5MB/s"},
			flags: []*flagDef{fPID, fApp, fDown, fUp, fTraffic, fUID}, check: checkLimit, run: cmdLimit},
		{name: "unlimit", synopsis: "(--pid N | --app EXE) [--uid N]", summary: "remove a process's limit or an app's rule",
			help:     "Removes the limit of a process or the rule of an app (for your user, the user who ran sudo, or --uid N).",
			examples: []string{"chadthrottlectl unlimit --app /usr/bin/firefox", "chadthrottlectl unlimit --pid 4242"},
			flags:    []*flagDef{fPID, fApp, fUID}, check: checkTarget, run: cmdUnlimit},
		{name: "rules", synopsis: "[--json]", summary: "the saved per-app rules",
			help:  "Lists the rules that persist: yours, or every user's with the manage permission. ADMIN rules were set by an administrator and bind their user.",
			flags: []*flagDef{fJSON}, run: cmdRules},
		{name: "pause", summary: "pause your limits until resume",
			help: "Lifts your limits and rules without forgetting them (everyone's with the manage permission); limits an " +
				"administrator set on you stay.",
			run: func(c *call) error { return cmdPause(c, true) }},
		{name: "resume", summary: "apply paused limits again", help: "Applies the limits 'pause' lifted.",
			run: func(c *call) error { return cmdPause(c, false) }},
		{name: "status", synopsis: "[--json]", summary: "the helper: version, active backends, interfaces, pause, your permissions",
			help:  "Shows the helper's version, the active monitor, upload and download backends (and why download limiting is unavailable), the shaped interfaces, whether your limits are paused, and what polkit lets you do (yes, auth: after a password, no).",
			flags: []*flagDef{fJSON}, run: cmdStatus},
		{name: "backends", synopsis: "[--json]", summary: "every compiled backend: kind, name, priority, available, active, reason",
			help:  "Lists every backend compiled into the helper with its priority (1 fallback … 4 best), whether it can work here (and why not) and whether it is in use.",
			flags: []*flagDef{fJSON}, run: cmdBackends},
		{name: "version", summary: "print chadthrottlectl's version", help: "Prints chadthrottlectl's version; 'status' shows the helper's.",
			local: true, run: func(c *call) error { _, err := fmt.Fprintf(c.w, "chadthrottlectl %s\n", api.Version); return err }},
		{name: "completion", synopsis: "bash|zsh|fish", summary: "print a shell completion script",
			help: "Prints the completion script for a shell. The packages install them; to load one by hand: " +
				"'source <(chadthrottlectl completion bash)', 'chadthrottlectl completion zsh > ~/.zfunc/_chadthrottlectl' " +
				"(with ~/.zfunc in fpath), 'chadthrottlectl completion fish > ~/.config/fish/completions/chadthrottlectl.fish'.",
			minArgs: 1, maxArgs: 1, argName: "SHELL", argValues: []string{"bash", "zsh", "fish"}, local: true, run: cmdCompletion},
		{name: "help", synopsis: "[COMMAND]", summary: "show help of chadthrottlectl or of a command",
			help: "Shows the help of a command, as COMMAND --help does.", minArgs: 0, maxArgs: 1, argName: "COMMAND", local: true,
			run: func(c *call) error {
				if len(c.o.args) == 0 {
					writeHelp(c.w, nil)
					return nil
				}
				writeHelp(c.w, findCommand(c.o.args[0]))
				return nil
			}},
	}
	var names []string
	for _, c := range commands {
		names = append(names, c.name)
	}
	findCommand("help").argValues = names
}

func findCommand(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

func commandNames() string {
	var names []string
	for _, c := range commands {
		names = append(names, c.name)
	}
	return strings.Join(names, ", ")
}

// parse reads the command line: global flags before or after the command,
// the command's flags after it, "--" ends the flags. A --help anywhere
// wins over mistakes elsewhere.
func parse(args []string) (*opts, error) {
	o := &opts{bus: "system", traffic: api.TrafficAll, interval: time.Second, seen: map[string]bool{}}
	var first error
	fail := func(err error) {
		if first == nil {
			first = err
		}
	}
	dashdash := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if dashdash || a == "-" || !strings.HasPrefix(a, "-") {
			if o.cmd == nil {
				if o.cmd = findCommand(a); o.cmd == nil {
					fail(usageErr("unknown command %q (commands: %s)", a, commandNames()))
					o.cmd = &command{name: a, maxArgs: -1}
				}
				continue
			}
			o.args = append(o.args, a)
			continue
		}
		if a == "--" {
			dashdash = true
			continue
		}
		name, val, hasVal := "", "", false
		if strings.HasPrefix(a, "--") {
			name, val, hasVal = strings.Cut(a[2:], "=")
		} else {
			name = a[1:2]
			if len(a) > 2 {
				val, hasVal = strings.TrimPrefix(a[2:], "="), true
			}
		}
		f := lookupFlag(o.cmd, name, !strings.HasPrefix(a, "--"))
		if f == nil {
			fail(unknownFlag(o.cmd, a, name))
			continue
		}
		label := "--" + f.name
		if f.arg != "" && !hasVal {
			if i+1 >= len(args) {
				fail(usageErr("%s needs a value (%s)", label, f.arg))
				continue
			}
			i++
			val, hasVal = args[i], true
		}
		if f.arg == "" && hasVal {
			fail(usageErr("%s takes no value", label))
			continue
		}
		if o.seen[f.name] && f != fHelp {
			fail(usageErr("%s is given twice", label))
			continue
		}
		o.seen[f.name] = true
		if err := f.set(o, val); err != nil {
			fail(usageErr("%s: %v", label, err))
		}
	}
	if o.help {
		if o.cmd != nil && findCommand(o.cmd.name) == nil {
			o.cmd = nil
		}
		return o, nil
	}
	if first != nil {
		return o, first
	}
	if o.cmd == nil {
		return o, usageErr("no command given (commands: %s)", commandNames())
	}
	switch c := o.cmd; {
	case len(o.args) > c.maxArgs && c.maxArgs == 0:
		return o, usageErr("%s: unexpected argument %q", c.name, o.args[0])
	case len(o.args) > c.maxArgs:
		return o, usageErr("%s: unexpected argument %q (%s takes one %s)", c.name, o.args[c.maxArgs], c.name, c.argName)
	case len(o.args) < c.minArgs:
		return o, usageErr("%s: give %s", c.name, c.argName)
	}
	if len(o.cmd.argValues) > 0 && len(o.args) == 1 && o.cmd.name != "help" && !contains(o.cmd.argValues, o.args[0]) {
		return o, usageErr("%s: %q is not %s", o.cmd.name, o.args[0], strings.Join(o.cmd.argValues, ", "))
	}
	if o.cmd.name == "help" && len(o.args) == 1 && findCommand(o.args[0]) == nil {
		return o, usageErr("help: unknown command %q (commands: %s)", o.args[0], commandNames())
	}
	return o, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func lookupFlag(c *command, name string, short bool) *flagDef {
	var flags []*flagDef
	flags = append(flags, globalFlags...)
	if c != nil {
		flags = append(flags, c.flags...)
	}
	for _, f := range flags {
		if (short && f.short != 0 && string(f.short) == name) || (!short && f.name == name) {
			return f
		}
	}
	return nil
}

func unknownFlag(c *command, arg, name string) error {
	if c == nil {
		for _, o := range commands {
			if lookupFlag(o, name, !strings.HasPrefix(arg, "--")) != nil {
				return usageErr("%s goes after the command (e.g. chadthrottlectl %s %s)", arg, o.name, arg)
			}
		}
		return usageErr("unknown flag %s", arg)
	}
	return usageErr("%s: unknown flag %s", c.name, arg)
}

// Checks of flags that go together.

func checkTop(o *opts) error {
	switch {
	case o.seen["interval"] && !o.watch:
		return usageErr("top: --interval goes with --watch")
	case o.watch && o.json:
		return usageErr("top: --watch shows a table; for JSON run top --json repeatedly")
	}
	return nil
}

func checkTarget(o *opts) error {
	n := o.cmd.name
	switch {
	case o.seen["pid"] == o.seen["app"]:
		return usageErr("%s: give exactly one of --pid N or --app EXE", n)
	case o.seen["uid"] && !o.seen["app"]:
		return usageErr("%s: --uid goes with --app", n)
	}
	return nil
}

func checkLimit(o *opts) error {
	if err := checkTarget(o); err != nil {
		return err
	}
	if !o.seen["down"] && !o.seen["up"] {
		return usageErr("limit: give --down RATE and/or --up RATE (0 or none = unlimited)")
	}
	return nil
}

// Help text, from the table.

func flagLabel(f *flagDef) string {
	s := "--" + f.name
	if f.short != 0 {
		s = "-" + string(f.short) + ", " + s
	}
	if f.arg != "" {
		s += " " + f.arg
	}
	return s
}

const rateHelp = "RATE: 500KB/s, 1.5MB/s (x1000), 1MiB/s (x1024), 8Mbit/s, kbit, Gbit; a bare number is bytes/s; 0 or none is unlimited."

func writeHelp(w io.Writer, c *command) {
	if c == nil {
		fmt.Fprint(w, "usage: chadthrottlectl [--bus BUS] [-H|--host [USER@]HOST[:PORT]] COMMAND [FLAGS]\n\n"+
			"See and limit the network bandwidth of each application through chadthrottle-helper.\n\ncommands:\n")
		for _, c := range commands {
			fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
		}
		fmt.Fprint(w, "\nglobal flags (before or after the command):\n")
		writeFlags(w, globalFlags)
		fmt.Fprintf(w, "\n%s\n\nexit status:\n", wrap(rateHelp, 100, ""))
		for _, e := range exitCodes {
			fmt.Fprintf(w, "  %d  %s\n", e.code, e.what)
		}
		fmt.Fprint(w, "\nrun 'chadthrottlectl COMMAND --help' for a command's flags; man chadthrottlectl for more.\n")
		return
	}
	fmt.Fprintf(w, "usage: chadthrottlectl %s\n\n%s\n", strings.TrimSpace(c.name+" "+c.synopsis), wrap(c.help, 100, ""))
	if len(c.flags) > 0 {
		fmt.Fprint(w, "\nflags:\n")
		writeFlags(w, c.flags)
	}
	fmt.Fprint(w, "\nglobal flags:\n")
	writeFlags(w, globalFlags)
	if c.name == "limit" {
		fmt.Fprintf(w, "\n%s\n", wrap(rateHelp, 100, ""))
	}
	if len(c.examples) > 0 {
		fmt.Fprint(w, "\nexamples:\n")
		for _, e := range c.examples {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
}

func writeFlags(w io.Writer, flags []*flagDef) {
	for _, f := range flags {
		fmt.Fprintf(w, "  %s\n%s\n", flagLabel(f), wrap(f.help, 100, "        "))
	}
}

// wrap breaks s into lines of at most width, each starting with indent.
func wrap(s string, width int, indent string) string {
	var b strings.Builder
	line := indent
	for _, word := range strings.Fields(s) {
		if len(line) > len(indent) && len(line)+1+len(word) > width {
			b.WriteString(line + "\n")
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += word
	}
	b.WriteString(line)
	return b.String()
}

// sys is what the commands need of the process and its terminal; tests
// replace it.
var sys = struct {
	stdin    io.Reader
	stdinTTY func() bool
	getuid   func() int
	getenv   func(string) string
	ttyAgent string // polkit's text authentication agent
	termSize func(w io.Writer) (cols, rows int, ok bool)
	rawStdin func() (restore func(), err error)
}{
	stdin:    os.Stdin,
	stdinTTY: func() bool { return isTerminal(0) },
	getuid:   os.Getuid,
	getenv:   os.Getenv,
	ttyAgent: "pkttyagent",
	termSize: termSize,
	rawStdin: rawStdin,
}
