package engine

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/helper/api"
)

func writeDesktop(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestGroupingByUserAndExecutable(t *testing.T) {
	b := newBench(t, func(p *fakeProc) {
		p.add(fp{pid: 100, ppid: 1, uid: 1000, exe: "/usr/lib/firefox/firefox"})
		p.add(fp{pid: 101, ppid: 100, uid: 1000, exe: "/usr/lib/firefox/firefox", comm: "Web Content"})
		p.add(fp{pid: 200, ppid: 1, uid: 1001, exe: "/usr/lib/firefox/firefox"})
		p.add(fp{pid: 300, ppid: 1, uid: 1000, exe: "/usr/bin/curl (deleted)"})
		p.add(fp{pid: 2, ppid: 0, uid: 0, comm: "kthreadd", kthread: true})
		p.add(fp{pid: 10, ppid: 2, uid: 0, comm: "kworker/0:1-events", kthread: true})
		p.add(fp{pid: 11, ppid: 2, uid: 0, comm: "kworker/1:2", kthread: true})
		p.add(fp{pid: 400, ppid: 1, uid: 1000, comm: "zombie"}) // no exe
	})
	// Every app shows: user processes even without traffic; kernel threads
	// only with traffic.
	want := map[string][]int32{
		"1000:/usr/lib/firefox/firefox": {100, 101},
		"1001:/usr/lib/firefox/firefox": {200},
		"1000:/usr/bin/curl":            {300},
		"1000:[zombie]":                 {400},
	}
	snap := b.e.Snapshot()
	got := map[string][]int32{}
	for _, a := range snap.Apps {
		got[a.ID] = a.PIDs
	}
	for id, pids := range want {
		if !slices.Equal(got[id], pids) {
			t.Errorf("app %s: pids %v, want %v", id, got[id], pids)
		}
	}
	if _, ok := got["0:[kworker]"]; ok {
		t.Errorf("idle kernel threads are listed: %v", got)
	}
	// Kernel threads are grouped by the comm before the slash and appear
	// once they have traffic.
	b.mon.Add(backends.ProcessInfo{PID: 10, Comm: "kworker/0:1-events", StartTime: 100}, backends.Counters{RxBytes: 10})
	b.step()
	a, ok := b.app("0:[kworker]")
	if !ok || !slices.Equal(a.PIDs, []int32{10, 11}) || a.Name != "[kworker]" || a.RxBytes != 10 {
		t.Errorf("kworker app = %+v (found %v), want pids [10 11], 10 bytes", a, ok)
	}
	fx, _ := b.app("1000:/usr/lib/firefox/firefox")
	if fx.Exe != "/usr/lib/firefox/firefox" || fx.UID != 1000 || fx.Name != "firefox" {
		t.Errorf("firefox app = %+v", fx)
	}
	if len(snap.Apps) != len(want) {
		t.Errorf("snapshot has %d apps, want %d: %v", len(snap.Apps), len(want), got)
	}
}

func TestExecMovesProcessToNewApp(t *testing.T) {
	b := newBench(t, func(p *fakeProc) {
		p.add(fp{pid: 100, ppid: 1, uid: 1000, exe: "/usr/bin/bash"})
	})
	// fork + exec: same pid and start time, new executable.
	b.proc.add(fp{pid: 100, ppid: 1, uid: 1000, exe: "/usr/bin/wget"})
	b.scan()
	if k := b.e.st.procs[100].key; k != (appKey{1000, "/usr/bin/wget"}) {
		t.Fatalf("after exec and one quick scan, process 100 is in app %v", k)
	}
	b.step()
	if a, ok := b.app("1000:/usr/bin/wget"); !ok || !slices.Equal(a.PIDs, []int32{100}) {
		t.Fatalf("wget app after exec = %+v (found %v)", a, ok)
	}
	if a, ok := b.app("1000:/usr/bin/bash"); ok {
		t.Errorf("bash app still listed after exec: %+v", a)
	}
	// pid reuse: a different start time is a different process.
	b.proc.add(fp{pid: 100, ppid: 1, uid: 1001, exe: "/usr/bin/ssh", start: 99999})
	b.step()
	if a, ok := b.app("1001:/usr/bin/ssh"); !ok || !slices.Equal(a.PIDs, []int32{100}) {
		t.Errorf("ssh app after pid reuse = %+v (found %v)", a, ok)
	}
	if _, ok := b.app("1000:/usr/bin/wget"); ok {
		t.Errorf("wget still listed after its pid was reused")
	}
}

func TestDesktopNames(t *testing.T) {
	var b *bench
	userDir := filepath.Join(publicTempDir(t), "home1000-apps") // read as uid 1000
	sysDir := ""
	b = newBench(t, func(p *fakeProc) {
		p.add(fp{pid: 100, ppid: 1, uid: 1000, exe: "/usr/lib/firefox/firefox"})
		p.add(fp{pid: 101, ppid: 1, uid: 1001, exe: "/usr/lib/firefox/firefox"})
		p.add(fp{pid: 102, ppid: 1, uid: 1000, exe: "/opt/gimp/bin/gimp-2.10"})
		p.add(fp{pid: 103, ppid: 1, uid: 1000, exe: "/usr/bin/python3.11"})
		p.add(fp{pid: 104, ppid: 1, uid: 1000, exe: "/app/bin/foo-bin",
			cgroup: "/user.slice/user-1000.slice/user@1000.service/app.slice/app-flatpak-org.example.Foo-4242.scope"})
		p.add(fp{pid: 105, ppid: 1, uid: 1000, exe: "/usr/bin/nodesktop"})
	}, func(b *bench, c *Config) {
		sysDir = b.apps
		writeDesktop(t, b.apps, "firefox.desktop", "[Desktop Entry]\nType=Application\nName=Firefox\nName[de]=Feuerfuchs\nIcon=firefox\nExec=/usr/lib/firefox/firefox %u\n[Desktop Action new]\nName=New Window\nExec=other\n")
		writeDesktop(t, b.apps, "gimp.desktop", "[Desktop Entry]\nType=Application\nName=GNU Image\\sManipulation\nIcon=gimp\nExec=env GDK_BACKEND=x11 gimp-2.10 %U\n")
		writeDesktop(t, b.apps, "script.desktop", "[Desktop Entry]\nType=Application\nName=Some Script\nExec=python3.11 /usr/share/script.py\n")
		writeDesktop(t, b.apps, "hidden.desktop", "[Desktop Entry]\nType=Application\nName=Hidden\nHidden=true\nExec=/usr/bin/nodesktop\n")
		writeDesktop(t, filepath.Join(b.apps, "sub"), "org.example.Foo.desktop", "# flatpak export\n[Desktop Entry]\nType=Application\nName=Foo\nIcon=org.example.Foo\nExec=/usr/bin/flatpak run org.example.Foo\n")
		writeDesktop(t, b.apps, "org.example.Foo.desktop", "[Desktop Entry]\nType=Application\nName=Foo App\nIcon=org.example.Foo\nExec=/usr/bin/flatpak run --branch=stable org.example.Foo\n")
		writeDesktop(t, userDir, "firefox.desktop", "[Desktop Entry]\nType=Application\nName=My Firefox\nIcon=/home/u/ff.png\nExec=\"/usr/lib/firefox/firefox\" -P mine\n")
		b.users[1000] = userDir
	})
	_ = sysDir
	b.settleDesktop()
	cases := []struct{ id, name, icon string }{
		{"1000:/usr/lib/firefox/firefox", "My Firefox", "/home/u/ff.png"}, // the user's own entry wins
		{"1001:/usr/lib/firefox/firefox", "Firefox", "firefox"},
		{"1000:/opt/gimp/bin/gimp-2.10", "GNU Image Manipulation", "gimp"}, // by basename, env skipped
		{"1000:/usr/bin/python3.11", "python3.11", ""},                     // interpreters never take a script's name
		{"1000:/app/bin/foo-bin", "Foo App", "org.example.Foo"},            // by flatpak id from the scope
		{"1000:/usr/bin/nodesktop", "nodesktop", ""},                       // Hidden entries are ignored
	}
	for _, c := range cases {
		a, ok := b.app(c.id)
		if !ok {
			t.Errorf("app %s missing", c.id)
			continue
		}
		if a.Name != c.name || a.Icon != c.icon {
			t.Errorf("app %s: name %q icon %q, want %q %q", c.id, a.Name, a.Icon, c.name, c.icon)
		}
	}
}

func TestRatesTotalsAndExitedProcesses(t *testing.T) {
	b := newBench(t, func(p *fakeProc) {
		p.add(fp{pid: 100, ppid: 1, uid: 1000, exe: "/usr/bin/wget"})
		p.add(fp{pid: 101, ppid: 1, uid: 1000, exe: "/usr/bin/wget"})
	})
	info := func(pid int) backends.ProcessInfo {
		return backends.ProcessInfo{PID: pid, UID: 1000, Exe: "/usr/bin/wget", Comm: "wget", StartTime: uint64(pid) * 10}
	}
	const id = "1000:/usr/bin/wget"
	check := func(step string, rx, tx, rxTotal, txTotal uint64) {
		t.Helper()
		a, ok := b.app(id)
		if !ok {
			t.Fatalf("%s: app missing", step)
		}
		if a.RxRate != rx || a.TxRate != tx || a.RxBytes != rxTotal || a.TxBytes != txTotal {
			t.Errorf("%s: rates %d/%d totals %d/%d, want %d/%d %d/%d", step, a.RxRate, a.TxRate, a.RxBytes, a.TxBytes, rx, tx, rxTotal, txTotal)
		}
	}
	b.mon.Add(info(100), backends.Counters{RxBytes: 1000, TxBytes: 100})
	b.mon.Add(info(101), backends.Counters{RxBytes: 500})
	b.step()
	check("first second", 1500, 100, 1500, 100)

	b.mon.Add(info(100), backends.Counters{RxBytes: 300})
	b.step()
	check("second second", 300, 0, 1800, 100)

	// 100 sends its last 200 bytes and exits: reported once more with
	// Exited, then dropped; its bytes stay in the totals.
	b.mon.Add(info(100), backends.Counters{RxBytes: 200})
	b.mon.Exit(100)
	b.proc.remove(100)
	b.step()
	check("exit second", 200, 0, 2000, 100)
	b.step()
	check("after exit", 0, 0, 2000, 100)
	if a, _ := b.app(id); !slices.Equal(a.PIDs, []int32{101}) {
		t.Errorf("pids after exit = %v, want [101]", a.PIDs)
	}

	// A process dropped by the monitor without an exit report keeps its
	// bytes too; so does an app whose processes are all gone.
	b.mon.Add(info(102), backends.Counters{RxBytes: 50})
	b.step()
	check("short-lived process", 50, 0, 2050, 100)
	b.mon.Exit(101)
	b.mon.Exit(102)
	b.proc.remove(101)
	b.step()
	b.step()
	a, ok := b.app(id)
	if !ok || a.RxBytes != 2050 || len(a.PIDs) != 0 {
		t.Errorf("app with no processes left = %+v (found %v), want 2050 bytes kept", a, ok)
	}
	// A rate over 2 s is per second.
	b.proc.add(fp{pid: 103, ppid: 1, uid: 1000, exe: "/usr/bin/wget"})
	b.mon.Add(info(103), backends.Counters{RxBytes: 4000})
	b.mon.advance(1e9)
	b.step()
	check("two-second interval", 2000, 0, 6050, 100)
}

func TestSnapshotTotalsUnknownAndHistory(t *testing.T) {
	b := newBench(t, func(p *fakeProc) {
		p.add(fp{pid: 100, ppid: 1, uid: 1000, exe: "/usr/bin/wget"})
	})
	info := backends.ProcessInfo{PID: 100, UID: 1000, Exe: "/usr/bin/wget", StartTime: 1000}
	for i := 1; i <= api.HistoryLen+5; i++ {
		b.mon.Add(info, backends.Counters{RxBytes: uint64(i), TxBytes: uint64(2 * i)})
		b.mon.AddUnknown(backends.Counters{RxBytes: 7, TxBytes: 3})
		b.step()
	}
	s := b.e.Snapshot()
	n := uint64(api.HistoryLen + 5)
	last := n
	if s.RxRate != last+7 || s.TxRate != 2*last+3 || s.UnknownRate != 10 {
		t.Errorf("snapshot rates rx %d tx %d unknown %d, want %d %d 10", s.RxRate, s.TxRate, s.UnknownRate, last+7, 2*last+3)
	}
	sum := n * (n + 1) / 2
	if s.RxBytes != sum+7*n || s.TxBytes != 2*sum+3*n {
		t.Errorf("snapshot totals %d/%d, want %d/%d", s.RxBytes, s.TxBytes, sum+7*n, 2*sum+3*n)
	}
	d, err := b.e.AppDetails("1000:/usr/bin/wget")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.History) != api.HistoryLen {
		t.Fatalf("history has %d samples, want %d", len(d.History), api.HistoryLen)
	}
	for i, smp := range d.History {
		want := uint64(6 + i) // oldest first: samples 6..65
		if smp.RxRate != want || smp.TxRate != 2*want {
			t.Fatalf("history[%d] = %+v, want rx %d tx %d", i, smp, want, 2*want)
		}
	}
	ph, err := b.e.ProcessHistory(100)
	if err != nil || len(ph) != api.HistoryLen || ph[api.HistoryLen-1].RxRate != n {
		t.Errorf("process history: %d samples, last %+v, err %v", len(ph), ph[len(ph)-1], err)
	}
	if _, err := b.e.AppDetails("1000:/nope"); err == nil {
		t.Error("AppDetails of an unknown app succeeded")
	}
}

