package packaging

import (
	"bufio"
	"encoding/xml"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/chadthrottle/chadthrottle/gui"
	"github.com/chadthrottle/chadthrottle/helper/api"
)

// repoRoot is the module root: this package's directory is packaging/.
func repoRoot(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(wd)
}

func readFile(t testing.TB, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func srcOf(t testing.TB, dst string) string {
	t.Helper()
	for _, f := range Files() {
		if f.Dst == dst {
			return f.Src
		}
	}
	t.Fatalf("Files lists no %s", dst)
	return ""
}

// keyFile parses a desktop-entry style file (.desktop, D-Bus .service,
// systemd unit) into group → key → values (a key may repeat).
func keyFile(t testing.TB, text string) map[string]map[string][]string {
	t.Helper()
	groups := map[string]map[string][]string{}
	var cur map[string][]string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			cur = map[string][]string{}
			groups[line[1:len(line)-1]] = cur
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || cur == nil {
				t.Fatalf("malformed line %q", line)
			}
			cur[k] = append(cur[k], v)
		}
	}
	return groups
}

func one(t testing.TB, g map[string][]string, key string) string {
	t.Helper()
	if len(g[key]) != 1 {
		t.Fatalf("key %s: want exactly one value, have %q", key, g[key])
	}
	return g[key][0]
}

