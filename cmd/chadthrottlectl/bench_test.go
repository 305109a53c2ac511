//go:build bench && linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/testsupport/bustest"
)

// TestBenchRemoteLatency: call latency of the helper over the SSH bridge
// (ssh → sshd → systemd-stdio-bridge → bus, in the remote bed) against the
// same calls on the bus directly, both as the same remote user (polkit
// checks the same subject), in one process each, calls in sequence.
func TestBenchRemoteLatency(t *testing.T) {
	r := newRemoteBed(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := bustest.PublicCopy(t, self)
	sleeper := r.bed.Command(r.bed.Local, "sleep", "600")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })
	time.Sleep(500 * time.Millisecond)
	const n = 200
	env := []string{envLatBus + "=" + r.bus.Address, envLatPID + "=" + strconv.Itoa(sleeper.Process.Pid), envLatN + "=" + strconv.Itoa(n)}
	run := func(remote bool) latencies {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		var cmd *exec.Cmd
		if remote {
			cmd = r.AsLocal(ctx, "/usr/bin:/bin", bin, "-test.run=^$")
			cmd.Env = append(cmd.Env, append(env, envLatency+"="+r.Host(r.Admin))...)
		} else {
			// The remote user itself, on the remote side, straight on the bus.
			cmd = exec.CommandContext(ctx, bin, "-test.run=^$")
			cmd.Env = append(os.Environ(), append(env, envLatency+"=-")...)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: r.Admin.Credential()}
			cmd.Dir = "/"
		}
		var stderr testenv.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("latency child (remote %v): %v: %s", remote, err, stderr.String())
		}
		var l latencies
		if err := json.Unmarshal(out, &l); err != nil {
			t.Fatalf("latency child output %q: %v", out, err)
		}
		return l
	}
	local, remote := run(false), run(true)
	pct := func(v []int64, p float64) string {
		s := append([]int64(nil), v...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return fmt.Sprintf("%.2f ms", float64(s[int(p*float64(len(s)-1))])/1e6)
	}
	fmt.Printf("\nhelper call latency, %d calls each in sequence, as the same user (polkit rule), real helper (ebpf/tc per auto selection)\n", n)
	fmt.Printf("%-22s %-26s %10s %10s %10s\n", "call", "path", "p50", "p99", "max")
	for _, m := range []string{api.MethodGetStatus, api.MethodGetApps, api.MethodSetProcessLimit, api.MethodRemoveProcessLimit} {
		for _, c := range []struct {
			name string
			l    latencies
		}{{"local bus", local}, {"ssh + stdio-bridge", remote}} {
			v := c.l.Calls[m]
			fmt.Printf("%-22s %-26s %10s %10s %10s\n", m, c.name, pct(v, .5), pct(v, .99), pct(v, 1))
		}
	}
	fmt.Printf("%-22s %-26s %10.2f ms\n", "connect + first call", "local bus", float64(local.Connect)/1e6)
	fmt.Printf("%-22s %-26s %10.2f ms\n", "connect + first call", "ssh + stdio-bridge", float64(remote.Connect)/1e6)
	fmt.Println("ssh: OpenSSH client and Debian sshd over a veth between two namespaces (no network delay); the difference is ssh's crypto, two more processes and the bridge")
}
