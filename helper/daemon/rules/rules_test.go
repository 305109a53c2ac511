package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRoundTripAndPerUID(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s := open(t, dir)
	if len(s.All()) != 0 || len(s.Problems()) != 0 {
		t.Fatalf("new store: rules %v problems %v", s.All(), s.Problems())
	}
	a := api.Rule{Exe: "/usr/bin/firefox", UID: 1000, Limit: api.Limit{Down: 1000, Up: 2000, Traffic: "Internet"}}
	b := api.Rule{Exe: "/usr/bin/firefox", UID: 1001, Limit: api.Limit{Down: 5}}
	c := api.Rule{Exe: "/usr/bin/curl", UID: 1000, Limit: api.Limit{Up: 7, Traffic: "local"}}
	for _, r := range []api.Rule{a, b, c} {
		if err := s.Set(r); err != nil {
			t.Fatal(err)
		}
	}
	a.Limit.Traffic, b.Limit.Traffic = "internet", "all"
	want := []api.Rule{c, a, b} // uid, then exe
	if got := open(t, dir).All(); !slices.Equal(got, want) {
		t.Fatalf("reopened: %+v, want %+v", got, want)
	}
	// Removing uid 1000's firefox rule leaves uid 1001's.
	if ok, err := s.Remove("/usr/bin/firefox", 1000); !ok || err != nil {
		t.Fatalf("Remove: %v %v", ok, err)
	}
	if ok, err := s.Remove("/usr/bin/firefox", 1000); ok || err != nil {
		t.Fatalf("second Remove: %v %v", ok, err)
	}
	s2 := open(t, dir)
	if got := s2.All(); !slices.Equal(got, []api.Rule{c, b}) {
		t.Errorf("after remove: %+v", got)
	}
	if r, ok := s2.Get("/usr/bin/firefox", 1001); !ok || r != b {
		t.Errorf("Get = %+v %v", r, ok)
	}
	if _, ok := s2.Get("/usr/bin/firefox", 1000); ok {
		t.Error("Get found a removed rule")
	}
	// Only the rules file is in the directory: no temp files left.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != FileName {
		t.Errorf("state dir holds %v", entries)
	}
	st, _ := os.Stat(filepath.Join(dir, FileName))
	if st.Mode().Perm() != 0o644 {
		t.Errorf("rules file mode %v", st.Mode())
	}
}

func TestSetRejectsInvalid(t *testing.T) {
	s := open(t, t.TempDir())
	for _, r := range []api.Rule{
		{Exe: "firefox", Limit: api.Limit{Up: 1}},
		{Exe: "/usr/bin/x", Limit: api.Limit{}},
		{Exe: "/usr/bin/x", Limit: api.Limit{Up: 1 << 62}},
		{Exe: "/usr/bin/x", Limit: api.Limit{Up: 1, Traffic: "wan"}},
		{Exe: "/usr//bin/x", Limit: api.Limit{Up: 1}},
		{Exe: "/usr/bin/\x00", Limit: api.Limit{Up: 1}},
		{Exe: "/usr/bin/\xff", Limit: api.Limit{Up: 1}},
	} {
		if err := s.Set(r); !errors.Is(err, ErrInvalid) {
			t.Errorf("Set(%+v) = %v, want ErrInvalid", r, err)
		}
	}
	if len(s.All()) != 0 {
		t.Errorf("invalid rules stored: %v", s.All())
	}
	if _, err := os.Stat(s.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("invalid rules wrote a file: %v", err)
	}
}

func asideFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, FileName+".corrupt-*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCorruptFileIsKeptAside(t *testing.T) {
	dir := t.TempDir()
	garbage := []byte("{\"version\":1,\"rules\":[{\"exe\":\"/usr/bin/fire") // torn
	if err := os.WriteFile(filepath.Join(dir, FileName), garbage, 0o644); err != nil {
		t.Fatal(err)
	}
	s := open(t, dir)
	if len(s.All()) != 0 {
		t.Errorf("rules from a torn file: %v", s.All())
	}
	aside := asideFiles(t, dir)
	if len(aside) != 1 {
		t.Fatalf("kept-aside files: %v", aside)
	}
	if b, _ := os.ReadFile(aside[0]); string(b) != string(garbage) {
		t.Errorf("kept-aside content %q, want the original", b)
	}
	if p := s.Problems(); len(p) != 1 || !strings.Contains(p[0], aside[0]) || !strings.Contains(p[0], "unexpected EOF") {
		t.Errorf("problems %v", p)
	}
	// The store works on: a new rule is written to a fresh file.
	if err := s.Set(api.Rule{Exe: "/usr/bin/x", UID: 1, Limit: api.Limit{Up: 1}}); err != nil {
		t.Fatal(err)
	}
	if got := open(t, dir).All(); len(got) != 1 {
		t.Errorf("after recovery: %v", got)
	}
}