func TestConnectionsAndDetails(t *testing.T) {
	b := newBench(t, func(p *fakeProc) {
		p.add(fp{pid: 100, ppid: 1, uid: 1000, exe: "/usr/bin/ssh", cmdline: []string{"ssh", "-v", "host"}})
	})
	info := backends.ProcessInfo{PID: 100, UID: 1000, Exe: "/usr/bin/ssh", StartTime: 1000}
	inet := backends.Conn{Proto: backends.TCP, Local: netip.MustParseAddrPort("192.168.1.2:40000"),
		Remote: netip.MustParseAddrPort("[::ffff:93.184.216.34]:443"), Counters: backends.Counters{RxBytes: 1000, TxBytes: 10}}
	lan := backends.Conn{Proto: backends.UDP, Local: netip.MustParseAddrPort("[fd77::2]:5353"),
		Remote: netip.MustParseAddrPort("[fd77::1]:53"), Counters: backends.Counters{RxBytes: 40, TxBytes: 20}}
	b.mon.Add(info, backends.Counters{RxBytes: 1040, TxBytes: 30}, inet, lan)
	b.step()
	d, err := b.e.AppDetails("1000:/usr/bin/ssh")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Processes) != 1 || d.Processes[0].Cmdline != "ssh -v host" || d.Processes[0].RxRate != 1040 || d.Processes[0].PPID != 1 {
		t.Errorf("processes = %+v", d.Processes)
	}
	if len(d.Connections) != 2 {
		t.Fatalf("connections = %+v", d.Connections)
	}
	c0, c1 := d.Connections[0], d.Connections[1]
	if c0.Remote != "93.184.216.34:443" || c0.Traffic != api.TrafficInternet || c0.Proto != "tcp" || c0.RxRate != 1000 || c0.PID != 100 {
		t.Errorf("internet connection = %+v", c0)
	}
	if c1.Remote != "[fd77::1]:53" || c1.Traffic != api.TrafficLocal || c1.TxRate != 20 {
		t.Errorf("local connection = %+v", c1)
	}
}

