//go:build linux

package socktarget_test

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/ebpf"
	"github.com/chadthrottle/chadthrottle/backends/kernel/socktarget"
	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
	"github.com/chadthrottle/chadthrottle/backends/throttle/tc"
)

// pair is an upload and a download throttler that key on socket tags.
type pair struct {
	name string
	up   *backends.Descriptor[backends.UploadThrottleBackend]
	down *backends.Descriptor[backends.DownloadThrottleBackend]
}

var pairs = []pair{
	{"ebpf", ebpf.Upload, ebpf.Download},
	{"tc", tc.HTBUpload, tc.IFBDownload},
}

// requireTagger skips when the kernel cannot tag sockets (loudly, in CI too:
// the helper then falls back to moving processes).
func requireTagger(t testing.TB) {
	t.Helper()
	testenv.RequireRoot(t)
	if err := socktarget.Probe(); err != nil {
		testenv.KernelLacks(t, "socket tagging at creation", err)
	}
}

// newManager returns an initialised manager with p's throttlers on the
// bed's local namespace and the socket tagger as its placer.
func newManager(t testing.TB, bed *testenv.Bed, p pair) (*backends.Manager, *socktarget.Placer) {
	t.Helper()
	var pl *socktarget.Placer
	m := managerWith(t, bed, p, "st", func(o backends.Options) backends.Placer {
		pl = socktarget.NewPlacer(o)
		return pl
	})
	return m, pl
}

// sourceBed returns a bed with a ctload source (downloads) on the peer's
// port 5201, a manager with p's throttlers and the socket tagger, and a
// copy of ctload: a file of its own, so the server's copy is another app.
func sourceBed(t testing.TB, p pair) (*testenv.Bed, *backends.Manager, string) {
	t.Helper()
	bed := testenv.NewBed(t)
	m, _ := newManager(t, bed, p)
	bed.StartServer(bed.Peer, "source", "[::]:5201", false)
	return bed, m, copyExe(t, testenv.Ctload(t))
}

// managerWith returns an initialised manager with p's throttlers on the
// bed's local namespace and the placer place makes; it is cleaned up with
// the test.
func managerWith(t testing.TB, bed *testenv.Bed, p pair, tag string, place func(backends.Options) backends.Placer) *backends.Manager {
	t.Helper()
	o := backends.Options{NetNS: testenv.Path(bed.Local), Tag: testenv.UniqueName(tag)}
	for _, probe := range []func(backends.Options) error{p.up.Probe, p.down.Probe} {
		if err := probe(o); err != nil {
			testenv.KernelLacks(t, p.name+" throttling", err)
		}
	}
	up, err := p.up.New(o)
	if err != nil {
		t.Fatal(err)
	}
	down, err := p.down.New(o)
	if err != nil {
		t.Fatal(err)
	}
	m, err := backends.NewManager(up, down, nil, place(o))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Init(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Cleanup(); err != nil {
			t.Errorf("manager cleanup: %v", err)
		}
	})
	return m
}

// appRule limits the executable at path (as uid 0) before it runs.
func appRule(t testing.TB, m *backends.Manager, path string, l backends.Limits) string {
	t.Helper()
	id := "app-" + filepath.Base(path)
	if err := m.Apply(backends.Target{ID: id, Kind: backends.TargetApp, Exe: path}, l); err != nil {
		t.Fatalf("rule on %s: %v", path, err)
	}
	return id
}

// copyExe copies the executable at path to a temporary file: another file,
// so a rule on path does not match the copy (servers in the peer run
// one) and a rule on the copy matches nothing else.
func copyExe(t testing.TB, path string) string {
	t.Helper()
	src, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst := filepath.Join(t.TempDir(), filepath.Base(path)+"-copy")
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, src); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// download runs a real HTTP client (curl or wget) in the bed's local
// namespace fetching n bytes from the peer's ctload HTTP source and polls
// what its socket received every 250 ms. It returns the readings and the
// client's run time. It may run on any goroutine.
func download(bed *testenv.Bed, counter *testenv.TCPCounter, client string, n int) ([]testenv.Sample, time.Duration, error) {
	url := "http://" + bed.PeerIP + ":8080/" + strconv.Itoa(n)
	var cmd *exec.Cmd
	switch client {
	case "curl":
		cmd = bed.Command(bed.Local, "curl", "-sS", "-m", "30", "-o", "/dev/null", url)
	case "wget":
		cmd = bed.Command(bed.Local, "wget", "-q", "-T", "30", "-t", "1", "-O", "/dev/null", url)
	default:
		return nil, 0, fmt.Errorf("unknown client %s", client)
	}
	cmd.Stderr = os.Stderr
	stop := make(chan struct{})
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, 0, err
	}
	samples := counter.Poll(false, 250*time.Millisecond, stop, cmd.Process.Pid)
	err := cmd.Wait()
	took := time.Since(start)
	close(stop)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", client, err)
	}
	return samples(), took, nil
}