func TestPartlyInvalidFileKeepsValidRules(t *testing.T) {
	dir := t.TempDir()
	content := `{"version":1,"rules":[
	 {"exe":"/usr/bin/ok","uid":1000,"limit":{"down":100,"up":0,"traffic":"all"}},
	 {"exe":"relative","uid":1000,"limit":{"down":100}},
	 {"exe":"/usr/bin/ok","uid":1000,"limit":{"down":5}},
	 {"exe":"/usr/bin/big","uid":0,"limit":{"up":99999999999999}},
	 {"exe":"/usr/bin/ok2","uid":0,"limit":{"up":1,"traffic":"LOCAL"}}
	]}`
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	s := open(t, dir)
	want := []api.Rule{
		{Exe: "/usr/bin/ok2", UID: 0, Limit: api.Limit{Up: 1, Traffic: "local"}},
		{Exe: "/usr/bin/ok", UID: 1000, Limit: api.Limit{Down: 100, Traffic: "all"}},
	}
	if got := s.All(); !slices.Equal(got, want) {
		t.Errorf("rules %+v, want %+v", got, want)
	}
	aside := asideFiles(t, dir)
	if len(aside) != 1 {
		t.Fatalf("kept-aside files %v", aside)
	}
	if b, _ := os.ReadFile(aside[0]); string(b) != content {
		t.Error("kept-aside file differs from the original")
	}
	p := strings.Join(s.Problems(), "\n")
	for _, w := range []string{"rule 1", "not absolute", "rule 2: duplicate", "rule 3", "maximum", "2 valid rule(s) restored"} {
		if !strings.Contains(p, w) {
			t.Errorf("problems %q lack %q", p, w)
		}
	}
	// The valid rules were rewritten: reopening is clean.
	s2 := open(t, dir)
	if got := s2.All(); !slices.Equal(got, want) || len(s2.Problems()) != 0 {
		t.Errorf("reopened: %+v problems %v", got, s2.Problems())
	}
}

func TestUnknownVersionIsKeptAside(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, FileName), []byte(`{"version":99,"rules":[]}`), 0o644)
	s := open(t, dir)
	if len(asideFiles(t, dir)) != 1 || !strings.Contains(strings.Join(s.Problems(), ""), "version 99") {
		t.Errorf("problems %v", s.Problems())
	}
}

func TestStaleTempFilesAreRemoved(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	s.Set(api.Rule{Exe: "/usr/bin/x", UID: 1, Limit: api.Limit{Up: 1}})
	// A crash between create and rename leaves a temp file.
	stale := filepath.Join(dir, "."+FileName+".tmp-123")
	os.WriteFile(stale, []byte("half"), 0o644)
	s2 := open(t, dir)
	if len(s2.All()) != 1 {
		t.Errorf("rules %v", s2.All())
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temp file kept: %v", err)
	}
}

func TestFailedWriteChangesNothing(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	r := api.Rule{Exe: "/usr/bin/x", UID: 1, Limit: api.Limit{Up: 1, Traffic: "all"}}
	if err := s.Set(r); err != nil {
		t.Fatal(err)
	}
	// rename(2) cannot replace a non-empty directory, even for root.
	path := filepath.Join(dir, FileName)
	os.Remove(path)
	os.MkdirAll(filepath.Join(path, "blocker"), 0o755)
	err := s.Set(api.Rule{Exe: "/usr/bin/y", UID: 1, Limit: api.Limit{Up: 1}})
	if err == nil || !strings.Contains(err.Error(), "write rules file") {
		t.Fatalf("Set with an unwritable file: %v", err)
	}
	if got := s.All(); !slices.Equal(got, []api.Rule{r}) {
		t.Errorf("failed Set changed the store: %v", got)
	}
	if ok, err := s.Remove("/usr/bin/x", 1); ok || err == nil {
		t.Errorf("Remove with an unwritable file: %v %v", ok, err)
	}
	if got := s.All(); !slices.Equal(got, []api.Rule{r}) {
		t.Errorf("failed Remove changed the store: %v", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temp files left: %v", entries)
	}
}

func TestDirectorySyncFailureIsReported(t *testing.T) {
	s := open(t, t.TempDir())
	s.syncDir = func(string) error { return errors.New("EIO") }
	if err := s.Set(api.Rule{Exe: "/usr/bin/x", UID: 1, Limit: api.Limit{Up: 1}}); err != nil {
		t.Fatal(err)
	}
	if p := s.Problems(); len(p) != 1 || !strings.Contains(p[0], "EIO") {
		t.Errorf("problems %v", p)
	}
}

func TestConcurrentSets(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := s.Set(api.Rule{Exe: fmt.Sprintf("/usr/bin/p%d", i%10), UID: uint32(i % 4), Limit: api.Limit{Up: uint64(i + 1)}}); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	if got := open(t, dir).All(); len(got) != 20 || !slices.Equal(got, s.All()) {
		t.Errorf("after concurrent sets: %d rules on disk, %d in memory", len(got), len(s.All()))
	}
}

func TestOpenFailsOnUnusableDir(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o644)
	if _, err := Open(f); err == nil {
		t.Error("Open on a regular file succeeded")
	}
}