func TestDesktopRefreshAndUIDChange(t *testing.T) {
	b := newBench(t, func(p *fakeProc) {
		p.add(fp{pid: 100, ppid: 1, uid: 0, exe: "/usr/bin/newapp"})
	})
	if a, _ := b.app("0:/usr/bin/newapp"); a.Name != "newapp" {
		t.Fatalf("name before the .desktop file exists: %q", a.Name)
	}
	// A package installs a .desktop file: picked up at the next refresh.
	writeDesktop(t, b.apps, "newapp.desktop", "[Desktop Entry]\nType=Application\nName=New App\nIcon=new-app\nExec=newapp\nTryExec=/usr/bin/newapp\n")
	os.Chtimes(b.apps, time.Now().Add(time.Second), time.Now().Add(time.Second))
	b.e.desk.lastCheck = time.Time{}
	b.step()
	if a, _ := b.app("0:/usr/bin/newapp"); a.Name != "New App" || a.Icon != "new-app" {
		t.Errorf("after refresh: %q %q", a.Name, a.Icon)
	}
	// A young process that drops privileges (login, su) changes app.
	b.proc.add(fp{pid: 100, ppid: 1, uid: 1000, exe: "/usr/bin/newapp", start: 1000})
	b.scan()
	if k := b.e.st.procs[100].key; k != (appKey{1000, "/usr/bin/newapp"}) {
		t.Errorf("after one quick scan the process is in app %v", k)
	}
	b.step()
	if a, ok := b.app("1000:/usr/bin/newapp"); !ok || !slices.Equal(a.PIDs, []int32{100}) {
		t.Errorf("process did not follow its uid change: %+v", b.e.Snapshot().Apps)
	}
	if a, _ := b.app("0:/usr/bin/newapp"); len(a.PIDs) != 0 {
		t.Errorf("root's app still holds the process: %+v", a)
	}
}