// TestNamesMatchAPI checks that the packaging files carry exactly the names
// of helper/api: bus name, interface, polkit actions; and the paths of Files.
func TestNamesMatchAPI(t *testing.T) {
	t.Run("bus policy", func(t *testing.T) {
		var conf struct {
			Policies []struct {
				User    string `xml:"user,attr"`
				Context string `xml:"context,attr"`
				Allow   []struct {
					Own       string `xml:"own,attr"`
					Dest      string `xml:"send_destination,attr"`
					Interface string `xml:"send_interface,attr"`
				} `xml:"allow"`
				Deny []struct{} `xml:"deny"`
			} `xml:"policy"`
		}
		if err := xml.Unmarshal([]byte(readFile(t, srcOf(t, "/usr/share/dbus-1/system.d/"+api.BusName+".conf"))), &conf); err != nil {
			t.Fatal(err)
		}
		var owners, ifaces []string
		for _, p := range conf.Policies {
			for _, a := range p.Allow {
				if a.Own != "" {
					if p.User != "root" {
						t.Errorf("policy lets %q (context %q) own %s; only root may", p.User, p.Context, a.Own)
					}
					owners = append(owners, a.Own)
				}
				if a.Dest != "" {
					if a.Dest != api.BusName {
						t.Errorf("send_destination %q, want %q", a.Dest, api.BusName)
					}
					if p.Context != "default" {
						t.Errorf("send rule for %s in policy user=%q; anyone may call (polkit decides)", a.Interface, p.User)
					}
					ifaces = append(ifaces, a.Interface)
				}
			}
		}
		if !slices.Equal(owners, []string{api.BusName}) {
			t.Errorf("owned names %q, want only %q", owners, api.BusName)
		}
		sort.Strings(ifaces)
		want := []string{api.Interface, "org.freedesktop.DBus.Introspectable", "org.freedesktop.DBus.Peer", "org.freedesktop.DBus.Properties"}
		sort.Strings(want)
		if !slices.Equal(ifaces, want) {
			t.Errorf("callable interfaces %q, want %q", ifaces, want)
		}
	})

	t.Run("activation file", func(t *testing.T) {
		kf := keyFile(t, readFile(t, srcOf(t, "/usr/share/dbus-1/system-services/"+api.BusName+".service")))
		g := kf["D-BUS Service"]
		if g == nil {
			t.Fatal("no [D-BUS Service] group")
		}
		if exec := strings.Fields(one(t, g, "Exec")); len(exec) == 0 || exec[0] != HelperPath {
			t.Errorf("Exec=%s, want %s", exec, HelperPath)
		}
		for key, want := range map[string]string{"Name": api.BusName, "User": "root", "SystemdService": UnitName} {
			if got := one(t, g, key); got != want {
				t.Errorf("%s=%s, want %s", key, got, want)
			}
		}
	})

	t.Run("systemd unit", func(t *testing.T) {
		kf := keyFile(t, readFile(t, srcOf(t, "/usr/lib/systemd/system/"+UnitName)))
		s := kf["Service"]
		if exec := strings.Fields(one(t, s, "ExecStart")); len(exec) == 0 || exec[0] != HelperPath {
			t.Errorf("ExecStart=%s, want %s", exec, HelperPath)
		}
		for key, want := range map[string]string{"Type": "dbus", "BusName": api.BusName,
			"StateDirectory": "chadthrottle", "RuntimeDirectory": "chadthrottle", "ProtectSystem": "strict",
			"ProtectHome": "read-only", "NoNewPrivileges": "yes", "PrivateTmp": "yes"} {
			if got := one(t, s, key); got != want {
				t.Errorf("%s=%s, want %s", key, got, want)
			}
		}
		if StateDir != "/var/lib/"+one(t, s, "StateDirectory") || RuntimeDir != "/run/"+one(t, s, "RuntimeDirectory") {
			t.Errorf("StateDirectory/RuntimeDirectory do not match %s, %s", StateDir, RuntimeDir)
		}
		caps := strings.Fields(one(t, s, "CapabilityBoundingSet"))
		sort.Strings(caps)
		wantCaps := []string{"CAP_BPF", "CAP_DAC_READ_SEARCH", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_PERFMON", "CAP_SETGID", "CAP_SETUID", "CAP_SYS_ADMIN", "CAP_SYS_NICE", "CAP_SYS_PTRACE"}
		if !slices.Equal(caps, wantCaps) {
			t.Errorf("CapabilityBoundingSet %q, want %q", caps, wantCaps)
		}
		rw := strings.Fields(strings.Join(s["ReadWritePaths"], " "))
		for _, p := range []string{StateDir, "/sys/fs/cgroup", RuntimeDir} {
			if !slices.Contains(rw, p) {
				t.Errorf("ReadWritePaths %q lacks %s", rw, p)
			}
		}
	})

	t.Run("polkit policy", func(t *testing.T) {
		var pc struct {
			Actions []struct {
				ID          string `xml:"id,attr"`
				Description string `xml:"description"`
				Message     string `xml:"message"`
				Defaults    struct {
					Any      string `xml:"allow_any"`
					Inactive string `xml:"allow_inactive"`
					Active   string `xml:"allow_active"`
				} `xml:"defaults"`
			} `xml:"action"`
		}
		if err := xml.Unmarshal([]byte(readFile(t, srcOf(t, "/usr/share/polkit-1/actions/"+AppID+".policy"))), &pc); err != nil {
			t.Fatal(err)
		}
		wantActive := map[string]string{api.ActionMonitor: "yes", api.ActionLimitOwn: "yes", api.ActionManage: "auth_admin_keep"}
		var ids []string
		for _, a := range pc.Actions {
			ids = append(ids, a.ID)
			if a.Defaults.Active != wantActive[a.ID] {
				t.Errorf("%s: allow_active=%q, want %q", a.ID, a.Defaults.Active, wantActive[a.ID])
			}
			for _, v := range []string{a.Defaults.Any, a.Defaults.Inactive} {
				if v == "yes" {
					t.Errorf("%s: allowed without an active session; only allow_active may say yes", a.ID)
				}
			}
			if len(a.Description) < 10 || len(a.Message) < 20 {
				t.Errorf("%s: description %q / message %q too short to tell the user what they authorize", a.ID, a.Description, a.Message)
			}
		}
		if !slices.Equal(ids, api.Actions) {
			t.Errorf("actions %q, want exactly %q", ids, api.Actions)
		}
	})

	t.Run("desktop files", func(t *testing.T) {
		app := keyFile(t, readFile(t, srcOf(t, "/usr/share/applications/"+AppID+".desktop")))["Desktop Entry"]
		for key, want := range map[string]string{"Exec": "chadthrottle", "Icon": AppID, "Categories": "Network;Monitor;", "Type": "Application"} {
			if got := one(t, app, key); got != want {
				t.Errorf(".desktop %s=%s, want %s", key, got, want)
			}
		}
		tray := keyFile(t, readFile(t, srcOf(t, "/etc/xdg/autostart/"+gui.AutostartFile)))["Desktop Entry"]
		for key, want := range map[string]string{"Exec": "chadthrottle --hidden", "Icon": AppID} {
			if got := one(t, tray, key); got != want {
				t.Errorf("autostart %s=%s, want %s", key, got, want)
			}
		}
	})

	t.Run("metainfo", func(t *testing.T) {
		var c struct {
			ID         string `xml:"id"`
			Launchable string `xml:"launchable"`
			Icon       string `xml:"icon"`
			Provides   struct {
				DBus     []string `xml:"dbus"`
				Binaries []string `xml:"binary"`
			} `xml:"provides"`
			Screenshots []struct {
				Caption string `xml:"caption"`
				Image   string `xml:"image"`
			} `xml:"screenshots>screenshot"`
		}
		if err := xml.Unmarshal([]byte(readFile(t, srcOf(t, "/usr/share/metainfo/"+AppID+".metainfo.xml"))), &c); err != nil {
			t.Fatal(err)
		}
		if c.ID != AppID || c.Launchable != AppID+".desktop" || c.Icon != AppID {
			t.Errorf("id %q launchable %q icon %q, want %s, %s.desktop, %s", c.ID, c.Launchable, c.Icon, AppID, AppID, AppID)
		}
		if !slices.Equal(c.Provides.DBus, []string{api.BusName}) || !slices.Equal(c.Provides.Binaries, []string{"chadthrottle", "chadthrottlectl"}) {
			t.Errorf("provides dbus %q binaries %q", c.Provides.DBus, c.Provides.Binaries)
		}
		if len(c.Screenshots) == 0 || c.Screenshots[0].Caption == "" || !strings.HasSuffix(c.Screenshots[0].Image, "/docs/screenshot.png") {
			t.Errorf("screenshots %+v: want one with a caption showing docs/screenshot.png", c.Screenshots)
		}
		// the URL points at the repository's main branch: the file must be there
		if _, err := os.Stat(filepath.Join(repoRoot(t), "docs", "screenshot.png")); err != nil {
			t.Errorf("the metainfo's screenshot is missing from the tree: %v", err)
		}
	})

	// Every product name in every packaging file is one helper/api or this
	// package defines: a typo (Helper2, io.github.chadthrottle.limit_own)
	// fails here.
	t.Run("no stray names", func(t *testing.T) {
		allowed := map[string]bool{api.ObjectPath: true, AppID: true}
		allowed[api.BusName], allowed[api.Interface] = true, true // the same string today
		for _, a := range api.Actions {
			allowed[a] = true
		}
		// error names (the helper's man page names one)
		for _, e := range []string{api.ErrNotAuthorized, api.ErrInvalidArgument, api.ErrNotFound, api.ErrUnavailable,
			api.ErrFailed, api.ErrQuotaExceeded, api.ErrTooManyCalls} {
			allowed[e] = true
		}
		for _, f := range Files() {
			allowed[filepath.Base(f.Dst)] = true
		}
		seen := map[string]bool{}
		re := regexp.MustCompile(`(io\.github\.chadthrottle[A-Za-z0-9_.-]*|/io/github/chadthrottle[A-Za-z0-9_/]*)`)
		root := repoRoot(t)
		err := filepath.WalkDir(filepath.Join(root, "packaging"), func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || strings.HasSuffix(p, ".go") {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for _, m := range re.FindAllString(string(b), -1) {
				m = strings.TrimRight(m, ".-")
				seen[m] = true
				if !allowed[m] {
					rel, _ := filepath.Rel(root, p)
					t.Errorf("%s mentions %q, which neither helper/api nor packaging.Files defines", rel, m)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, must := range append([]string{api.BusName, api.Interface}, api.Actions...) {
			if !seen[must] {
				t.Errorf("no packaging file mentions %s", must)
			}
		}
	})
}

// TestNFPMListsFiles checks that nfpm.yaml packages exactly Files, with
// their modes, and that the sources exist.
func TestNFPMListsFiles(t *testing.T) {
	var cfg struct {
		Contents []struct {
			Src      string `yaml:"src"`
			Dst      string `yaml:"dst"`
			Type     string `yaml:"type"`
			FileInfo struct {
				Mode uint32 `yaml:"mode"`
			} `yaml:"file_info"`
		} `yaml:"contents"`
		Scripts map[string]string `yaml:"scripts"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, "packaging/nfpm.yaml")), &cfg); err != nil {
		t.Fatal(err)
	}
	var got, want []File
	var dirs []Dir
	for _, c := range cfg.Contents {
		if c.Type == "dir" {
			dirs = append(dirs, Dir{c.Dst, os.FileMode(c.FileInfo.Mode)})
			continue
		}
		got = append(got, File{Src: strings.Replace(c.Src, "${BIN}/", "bin/", 1), Dst: c.Dst, Mode: os.FileMode(c.FileInfo.Mode), Config: c.Type == "config"})
	}
	want = Files()
	if !slices.Equal(got, want) {
		t.Errorf("nfpm.yaml contents differ from packaging.Files:\n got %v\nwant %v", got, want)
	}
	if !slices.Equal(dirs, Dirs) {
		t.Errorf("nfpm.yaml directories %v, want packaging.Dirs %v", dirs, Dirs)
	}
	root := repoRoot(t)
	for _, f := range want {
		if strings.HasPrefix(f.Src, "bin/") {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, f.Src)); err != nil {
			t.Errorf("source of %s: %v", f.Dst, err)
		}
	}
	// icons: every PNG size in assets is shipped, and only those
	pngs, _ := filepath.Glob(filepath.Join(root, "assets/icons/hicolor/*/apps/"+AppID+".png"))
	if len(pngs) != len(IconSizes) {
		t.Errorf("assets has %d PNG sizes, IconSizes lists %d: %q", len(pngs), len(IconSizes), pngs)
	}
	for stage, script := range cfg.Scripts {
		if _, err := os.Stat(filepath.Join(root, script)); err != nil {
			t.Errorf("script %s: %v", stage, err)
		}
	}
}
