//go:build bench

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends/testsupport/testenv"
)

// TestBenchGUI measures the real GUI binary under Xvfb (Mesa's llvmpipe
// renders in software, in the GUI's own process, so the figures include
// drawing that a GPU would do) with the test-only synthetic source of 200
// apps refreshing at 1 Hz: CPU share of one core and memory, with the
// window idle, with an app's details open, closed to the tray, and started
// hidden (the tray-only mode, without Fyne's driver).
func TestBenchGUI(t *testing.T) {
	testenv.RequireTool(t, "xdotool")
	display := testenv.StartXvfb(t)
	host := startTrayHost(t) // closing the window hides it to the tray
	busAddr := host.addr
	const apps = 200
	// CT_BENCH_GUI_ENV="GOGC=50 …" adds to the GUI's environment, to
	// compare runtime settings.
	env := append([]string{"DISPLAY=" + display, "DBUS_SESSION_BUS_ADDRESS=" + busAddr, envSynthetic + "=" + strconv.Itoa(apps)},
		strings.Fields(os.Getenv("CT_BENCH_GUI_ENV"))...)
	g := startGUI(t, env)
	pid := g.cmd.Process.Pid
	time.Sleep(10 * time.Second) // start-up, font caches
	xdoRun := func(args ...string) {
		cmd := exec.Command("xdotool", args...)
		cmd.Env = append(os.Environ(), "DISPLAY="+display)
		cmd.Run()
	}
	measure := func(d time.Duration) (cpu, rss, peak float64) {
		c0, t0 := testenv.ProcCPU(pid), time.Now()
		time.Sleep(d)
		c1, t1 := testenv.ProcCPU(pid), time.Now()
		m := testenv.ProcStatusMB(t, pid, "VmRSS", "VmHWM")
		rss, peak = m[0], m[1]
		return 100 * float64(c1-c0) / float64(t1.Sub(t0)), rss, peak
	}
	const window = 30 * time.Second
	type row struct {
		name           string
		cpu, rss, peak float64
	}
	var rows []row
	cpu, rss, peak := measure(window)
	rows = append(rows, row{"window open, list only", cpu, rss, peak})
	xdoRun("mousemove", "150", "130", "click", "1") // select the top app: details + graph
	time.Sleep(2 * time.Second)
	cpu, rss, peak = measure(window)
	rows = append(rows, row{"window open, details shown", cpu, rss, peak})
	// scroll through the list while measuring: recycled rows
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 40; i++ {
			xdoRun("mousemove", "600", "300", "click", "5")
			time.Sleep(250 * time.Millisecond)
		}
	}()
	cpu, rss, peak = measure(10 * time.Second)
	<-done
	rows = append(rows, row{"scrolling the list (4 wheel steps/s)", cpu, rss, peak})
	parts := testenv.ProcStatusMB(t, pid, "RssAnon", "RssFile")
	anon, file := parts[0], parts[1]
	xdoRun("key", "ctrl+w") // close: the process runs the tray only (exec, same pid)
	time.Sleep(5 * time.Second)
	cpu, rss, peak = measure(window)
	rows = append(rows, row{"window closed to the tray (tray only)", cpu, rss, peak})

	// the login autostart: --hidden from the start, a tray host of its
	// own; the menu opened once (polls at 1 Hz for 15 s), then left alone
	host2 := startTrayHost(t)
	h := startGUI(t, []string{"DISPLAY=" + display, "DBUS_SESSION_BUS_ADDRESS=" + host2.addr, envSynthetic + "=" + strconv.Itoa(apps)}, "--hidden")
	item := host2.waitItem(t, h)
	time.Sleep(5 * time.Second)
	pid = h.cmd.Process.Pid
	cpu, rss, peak = measure(window)
	rows = append(rows, row{"hidden at start (tray only)", cpu, rss, peak})
	item.openMenu()
	cpu, rss, peak = measure(15 * time.Second)
	rows = append(rows, row{"tray only, menu opened (1 Hz polls)", cpu, rss, peak})
	for _, c := range item.layout().Children { // a limit: the icon shows it, polls every 10 s
		if q, ok := c.find("1 MB/s"); ok {
			item.click(q)
			break
		}
	}
	time.Sleep(16 * time.Second) // the menu's 15 s of polls are over
	cpu, rss, peak = measure(window)
	rows = append(rows, row{"tray only, an app limited (10 s polls)", cpu, rss, peak})

	// the floor: a bare Fyne window of the same size, one label changing
	// once a second (testdata/barewindow), on the same X server
	bare := startBareWindow(t, display)
	time.Sleep(8 * time.Second)
	pid = bare.Process.Pid
	cpu, rss, peak = measure(window)
	rows = append(rows, row{"floor: bare Fyne window, 1 paint/s", cpu, rss, peak})

	fmt.Printf("\nGUI cost, real binary under Xvfb (llvmpipe), %d synthetic apps at 1 Hz, %d CPUs\n", apps, numCPU())
	fmt.Printf("%-40s %10s %10s %12s\n", "scenario", "CPU %core", "RSS MB", "peak RSS MB")
	for _, r := range rows {
		fmt.Printf("%-40s %10.2f %10.1f %12.1f\n", r.name, r.cpu, r.rss, r.peak)
	}
	fmt.Printf("RSS with the window open: %.1f MB anonymous (heap, textures) + %.1f MB file-backed (mapped libraries: Mesa/LLVM, X, Go binary)\n", anon, file)
	fmt.Printf("targets (#17): window open <= 3 %% of a core, hidden in the tray <= 0.3 %%, RSS <= 150 MB\n")
	fmt.Printf("the floor row is Fyne's 60 Hz event loop, one paint of a near-empty %dx%d window a second and Mesa/LLVM mapped:\n", defaultW, defaultH)
	fmt.Printf("what the window open costs above it is ours (drawing: llvmpipe shades every pixel of every object each paint)\n\n")
	select {
	case <-g.exited:
		t.Fatalf("the GUI exited during the benchmark:\n%s", g.out.String())
	case <-h.exited:
		t.Fatalf("the hidden GUI exited during the benchmark:\n%s", h.out.String())
	default:
	}
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}

const defaultW, defaultH = 1240, 780 // gui/geometry.go: defaultSize

// startBareWindow builds and runs testdata/barewindow on display; killed
// at the end.
func startBareWindow(t *testing.T, display string) *exec.Cmd {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "barewindow")
	if out, err := exec.Command("go", "build", "-tags", prodTags, "-o", bin, "./testdata/barewindow").CombinedOutput(); err != nil {
		t.Fatalf("build testdata/barewindow: %v\n%s", err, out)
	}
	home := t.TempDir()
	cmd := exec.Command(bin, strconv.Itoa(defaultW), strconv.Itoa(defaultH))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_RUNTIME_DIR=" + home, "LANG=C.UTF-8", "DISPLAY=" + display}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start barewindow: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}