// A version 1 file (no "admin" field) loads with every rule set by its
// owner, and is rewritten as the current version on the next change; an admin rule
// survives the round trip.
func TestMigrationFromVersion1(t *testing.T) {
	dir := t.TempDir()
	v1 := `{"version":1,"rules":[{"exe":"/usr/bin/curl","uid":1000,"limit":{"down":100,"up":0,"traffic":"all"}}]}`
	os.WriteFile(filepath.Join(dir, FileName), []byte(v1), 0o644)
	s := open(t, dir)
	if got := s.All(); len(got) != 1 || got[0].Admin || got[0].Limit.Down != 100 || len(s.Problems()) != 0 {
		t.Fatalf("v1 rules %+v, problems %v", got, s.Problems())
	}
	if err := s.Set(api.Rule{Exe: "/usr/bin/wget", UID: 1000, Limit: api.Limit{Up: 5}, Admin: true}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, FileName))
	if !strings.Contains(string(b), `"version": 5`) || !strings.Contains(string(b), `"admin": true`) {
		t.Errorf("rewritten file:\n%s", b)
	}
	got := open(t, dir).All()
	if len(got) != 2 || got[0].Exe != "/usr/bin/curl" || got[0].Admin || got[1].Exe != "/usr/bin/wget" || !got[1].Admin {
		t.Errorf("reopened: %+v", got)
	}
}

// Paths with <, > and & take one byte each in the file (no HTML escapes):
// a user's rules cannot blow the file up six-fold.
func TestNoHTMLEscapes(t *testing.T) {
	b, err := Encode([]api.Rule{{Exe: "/tmp/<<&>>", UID: 1, Limit: api.Limit{Up: 1}}})
	if err != nil || !strings.Contains(string(b), `"/tmp/<<&>>"`) {
		t.Errorf("encoded %s (%v)", b, err)
	}
}

// A file cut at the size limit keeps the rules before the cut.
func TestOversizedFileKeepsRulesBeforeTheCut(t *testing.T) {
	var rs []api.Rule
	for i := 0; i < 50; i++ {
		rs = append(rs, api.Rule{Exe: fmt.Sprintf("/usr/bin/p%03d", i), UID: 1000, Limit: api.Limit{Up: 1}})
	}
	b, _ := Encode(rs)
	limit := int64(len(b) / 2)
	got, err := decode(io.LimitReader(bytes.NewReader(b), limit+1), limit)
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("error %v", err)
	}
	if len(got) < 20 || len(got) >= 50 {
		t.Errorf("%d rules kept from the first half of a 50-rule file", len(got))
	}
}

// Something other than a regular file named rules.json (a FIFO would block
// a plain open forever; a directory) is set aside; the helper serves.
func TestNotARegularFileIsSetAside(t *testing.T) {
	for _, kind := range []string{"fifo", "dir"} {
		dir := t.TempDir()
		p := filepath.Join(dir, FileName)
		if kind == "fifo" {
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
		} else {
			os.Mkdir(p, 0o755)
		}
		done := make(chan *Store)
		go func() { s, _ := Open(dir); done <- s }()
		select {
		case s := <-done:
			if s == nil || len(asideFiles(t, dir)) != 1 || len(s.Problems()) != 1 {
				t.Errorf("%s: store %v, aside %v", kind, s, asideFiles(t, dir))
				continue
			}
			if err := s.Set(api.Rule{Exe: "/usr/bin/x", UID: 1, Limit: api.Limit{Up: 1}}); err != nil {
				t.Errorf("%s: set after recovery: %v", kind, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Open blocked on a %s named %s", kind, FileName)
		}
	}
}

// The global limit and a rule's priority (version 4) survive a reopen; a
// version 3 file has neither and loads as before.
func TestGlobalAndPriorityPersist(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	g := api.GlobalLimit{Down: 10_000_000, Up: 2_000_000, Interface: "eth0"}
	if err := s.SetGlobal(g); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(api.Rule{Exe: "/usr/bin/game", UID: 1000, Limit: api.Limit{Priority: "high"}}); err != nil {
		t.Fatal(err)
	}
	s2 := open(t, dir)
	if s2.Global() != g || len(s2.All()) != 1 || s2.All()[0].Limit.Priority != "high" || len(s2.Problems()) != 0 {
		t.Errorf("reopened: global %+v rules %+v problems %v", s2.Global(), s2.All(), s2.Problems())
	}
	if err := s2.SetGlobal(api.GlobalLimit{Interface: "bad/name"}); err == nil || s2.Global() != g {
		t.Errorf("a bad global limit: %v, kept %+v", err, s2.Global())
	}
	if err := s2.SetGlobal(api.GlobalLimit{}); err != nil || open(t, dir).Global() != (api.GlobalLimit{}) {
		t.Errorf("removing the global limit: %v", err)
	}
	v3 := `{"version":3,"rules":[{"exe":"/usr/bin/curl","uid":1000,"limit":{"down":100,"up":0,"traffic":"all","block":"all"}}]}`
	dir3 := t.TempDir()
	os.WriteFile(filepath.Join(dir3, FileName), []byte(v3), 0o644)
	if s3 := open(t, dir3); len(s3.All()) != 1 || s3.All()[0].Limit.Priority != "" || len(s3.Problems()) != 0 {
		t.Errorf("v3 file: %+v %v", s3.All(), s3.Problems())
	}
}
