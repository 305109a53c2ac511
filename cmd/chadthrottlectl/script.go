package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// A rule matches /proc/PID/exe, which for a script is its interpreter: a
// rule on a wrapper script (many distributions' /usr/bin/firefox) would
// never match. notAScript returns exe when it is not a script; for a
// script it names the programs it could mean — the one the script's exec
// line runs, and running apps of the rule's user (uid) with the script's
// name — and
// in a terminal asks which to use; otherwise it fails, listing them.
func notAScript(c *call, exe string, uid uint32) (string, error) {
	interp, ok := scriptInterpreter(exe)
	if !ok {
		return exe, nil
	}
	type choice struct{ exe, why string }
	var choices []choice
	add := func(p, why string) {
		for _, ch := range choices {
			if ch.exe == p {
				return
			}
		}
		choices = append(choices, choice{p, why})
	}
	if p := execTarget(exe, 0); p != "" {
		add(p, "the program its exec line runs")
	}
	if snap, err := c.h.Apps(c.ctx); err == nil {
		base := filepath.Base(exe)
		for _, a := range snap.Apps {
			if a.UID == uid && strings.HasPrefix(a.Exe, "/") && filepath.Base(a.Exe) == base && len(a.PIDs) > 0 {
				add(a.Exe, fmt.Sprintf("running now: pid %s", pidList(a.PIDs)))
			}
		}
	}
	fmt.Fprintf(c.ew, "chadthrottlectl: %s is a script run by %s; a rule on it would never match, because the kernel names "+
		"the program a script runs as the process's executable, not the script.\n", api.Printable(exe), api.Printable(interp))
	if len(choices) == 0 {
		return "", usageErr("--app %s: give the executable the script runs (see the script, or run it and look at chadthrottlectl top)", exe)
	}
	for i, ch := range choices {
		fmt.Fprintf(c.ew, "  %d) %s  (%s)\n", i+1, api.Printable(ch.exe), ch.why)
	}
	if !sys.stdinTTY() {
		return "", usageErr("--app %s is a script: give the program it runs, e.g. --app %s", exe, choices[0].exe)
	}
	fmt.Fprintf(c.ew, "limit which? [1-%d, Enter for 1, n to cancel] ", len(choices))
	line, err := bufio.NewReader(sys.stdin).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", err
	}
	line = strings.TrimSpace(line)
	if line == "" {
		return choices[0].exe, nil
	}
	if n, err := strconv.Atoi(line); err == nil && n >= 1 && n <= len(choices) {
		return choices[n-1].exe, nil
	}
	return "", fmt.Errorf("cancelled: no rule set")
}

// scriptInterpreter reports whether path is a "#!" script, and its
// interpreter.
func scriptInterpreter(path string) (string, bool) {
	f, err := os.Open(path)
	if err != nil {
		return "", false
	}
	defer f.Close()
	b := make([]byte, 256)
	n, _ := io.ReadFull(f, b)
	b = b[:n]
	if !bytes.HasPrefix(b, []byte("#!")) {
		return "", false
	}
	line, _, _ := bytes.Cut(b[2:], []byte("\n"))
	fields := strings.Fields(string(line))
	if len(fields) == 0 {
		return "sh", true
	}
	if filepath.Base(fields[0]) == "env" && len(fields) > 1 {
		return fields[len(fields)-1], true
	}
	return fields[0], true
}

var (
	assignRe = regexp.MustCompile(`^(?:export\s+|readonly\s+|local\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$`)
	varRe    = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)`)
)

// execTarget finds the program a shell wrapper execs: the last "exec
// PROGRAM" line whose program, after expanding variables the script sets
// plainly, is an executable file (followed through at most 3 wrappers).
func execTarget(script string, depth int) string {
	data, err := os.ReadFile(script)
	if err != nil || len(data) > 1<<20 {
		return ""
	}
	vars := map[string]string{}
	found := ""
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if m := assignRe.FindStringSubmatch(line); m != nil {
			if w := shellWords(m[2]); len(w) == 1 {
				vars[m[1]] = expand(w[0], vars)
			}
			continue
		}
		i := strings.Index(" "+line, " exec ")
		if i < 0 {
			continue
		}
		words := shellWords(line[i+len("exec "):])
		for len(words) > 0 && (strings.HasPrefix(words[0], "-") || strings.Contains(words[0], "=") || words[0] == "env") {
			if words[0] == "-a" && len(words) > 1 {
				words = words[1:]
			}
			words = words[1:]
		}
		if len(words) == 0 {
			continue
		}
		prog := expand(words[0], vars)
		if strings.Contains(prog, "$") {
			continue
		}
		if !strings.Contains(prog, "/") {
			if p, err := exec.LookPath(prog); err == nil {
				prog = p
			}
		}
		if !filepath.IsAbs(prog) {
			continue
		}
		if r, err := filepath.EvalSymlinks(prog); err == nil {
			prog = r
		}
		if st, err := os.Stat(prog); err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 || prog == script {
			continue
		}
		if _, isScript := scriptInterpreter(prog); isScript {
			if depth >= 2 {
				continue
			}
			if prog = execTarget(prog, depth+1); prog == "" {
				continue
			}
		}
		found = prog
	}
	return found
}

// expand replaces $NAME and ${NAME} of vars in s.
func expand(s string, vars map[string]string) string {
	return varRe.ReplaceAllStringFunc(s, func(v string) string {
		if val, ok := vars[strings.Trim(v, "${}")]; ok {
			return val
		}
		return v
	})
}

// shellWords splits s into words the way sh does for plain quoting, up to
// the first unquoted ;, &, | or #.
func shellWords(s string) []string {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words, inWord = append(words, cur.String()), false
				cur.Reset()
			}
		case r == ';' || r == '&' || r == '|' || (r == '#' && !inWord):
			if inWord {
				words = append(words, cur.String())
			}
			return words
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}
