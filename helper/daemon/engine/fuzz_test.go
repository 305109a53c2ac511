package engine

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/helper/api"
)

// The seed corpora are in testdata/fuzz/<FuzzName> and run with go test.

// FuzzParseStat: /proc/PID/stat parsing never panics; a comm with spaces
// and parentheses is kept whole.
func FuzzParseStat(f *testing.F) {
	f.Add([]byte("1234 (a (b) c) S 1 1234 1234 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 5555 0 0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		comm, _, _, _, err := parseStat(b)
		if err == nil && strings.Count(string(b), "(") == 0 {
			t.Fatalf("parsed %q without a comm: %q", b, comm)
		}
	})
}

// FuzzParseUIDs: /proc/PID/status parsing never panics.
func FuzzParseUIDs(f *testing.F) {
	f.Add([]byte("Name:\tx\nUid:\t1000\t1000\t1000\t1000\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := parseUIDs(b); err == nil && !strings.Contains(string(b), "Uid:") {
			t.Fatalf("parsed %q without a Uid line", b)
		}
	})
}

// FuzzParseDesktop: .desktop parsing never panics and only returns
// visible applications with a name.
func FuzzParseDesktop(f *testing.F) {
	f.Add([]byte("[Desktop Entry]\nType=Application\nName=Firefox\nExec=env A=1 \"/usr/bin/fire fox\" %u\nIcon=firefox\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		de, execs, ok := parseDesktop(b)
		if !ok {
			return
		}
		if de == nil || de.name == "" {
			t.Fatalf("accepted an entry without a name: %+v", de)
		}
		for _, x := range execs {
			if x == "" {
				t.Fatalf("empty executable from %q", b)
			}
		}
		idx := newDesktopIndex()
		idx.add(de, execs)
	})
}

// FuzzParseExe: the executable argument of SetAppLimit/RemoveAppLimit is
// either rejected with ErrInvalid or comes out as a valid absolute path.
func FuzzParseExe(f *testing.F) {
	f.Add("/usr/bin/firefox", uint32(1000))
	f.Fuzz(func(t *testing.T, exe string, uid uint32) {
		got, err := parseExe(exe, uid)
		if err != nil {
			if !strings.Contains(err.Error(), ErrInvalid.Error()) {
				t.Fatalf("parseExe(%q) error %v does not wrap ErrInvalid", exe, err)
			}
			if !utf8.ValidString(err.Error()) && utf8.ValidString(exe) {
				t.Fatalf("error message is not UTF-8: %q", err.Error())
			}
			return
		}
		if verr := api.ValidateExe(got); verr != nil {
			t.Fatalf("parseExe(%q) = %q, which is invalid: %v", exe, got, verr)
		}
	})
}

// FuzzLimitCalls drives the engine's limit methods with arbitrary
// arguments: they never panic, every error wraps one of the documented
// kinds, and whatever was accepted can be read back and removed.
func FuzzLimitCalls(f *testing.F) {
	f.Add("/usr/lib/firefox/firefox", uint32(1000), 100, uint64(1000), uint64(0), "all")
	b := newBench(f, firefoxProcs)
	f.Fuzz(func(t *testing.T, exe string, uid uint32, pid int, down, up uint64, traffic string) {
		l := api.Limit{Down: down, Up: up, Traffic: traffic}
		known := func(err error) bool {
			return err == nil || errors.Is(err, ErrInvalid) || errors.Is(err, ErrNotFound) ||
				errors.Is(err, backends.ErrDownloadUnavailable)
		}
		if err := b.e.SetAppLimit(admin, exe, uid, l); !known(err) {
			t.Fatalf("SetAppLimit(%q, %d, %+v): undocumented error %v", exe, uid, l, err)
		} else if err == nil && (down != 0 || up != 0) {
			if len(b.e.Rules()) == 0 {
				t.Fatalf("SetAppLimit(%q) succeeded but no rule is listed", exe)
			}
			if err := b.e.RemoveAppLimit(admin, exe, uid); err != nil {
				t.Fatalf("RemoveAppLimit after a successful SetAppLimit(%q, %d): %v", exe, uid, err)
			}
		}
		if err := b.e.SetProcessLimit(admin, pid, 0, l); !known(err) {
			t.Fatalf("SetProcessLimit(%d, %+v): undocumented error %v", pid, l, err)
		} else if err == nil && (down != 0 || up != 0) {
			if err := b.e.RemoveProcessLimit(admin, pid, 0); err != nil {
				t.Fatalf("RemoveProcessLimit after a successful SetProcessLimit(%d): %v", pid, err)
			}
		}
		if _, _, err := b.e.ProcessIdentity(pid); !known(err) {
			t.Fatalf("ProcessIdentity(%d): undocumented error %v", pid, err)
		}
		if _, err := b.e.AppDetails(exe); !known(err) {
			t.Fatalf("AppDetails(%q): undocumented error %v", exe, err)
		}
		if len(b.e.Rules()) != 0 || len(b.mgr.Targets()) != 0 {
			t.Fatalf("state left behind: rules %v targets %v", b.e.Rules(), b.mgr.Targets())
		}
	})
}
