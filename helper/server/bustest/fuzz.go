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
	Lost     bool           `json:"lost"`     // the connection broke
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
	// Processes of the child's own to limit, and one that comes and goes.
	var own []uint32
	for i := 0; i < 4; i++ {
		c := exec.Command("/usr/bin/sleep", "3600")
		if c.Start() == nil {
			own = append(own, uint32(c.Process.Pid))
			defer func() { c.Process.Kill(); c.Wait() }()
		}
	}
	rng := rand.New(rand.NewSource(seed))
	strs := []string{"", "/", "/usr/bin/sleep", "/usr/bin/curl", "/proc/1/cwd", "/proc/self/exe", "relative",
		"0:/usr/bin/sleep", "1000:/usr/bin/sleep", "4294967295:/x", "/a/../b", "/tmp/\x1b]0;x\x07",
		"/tmp/\xff\xfe", "/tmp/nul\x00byte", "/" + strings.Repeat("a", 5000), "all", "internet", "local", "ALL", "bogus",
		strings.Repeat("<", 2000), "99999:#0123456789abcdef", "0:#", ":"}
	str := func() string {
		if rng.Intn(8) == 0 {
			b := make([]byte, rng.Intn(64))
			rng.Read(b)
			return string(b)
		}
		return strs[rng.Intn(len(strs))]
	}
	pid := func() uint32 {
		switch rng.Intn(6) {
		case 0, 1, 2:
			return own[rng.Intn(len(own))]
		case 3:
			return []uint32{0, 1, uint32(os.Getpid()), 1 << 22, 1<<22 + 1, 0xffffffff}[rng.Intn(6)]
		}
		return uint32(rng.Intn(40000))
	}
	rate := func() uint64 {
		return []uint64{0, 1, 1000, 1_000_000, 12_500_000_000, 12_500_000_001, 1 << 63, ^uint64(0)}[rng.Intn(8)]
	}
	uid := func() uint32 {
		return []uint32{uint32(os.Getuid()), uint32(os.Getuid()), 0, 1000, 0xffffffff}[rng.Intn(5)]
	}
	obj := conn.Object(api.BusName, api.ObjectPath)
	st := FuzzStats{Errors: map[string]int{}}
	begin := time.Now()
	for i := 0; i < n; i++ {
		m := api.Methods[rng.Intn(len(api.Methods))].Name
		var args []any
		switch m {
		case api.MethodGetAppDetails:
			args = []any{str()}
		case api.MethodSetAppLimit:
			args = []any{str(), uid(), rate(), rate(), str()}
		case api.MethodRemoveAppLimit:
			args = []any{str(), uid()}
		case api.MethodSetProcessLimit:
			args = []any{pid(), rate(), rate(), str()}
		case api.MethodRemoveProcessLimit:
			args = []any{pid()}
		case api.MethodSetPaused:
			args = []any{rng.Intn(2) == 0}
		}
		if rng.Intn(10) == 0 { // a wrong signature
			args = append(args, str())
			if rng.Intn(2) == 0 && len(args) > 1 {
				args = args[1:]
			}
		}
		var flags dbus.Flags
		if rng.Intn(2) == 0 {
			flags = dbus.FlagAllowInteractiveAuthorization
		}
		t0 := time.Now()
		call := obj.Call(api.Interface+"."+m, flags, args...)
		d := time.Since(t0)
		st.Calls++
		if d > st.Max {
			st.Max = d
		}
		if d > time.Second {
			st.Over1s++
		}
		var derr dbus.Error
		switch {
		case call.Err == nil:
			st.OK++
		case asDBusError(call.Err, &derr):
			st.Errors[derr.Name]++
		default:
			st.Errors["transport"]++
			st.LastFail = call.Err.Error()
			if conn.Context().Err() != nil {
				st.Lost = true
				i = n
			}
		}
	}
	st.Seconds = time.Since(begin).Seconds()
	json.NewEncoder(os.Stdout).Encode(st)
	return 0
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