// windows returns the rates (B/s) of consecutive 1-s windows from the
// first reading on, as iperf3 reports intervals; when what is left at the
// end spans at least half a second, the last second of the transfer is one
// more window (a partial window's rate would stretch a fraction of a second
// to a whole one: 1.3 MB arriving in the last 0.5 s read as 2.6 MB/s while
// no second carried more than 2.16 MB).
func windows(s []testenv.Sample) []float64 {
	var out []float64
	i := 0
	for j := 1; j < len(s); j++ {
		dt := s[j].T - s[i].T
		switch {
		case dt >= 1:
			out = append(out, float64(s[j].Total-s[i].Total)/dt)
			i = j
		case j == len(s)-1 && dt >= 0.5:
			k := j
			for k > 0 && s[j].T-s[k].T < 1 {
				k--
			}
			out = append(out, float64(s[j].Total-s[k].Total)/(s[j].T-s[k].T))
		}
	}
	return out
}

// worstWindow returns the highest rate (B/s) over any window of about
// span in the readings (sliding by one reading), from the first reading on.
func worstWindow(s []testenv.Sample, span time.Duration) float64 {
	worst := 0.0
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			dt := s[j].T - s[i].T
			if dt < span.Seconds()*0.95 {
				continue
			}
			if r := float64(s[j].Total-s[i].Total) / dt; r > worst {
				worst = r
			}
			break
		}
	}
	if worst == 0 && len(s) > 1 { // shorter than one window: all of it
		worst = float64(s[len(s)-1].Total)
	}
	return worst
}

// iperfInterval is one interval of iperf3's JSON report.
type iperfInterval struct {
	Sum struct {
		Start, End float64
		Bytes      float64
	} `json:"sum"`
}

type iperfReport struct {
	Intervals        []iperfInterval `json:"intervals"`
	ServerOutputJSON *struct {
		Intervals []iperfInterval `json:"intervals"`
	} `json:"server_output_json"`
	Error string `json:"error"`
}

// iperf runs iperf3 (the real binary, with the rule) in the local namespace
// against the peer's server for secs seconds and returns the receiver's
// per-second byte counts: the client's for a download (-R), the server's
// otherwise.
func iperf(t testing.TB, bed *testenv.Bed, secs int, args ...string) []float64 {
	t.Helper()
	a := append([]string{"-c", bed.PeerIP, "-p", "5301", "-t", strconv.Itoa(secs), "-J", "--get-server-output"}, args...)
	out, err := bed.Command(bed.Local, "iperf3", a...).Output()
	var rep iperfReport
	if jerr := json.Unmarshal(out, &rep); jerr != nil || rep.Error != "" {
		t.Fatalf("iperf3 %v: %v %v %s", args, err, jerr, rep.Error)
	}
	iv := rep.Intervals
	reverse := false
	for _, x := range args {
		reverse = reverse || x == "-R"
	}
	if !reverse {
		if rep.ServerOutputJSON == nil {
			t.Fatalf("iperf3 %v: no server output", args)
		}
		iv = rep.ServerOutputJSON.Intervals
	}
	var out2 []float64
	for _, x := range iv {
		if d := x.Sum.End - x.Sum.Start; d > 0.5 {
			out2 = append(out2, x.Sum.Bytes/d)
		}
	}
	return out2
}

// startIperfServer runs a copy of iperf3 (not matched by a rule on
// iperf3) as a server in the peer.
func startIperfServer(t testing.TB, bed *testenv.Bed) {
	t.Helper()
	testenv.RequireTool(t, "iperf3")
	bin, _ := exec.LookPath("iperf3")
	cmd := bed.Command(bed.Peer, copyExe(t, bin), "-s", "-J", "-p", "5301")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	time.Sleep(200 * time.Millisecond)
}

// readExe returns what /proc/PID/exe names.
func readExe(pid int) string {
	s, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	return s
}

func mb(r float64) string { return fmt.Sprintf("%.2f MB/s", r/1e6) }

// ints rounds rates for logs.
func ints(r []float64) []int64 {
	out := make([]int64, len(r))
	for i, x := range r {
		out[i] = int64(x)
	}
	return out
}

// bedAt returns the plain bed for a round trip of 0, else a bed whose
// hosts are rtt apart (testenv.NewBedRTT).
func bedAt(t testing.TB, rtt time.Duration) *testenv.Bed {
	if rtt == 0 {
		return testenv.NewBed(t)
	}
	return testenv.NewBedRTT(t, rtt)
}

// ratios formats rates as multiples of limit.
func ratios(r []float64, limit float64) []string {
	out := make([]string, len(r))
	for i, x := range r {
		out[i] = fmt.Sprintf("%.2f", x/limit)
	}
	return out
}
