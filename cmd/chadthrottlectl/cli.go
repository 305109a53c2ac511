package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
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
	blockHelper
	globalHelper
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
	zones    [2]string // --down-traffic, --up-traffic (zones.go)
	when     string
	global   bool     // limit/unlimit --global (global.go)
	iface    string   // with --global
	hist     histOpts // stats and quota commands (history.go)
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

// setText is the set of a flag with a text value: check validates the
// value, which is then stored in the field of opts that field gives.
func setText(field func(*opts) *string, check func(v string) error) func(*opts, string) error {
	return func(o *opts, v string) error {
		if err := check(v); err != nil {
			return err
		}
		*field(o) = v
		return nil
	}
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
		var err error
		if i, err = parseFlag(o, args, i); err != nil {
			fail(err)
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
	return o, checkArgs(o)
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
	if err := checkGlobal(o); err != nil || o.global {
		return err
	}
	switch {
	case o.seen["pid"] == o.seen["app"]:
		return usageErr("%s: give exactly one of --pid N or --app EXE", n)
	case o.seen["uid"] && !o.seen["app"]:
		return usageErr("%s: --uid goes with --app", n)
	}
	return nil
}

func checkLimit(o *opts) error {
	if err := checkTarget(o); err != nil || o.global {
		return err
	}
	if !o.seen["down"] && !o.seen["up"] {
		return usageErr("limit: give --down RATE and/or --up RATE (0 or none = unlimited)")
	}
	return checkWhen(o)
}

// Help text, from the table.

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

// parseFlag parses the flag args[i] (taking its value from args[i+1] when
// it needs one) into o and returns the index of the last argument used.
func parseFlag(o *opts, args []string, i int) (int, error) {
	a := args[i]
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
		return i, unknownFlag(o.cmd, a, name)
	}
	label := "--" + f.name
	if f.arg != "" && !hasVal {
		if i+1 >= len(args) {
			return i, usageErr("%s needs a value (%s)", label, f.arg)
		}
		i++
		val, hasVal = args[i], true
	}
	if f.arg == "" && hasVal {
		return i, usageErr("%s takes no value", label)
	}
	if o.seen[f.name] && f != fHelp {
		return i, usageErr("%s is given twice", label)
	}
	o.seen[f.name] = true
	if err := f.set(o, val); err != nil {
		return i, usageErr("%s: %v", label, err)
	}
	return i, nil
}

// checkArgs checks the positional arguments of the parsed command.
func checkArgs(o *opts) error {
	switch c := o.cmd; {
	case len(o.args) > c.maxArgs && c.maxArgs == 0:
		return usageErr("%s: unexpected argument %q", c.name, o.args[0])
	case len(o.args) > c.maxArgs:
		return usageErr("%s: unexpected argument %q (%s takes one %s)", c.name, o.args[c.maxArgs], c.name, c.argName)
	case len(o.args) < c.minArgs:
		return usageErr("%s: give %s", c.name, c.argName)
	}
	if len(o.cmd.argValues) > 0 && len(o.args) == 1 && o.cmd.name != "help" && !contains(o.cmd.argValues, o.args[0]) {
		return usageErr("%s: %q is not %s", o.cmd.name, o.args[0], strings.Join(o.cmd.argValues, ", "))
	}
	if o.cmd.name == "help" && len(o.args) == 1 && findCommand(o.args[0]) == nil {
		return usageErr("help: unknown command %q (commands: %s)", o.args[0], commandNames())
	}
	return nil
}
