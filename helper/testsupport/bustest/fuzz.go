//go:build linux

package bustest

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// FuzzStats is what a fuzzing child reports.
type FuzzStats struct {
	Calls    int            `json:"calls"`
	Errors   map[string]int `json:"errors"` // D-Bus error name → count
	OK       int            `json:"ok"`
	Max      time.Duration  `json:"max"`     // slowest call
	Over1s   int            `json:"over_1s"` // calls that took more than 1 s
	Seconds  float64        `json:"seconds"`
	Lost     bool           `json:"lost"`      // the connection broke
	LastFail string         `json:"last_fail"` // the last transport error
}

const (
	envFuzzN    = "CHADTHROTTLE_BUSTEST_FUZZ_N"
	envFuzzSeed = "CHADTHROTTLE_BUSTEST_FUZZ_SEED"
)

// Fuzz runs n random method calls with random arguments (right and wrong
// signatures, hostile strings, the child's own pids and others') as the
// peer's user in one connection and returns the child's statistics.
func (p *Peer) Fuzz(t interface {
	Helper()
	Fatalf(string, ...any)
}, n int, seed int64) FuzzStats {
	t.Helper()
	cmd := execAs(p.User, []string{envChild + "=fuzz", envBus + "=" + p.bus.Address,
		envFuzzN + "=" + strconv.Itoa(n), envFuzzSeed + "=" + strconv.FormatInt(seed, 10)}, p.bin, "-test.run=^$")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("fuzz child: %v", err)
	}
	var st FuzzStats
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("fuzz child output %q: %v", out, err)
	}
	return st
}

func fuzzChild() int {
	n, _ := strconv.Atoi(os.Getenv(envFuzzN))
	seed, _ := strconv.ParseInt(os.Getenv(envFuzzSeed), 10, 64)
	conn, err := dbus.Connect(os.Getenv(envBus))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer conn.Close()
	// Processes of the child's own to limit.
	g := &fuzzArgs{rng: rand.New(rand.NewSource(seed))}
	for i := 0; i < 4; i++ {
		c := exec.Command("/usr/bin/sleep", "3600")
		if c.Start() == nil {
			g.own = append(g.own, uint32(c.Process.Pid))
			defer func() { c.Process.Kill(); c.Wait() }()
		}
	}
	obj := conn.Object(api.BusName, api.ObjectPath)
	st := FuzzStats{Errors: map[string]int{}}
	begin := time.Now()
	for i := 0; i < n && !st.Lost; i++ {
		m, args, flags := g.call()
		t0 := time.Now()
		call := obj.Call(api.Interface+"."+m, flags, args...)
		st.record(time.Since(t0), call.Err, conn)
	}
	st.Seconds = time.Since(begin).Seconds()
	json.NewEncoder(os.Stdout).Encode(st)
	return 0
}

// record counts one call's outcome.
func (st *FuzzStats) record(d time.Duration, err error, conn *dbus.Conn) {
	st.Calls++
	st.Max = max(st.Max, d)
	if d > time.Second {
		st.Over1s++
	}
	var derr dbus.Error
	switch {
	case err == nil:
		st.OK++
	case asDBusError(err, &derr):
		st.Errors[derr.Name]++
	default:
		st.Errors["transport"]++
		st.LastFail = err.Error()
		st.Lost = conn.Context().Err() != nil
	}
}

// fuzzArgs makes random calls: every method, arguments from pools of
// hostile values, now and then a wrong signature.
type fuzzArgs struct {
	rng *rand.Rand
	own []uint32 // pids of the child's own processes
}

var fuzzStrings = []string{"", "/", "/usr/bin/sleep", "/usr/bin/curl", "/proc/1/cwd", "/proc/self/exe", "relative",
	"0:/usr/bin/sleep", "1000:/usr/bin/sleep", "4294967295:/x", "/a/../b", "/tmp/\x1b]0;x\x07",
	"/tmp/\xff\xfe", "/tmp/nul\x00byte", "/" + strings.Repeat("a", 5000), "all", "internet", "local", "ALL", "bogus",
	strings.Repeat("<", 2000), "99999:#0123456789abcdef", "0:#", ":"}

func (g *fuzzArgs) str() string {
	if g.rng.Intn(8) == 0 {
		b := make([]byte, g.rng.Intn(64))
		g.rng.Read(b)
		return string(b)
	}
	return fuzzStrings[g.rng.Intn(len(fuzzStrings))]
}

func (g *fuzzArgs) pid() uint32 {
	switch g.rng.Intn(6) {
	case 0, 1, 2:
		if len(g.own) > 0 {
			return g.own[g.rng.Intn(len(g.own))]
		}
	case 3:
		return []uint32{0, 1, uint32(os.Getpid()), 1 << 22, 1<<22 + 1, 0xffffffff}[g.rng.Intn(6)]
	}
	return uint32(g.rng.Intn(40000))
}

func (g *fuzzArgs) rate() uint64 {
	return []uint64{0, 1, 1000, 1_000_000, 12_500_000_000, 12_500_000_001, 1 << 63, ^uint64(0)}[g.rng.Intn(8)]
}

func (g *fuzzArgs) uid() uint32 {
	return []uint32{uint32(os.Getuid()), uint32(os.Getuid()), 0, 1000, 0xffffffff}[g.rng.Intn(5)]
}

func (g *fuzzArgs) call() (method string, args []any, flags dbus.Flags) {
	method = api.Methods[g.rng.Intn(len(api.Methods))].Name
	switch method {
	case api.MethodGetAppDetails:
		args = []any{g.str()}
	case api.MethodSetAppLimit:
		args = []any{g.str(), g.uid(), g.rate(), g.rate(), g.str()}
	case api.MethodRemoveAppLimit:
		args = []any{g.str(), g.uid()}
	case api.MethodSetProcessLimit:
		args = []any{g.pid(), g.rate(), g.rate(), g.str()}
	case api.MethodRemoveProcessLimit:
		args = []any{g.pid()}
	case api.MethodSetPaused:
		args = []any{g.rng.Intn(2) == 0}
	default:
		args = g.historyArgs(method)
	}
	if g.rng.Intn(10) == 0 { // a wrong signature
		args = append(args, g.str())
		if g.rng.Intn(2) == 0 && len(args) > 1 {
			args = args[1:]
		}
	}
	if g.rng.Intn(2) == 0 {
		flags = dbus.FlagAllowInteractiveAuthorization
	}
	return method, args, flags
}

func asDBusError(err error, out *dbus.Error) bool {
	switch e := err.(type) {
	case dbus.Error:
		*out = e
		return true
	case *dbus.Error:
		*out = *e
		return true
	}
	return false
}
