//go:build linux

package bustest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/client"
)

// Child processes: a test re-executes a public copy of its own binary as
// another user (see Peer); TestMain calls MaybeChild first, which runs the
// child's job and exits when the environment says so.
const (
	envChild = "CHADTHROTTLE_BUSTEST_CHILD" // hold | call
	envBus   = "CHADTHROTTLE_BUSTEST_BUS"
	envCall  = "CHADTHROTTLE_BUSTEST_CALLS" // file holding the JSON []Call
)

// Call is one method call a child makes, with the answer it printed.
type Call struct {
	Method string   `json:"method"`
	Args   []string `json:"args"`
}

// Answer is a child's answer to one Call.
type Answer struct {
	OK      bool            `json:"ok"`
	Error   string          `json:"error,omitempty"`   // D-Bus error name (or "client")
	Message string          `json:"message,omitempty"` // error text
	Result  json.RawMessage `json:"result,omitempty"`
}

// MaybeChild runs the child job when this process is a child and exits;
// otherwise it returns at once. Call it first in TestMain.
func MaybeChild() {
	switch os.Getenv(envChild) {
	case "":
		return
	case "hold":
		os.Exit(hold())
	case "call":
		os.Exit(callChild())
	case "fuzz":
		os.Exit(fuzzChild())
	}
	fmt.Fprintln(os.Stderr, "unknown child job")
	os.Exit(2)
}

func hold() int {
	conn, err := dbus.Connect(os.Getenv(envBus))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(conn.Names()[0])
	io.Copy(io.Discard, os.Stdin)
	return 0
}

func callChild() int {
	var calls []Call
	b, err := os.ReadFile(os.Getenv(envCall))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := json.Unmarshal(b, &calls); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	c, err := client.Connect(os.Getenv(envBus))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	enc := json.NewEncoder(os.Stdout)
	for _, call := range calls {
		enc.Encode(Do(c, call))
	}
	return 0
}

// Do makes one call with c (also used in-process for root).
func Do(c *client.Client, call Call) Answer {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	arg := func(i int) string {
		if i < len(call.Args) {
			return call.Args[i]
		}
		return ""
	}
	num := func(i int) uint64 { n, _ := strconv.ParseUint(arg(i), 10, 64); return n }
	var res any
	var err error
	switch call.Method {
	case api.MethodGetStatus:
		res, err = c.Status(ctx)
	case api.MethodGetPermissions:
		res, err = c.Permissions(ctx)
	case api.MethodListBackends:
		res, err = c.Backends(ctx)
	case api.MethodGetApps:
		res, err = c.Apps(ctx)
	case api.MethodGetAppDetails:
		res, err = c.AppDetails(ctx, arg(0))
	case api.MethodGetRules:
		res, err = c.Rules(ctx)
	case api.MethodSetAppLimit:
		err = c.SetAppLimit(ctx, arg(0), uint32(num(1)), api.Limit{Down: num(2), Up: num(3), Traffic: arg(4)})
	case api.MethodRemoveAppLimit:
		err = c.RemoveAppLimit(ctx, arg(0), uint32(num(1)))
	case api.MethodSetProcessLimit:
		err = c.SetProcessLimit(ctx, int32(num(0)), api.Limit{Down: num(1), Up: num(2), Traffic: arg(3)})
	case api.MethodRemoveProcessLimit:
		err = c.RemoveProcessLimit(ctx, int32(num(0)))
	case api.MethodSetPaused:
		err = c.SetPaused(ctx, arg(0) == "true")
	default:
		var ok bool
		if res, err, ok = doHistory(ctx, c, call, arg); !ok {
			return Answer{Error: "client", Message: "unknown method " + call.Method}
		}
	}
	if err != nil {
		var ce *client.Error
		if errors.As(err, &ce) {
			return Answer{Error: ce.Name, Message: ce.Message}
		}
		return Answer{Error: "client", Message: err.Error()}
	}
	b, _ := json.Marshal(res)
	return Answer{OK: true, Result: b}
}

// Peer runs children of the current test binary as a user.
type Peer struct {
	User *User // nil: root
	bin  string
	bus  *Bus
}

// NewPeer prepares children for u (nil for root) on bus.
func NewPeer(t testing.TB, bus *Bus, u *User) *Peer {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return &Peer{User: u, bin: PublicCopy(t, self), bus: bus}
}

// Calls runs calls in one child connection and returns the answers.
func (p *Peer) Calls(t testing.TB, calls ...Call) []Answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, stderr, err := RunAs(ctx, p.User, []string{envChild + "=call", envBus + "=" + p.bus.Address, envCall + "=" + p.callsFile(t, calls)}, p.bin, "-test.run=^$")
	if err != nil {
		t.Fatalf("child as %v: %v: %s", p.User, err, stderr)
	}
	var answers []Answer
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var a Answer
		if err := dec.Decode(&a); err != nil {
			t.Fatalf("child output %q: %v", out, err)
		}
		answers = append(answers, a)
	}
	if len(answers) != len(calls) {
		t.Fatalf("child answered %d of %d calls: %s %s", len(answers), len(calls), out, stderr)
	}
	return answers
}

// Start starts a child that makes calls without waiting for it (a test
// kills it to see what the helper does when a caller leaves mid-call).
func (p *Peer) Start(t testing.TB, calls ...Call) *exec.Cmd {
	t.Helper()
	cmd := execAs(p.User, []string{envChild + "=call", envBus + "=" + p.bus.Address, envCall + "=" + p.callsFile(t, calls)}, p.bin, "-test.run=^$")
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// callsFile writes calls where the child's user can read them (an
// environment variable cannot hold thousands).
func (p *Peer) callsFile(t testing.TB, calls []Call) string {
	t.Helper()
	b, _ := json.Marshal(calls)
	f := filepath.Join(PublicDir(t), "calls.json")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// Hold starts a child that connects to the bus and stays; it returns the
// child's unique bus name and a function that ends the child.
func (p *Peer) Hold(t testing.TB) (string, func()) {
	t.Helper()
	cmd := execAs(p.User, []string{envChild + "=hold", envBus + "=" + p.bus.Address}, p.bin, "-test.run=^$")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop := func() { stdin.Close(); cmd.Wait() }
	t.Cleanup(stop)
	line := make([]byte, 0, 64)
	buf := make([]byte, 1)
	for {
		n, err := stdout.Read(buf)
		if n == 1 {
			if buf[0] == '\n' {
				break
			}
			line = append(line, buf[0])
		}
		if err != nil {
			t.Fatalf("hold child: %v", err)
		}
	}
	return string(line), stop
}
