package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func completionScript(t *testing.T, shell string) string {
	t.Helper()
	code, out, errOut := runCLI(t, &fakeHelper{}, "completion", shell)
	if code != 0 || !strings.Contains(out, "chadthrottlectl") {
		t.Fatalf("completion %s: %d %s", shell, code, errOut)
	}
	p := filepath.Join(t.TempDir(), "chadthrottlectl."+shell)
	if err := os.WriteFile(p, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// The bash completion completes commands, each command's flags (global
// ones too, before or after the command) and the values of flags.
func TestBashCompletion(t *testing.T) {
	script := completionScript(t, "bash")
	for _, c := range []struct {
		line string
		want []string
		not  []string
	}{
		{"chadthrottlectl ", []string{"top", "details", "limit", "status", "pause", "resume", "version", "completion", "--bus", "-H"}, []string{"--json"}},
		{"chadthrottlectl li", []string{"limit"}, []string{"top"}},
		{"chadthrottlectl top --", []string{"--json", "--watch", "--interval", "--bus", "--host", "--help"}, []string{"--pid"}},
		{"chadthrottlectl --bus session limit --", []string{"--pid", "--app", "--down", "--up", "--traffic", "--uid"}, []string{"--json"}},
		{"chadthrottlectl limit --traffic ", []string{"all", "internet", "local"}, nil},
		{"chadthrottlectl top --bus ", []string{"system", "session"}, nil},
		{"chadthrottlectl -H box limit --app /usr/bin/slee", []string{"/usr/bin/sleep"}, nil},
		{"chadthrottlectl completion ", []string{"bash", "zsh", "fish"}, nil},
		{"chadthrottlectl help ", []string{"top", "limit"}, nil},
	} {
		words := strings.Split(c.line, " ")
		var quoted []string
		for _, w := range words {
			quoted = append(quoted, "'"+w+"'")
		}
		cmd := exec.Command("bash", "-c", `source "$1"; COMP_WORDS=(`+strings.Join(quoted, " ")+`); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _chadthrottlectl; printf '%s\n' "${COMPREPLY[@]}"`, "bash", script)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%q: %v %s", c.line, err, out)
		}
		got := strings.Fields(string(out))
		for _, w := range c.want {
			if !contains(got, w) {
				t.Errorf("%q completes to %v, without %s", c.line, got, w)
			}
		}
		for _, w := range c.not {
			if contains(got, w) {
				t.Errorf("%q completes to %v, with %s", c.line, got, w)
			}
		}
	}
}

// The zsh and fish scripts parse (where the shells are installed), and
// fish completes as bash does.
func TestZshFishCompletion(t *testing.T) {
	if _, err := exec.LookPath("zsh"); err == nil {
		if out, err := exec.Command("zsh", "-n", completionScript(t, "zsh")).CombinedOutput(); err != nil {
			t.Errorf("zsh -n: %v %s", err, out)
		}
	} else {
		t.Log("zsh is not installed: its script is not checked")
	}
	if _, err := exec.LookPath("fish"); err != nil {
		t.Log("fish is not installed: its script is not checked")
		return
	}
	script := completionScript(t, "fish")
	for line, want := range map[string][]string{
		"chadthrottlectl ":                  {"top", "limit", "status", "completion"},
		"chadthrottlectl limit --tr":        {"--traffic"},
		"chadthrottlectl limit --traffic ":  {"all", "internet", "local"},
		"chadthrottlectl completion ":       {"bash", "zsh", "fish"},
		"chadthrottlectl top --bus ":        {"system", "session"},
		"chadthrottlectl details --":        {"--json", "--bus", "--host"},
		"chadthrottlectl top --watch --int": {"--interval"},
	} {
		out, err := exec.Command("fish", "--no-config", "-c", "source $argv[1]; complete -C $argv[2]", script, line).CombinedOutput()
		if err != nil {
			t.Fatalf("fish %q: %v %s", line, err, out)
		}
		var got []string
		for _, l := range strings.Split(string(out), "\n") {
			if w, _, _ := strings.Cut(l, "\t"); w != "" {
				got = append(got, w)
			}
		}
		for _, w := range want {
			if !contains(got, w) {
				t.Errorf("fish %q completes to %v, without %s", line, got, w)
			}
		}
	}
}
