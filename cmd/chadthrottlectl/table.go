package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/client"
)

var (
	fBus = &flagDef{name: "bus", arg: "BUS", values: []string{"system", "session"},
		help: "the helper's bus: system (default), session or a D-Bus address (unix:path=…); with --host, the bus on HOST",
		set: setText(func(o *opts) *string { return &o.bus }, func(v string) error {
			if v != "system" && v != "session" && !strings.Contains(v, ":") {
				return fmt.Errorf("%q is not system, session or a D-Bus address (unix:path=…)", v)
			}
			return nil
		})}
	fHost = &flagDef{name: "host", short: 'H', arg: "[USER@]HOST[:PORT]", complete: "host",
		help: "manage HOST's helper over SSH: runs 'ssh -xT [-p PORT] [USER@]HOST systemd-stdio-bridge' (the ssh in PATH " +
			"with your ssh config, keys and agent); polkit on HOST decides as for a caller in no active session (see docs/packaging.md)",
		set: setText(func(o *opts) *string { return &o.host }, func(v string) error {
			_, err := client.ParseHost(v)
			return err
		})}
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
		set: setText(func(o *opts) *string { return &o.app }, func(v string) error {
			if strings.TrimSpace(v) == "" {
				return errors.New("needs an executable")
			}
			return nil
		})}
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
	fTraffic = trafficFlag("traffic", "which traffic the limit applies to: all (default), internet (not private, "+
		"link-local or loopback addresses) or local", func(o *opts) *string { return &o.traffic })
)

// globalFlags go before or after the command.
var globalFlags = []*flagDef{fBus, fHost, fHelp}

// commands is the table of commands, in the order help lists them.
var commands []*command

// limitCommand and unlimitCommand are limit and unlimit (the table in init
// would pass 80 lines with them inline).
var limitCommand = &command{name: "limit", synopsis: "(--pid N | --app EXE) [--down RATE] [--up RATE] [--traffic all|internet|local] [--when SCHEDULE] [--uid N] | --global [--down RATE] [--up RATE] [--interface IFACE]",
	summary: "limit a process or an app (a rule)",
	help: "Limits a process and its children (--pid) or an app (--app: a rule that applies to its running and future " +
		"processes of one user and persists across restarts). A direction not given is unlimited; both 0 removes the " +
		"limit. Under sudo the rule is for the user who ran sudo (SUDO_UID), not root; --uid 0 makes it root's. " +
		"An --app that is a script (#!, like many distributions' /usr/bin/firefox) is never a process's executable: " +
		"the command names the program the script runs (or that runs now) and, in a terminal, asks which to limit. " +
		"Limiting your own apps needs the limit-own permission; in a terminal without a graphical authentication " +
		"agent (SSH), polkit asks for a password there (pkttyagent). With --global it sets the global limit instead: " +
		"one cap for the whole machine (or --interface), shared among apps by priority (see priority); it needs " +
		"the manage permission.",
	examples: []string{"chadthrottlectl limit --app /usr/bin/firefox --down 1MB/s --up 200KB/s",
		"chadthrottlectl limit --pid 4242 --down 500KB/s --traffic internet", "sudo chadthrottlectl limit --app rsync --up 5MB/s --uid 0",
		"chadthrottlectl -H admin@fileserver:2222 limit --app /usr/bin/rsync --up 5MB/s",
		"chadthrottlectl limit --app /usr/bin/rsync --down 2MB/s --when 'Mon-Fri 09:00-17:00,Sat 10:00-12:00'",
		"chadthrottlectl limit --app /usr/bin/steam --down 1MB/s --down-traffic internet --up 200KB/s",
		"chadthrottlectl limit --global --down 10MB/s --up 2MB/s"},
	flags: []*flagDef{fPID, fApp, fGlobal, fDown, fUp, fTraffic, fDownTraffic, fUpTraffic, fWhen, fUID, fInterface},
	check: checkLimit, run: cmdLimit}

var unlimitCommand = &command{name: "unlimit", synopsis: "(--pid N | --app EXE | --global) [--uid N]", summary: "remove a process's limit, an app's rule or the global limit",
	help: "Removes the limit of a process, the rule of an app (for your user, the user who ran sudo, or --uid N) " +
		"or, with --global, the global limit (manage).",
	examples: []string{"chadthrottlectl unlimit --app /usr/bin/firefox", "chadthrottlectl unlimit --pid 4242",
		"chadthrottlectl unlimit --global"},
	flags: []*flagDef{fPID, fApp, fGlobal, fUID}, check: checkTarget, run: cmdUnlimit}

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
		limitCommand, unlimitCommand,
		blockCommand, unblockCommand, priorityCommand,
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
			help:  "Shows the helper's version, the active monitor, upload and download backends (and why download limiting is unavailable), the shaped interfaces, whether your limits are paused, the global limit, and what polkit lets you do (yes, auth: after a password, no).",
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
	commands = insertBefore(commands, "status", historyCommands())
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
