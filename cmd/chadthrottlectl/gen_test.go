package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/chadthrottle/chadthrottle/helper/api"
	"github.com/chadthrottle/chadthrottle/helper/daemon/server"
	"github.com/chadthrottle/chadthrottle/helper/testsupport/bustest"
)

// The man pages and completion scripts in packaging/ are generated from the
// command table (chadthrottlectl) and from the flag definitions in the
// other two commands' main.go; `make generate` rewrites them (go:generate
// in main.go runs this test with -update) and this test fails when a
// committed copy is stale.
var update = flag.Bool("update", false, "rewrite the generated man pages and completion scripts in packaging/")

func TestGeneratedFiles(t *testing.T) {
	root := bustest.RepoRoot()
	files := map[string]func() ([]byte, error){
		"packaging/man/chadthrottlectl.1":           func() ([]byte, error) { return ctlMan(), nil },
		"packaging/man/chadthrottle.1":              func() ([]byte, error) { return flagMan(root, "chadthrottle", 1) },
		"packaging/man/chadthrottle-helper.8":       func() ([]byte, error) { return flagMan(root, "chadthrottle-helper", 8) },
		"packaging/completion/chadthrottlectl.bash": func() ([]byte, error) { return script(bashCompletion) },
		"packaging/completion/_chadthrottlectl":     func() ([]byte, error) { return script(zshCompletion) },
		"packaging/completion/chadthrottlectl.fish": func() ([]byte, error) { return script(fishCompletion) },
	}
	for name, gen := range files {
		want, err := gen()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		path := filepath.Join(root, name)
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is not what the command definitions generate (%v): run 'make generate' and commit it", name, err)
		}
	}
}

func script(gen func(w io.Writer) error) ([]byte, error) {
	var b bytes.Buffer
	err := gen(&b)
	return b.Bytes(), err
}

// roff escapes text for a man page.
func roff(s string) string {
	s = strings.NewReplacer(`\`, `\e`, "-", `\-`, "…", `\&...`, "×", "x", "·", "-").Replace(s)
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			l = `\&` + l
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

func manHeader(b *bytes.Buffer, name string, section int, summary string) {
	title := "User Commands"
	if section == 8 {
		title = "System Administration"
	}
	fmt.Fprintf(b, ".\\\" generated from the command definitions by 'make generate' (cmd/chadthrottlectl TestGeneratedFiles -update); do not edit\n"+
		".TH %s %d \"\" \"ChadThrottle\" \"%s\"\n.SH NAME\n%s \\- %s\n", strings.ToUpper(name), section, title, name, roff(summary))
}

func manFlag(b *bytes.Buffer, f *flagDef) {
	b.WriteString(".TP\n")
	if f.short != 0 {
		fmt.Fprintf(b, "\\fB\\-%c\\fR, ", f.short)
	}
	fmt.Fprintf(b, "\\fB\\-\\-%s\\fR", f.name)
	if f.arg != "" {
		fmt.Fprintf(b, " \\fI%s\\fR", roff(f.arg))
	}
	fmt.Fprintf(b, "\n%s\n", roff(f.help))
}

// ctlMan is chadthrottlectl.1, from the command table.
func ctlMan() []byte {
	var b bytes.Buffer
	manHeader(&b, "chadthrottlectl", 1, "see and limit the network bandwidth of each application from a terminal")
	b.WriteString(".SH SYNOPSIS\n.B chadthrottlectl\n[\\fB\\-\\-bus\\fR \\fIBUS\\fR] [\\fB\\-H\\fR|\\fB\\-\\-host\\fR \\fI[USER@]HOST[:PORT]\\fR] \\fICOMMAND\\fR [\\fIFLAGS\\fR]\n")
	b.WriteString(".SH DESCRIPTION\n" + roff("chadthrottlectl is ChadThrottle's command-line client: it lists applications and their traffic "+
		"and sets or removes limits through chadthrottle-helper(8), the root helper, over D-Bus; polkit decides what the caller may do. "+
		"Global flags go before or after the command; every command takes --help.") + "\n")
	b.WriteString(".SH COMMANDS\n")
	for _, c := range commands {
		fmt.Fprintf(&b, ".TP\n\\fB%s\\fR %s\n%s\n", c.name, roff(c.synopsis), roff(c.help))
		if len(c.flags) > 0 {
			b.WriteString(".RS\n")
			for _, f := range c.flags {
				manFlag(&b, f)
			}
			b.WriteString(".RE\n")
		}
	}
	b.WriteString(".SH GLOBAL OPTIONS\n")
	for _, f := range globalFlags {
		manFlag(&b, f)
	}
	b.WriteString(".SH RATES\n" + roff(rateHelp) + "\n")
	b.WriteString(".SH EXIT STATUS\n")
	for _, e := range exitCodes {
		fmt.Fprintf(&b, ".TP\n.B %d\n%s\n", e.code, roff(e.what))
	}
	b.WriteString(".SH ENVIRONMENT\n.TP\n.B SUDO_UID, SUDO_USER\n" + roff("Run as root through sudo, --app rules are for this user, not root (--uid 0 for root's).") +
		"\n.SH EXAMPLES\n")
	for _, c := range commands {
		for _, e := range c.examples {
			fmt.Fprintf(&b, ".PP\n.nf\n%s\n.fi\n", roff(e))
		}
	}
	b.WriteString(".SH SEE ALSO\n.BR chadthrottle (1),\n.BR chadthrottle\\-helper (8),\n.BR pkttyagent (1),\n.BR ssh (1)\n")
	return b.Bytes()
}

// mainFlag is a flag a main.go defines with the flag package.
type mainFlag struct{ name, def, usage string }

// mainFlags reads the package comment and the flag.X(...) calls of a
// command's main.go.
// contractConsts are the contract's constants a main may use as a flag's
// default; the man page shows their values.
var contractConsts = map[string]string{"api.StateDir": api.StateDir, "api.RuntimeDir": api.RuntimeDir}

func mainFlags(path string) (doc string, flags []mainFlag, err error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
	if err != nil {
		return "", nil, err
	}
	src, _ := os.ReadFile(path)
	text := func(e ast.Expr) string {
		return string(src[fset.Position(e.Pos()).Offset:fset.Position(e.End()).Offset])
	}
	var str func(e ast.Expr) (string, bool)
	str = func(e ast.Expr) (string, bool) {
		switch e := e.(type) {
		case *ast.BasicLit:
			s, err := strconv.Unquote(e.Value)
			return s, err == nil
		case *ast.BinaryExpr:
			l, ok1 := str(e.X)
			r, ok2 := str(e.Y)
			return l + r, ok1 && ok2
		}
		return "", false
	}
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if id, ok := sel.X.(*ast.Ident); !ok || id.Name != "flag" {
			return true
		}
		args := call.Args
		switch {
		case sel.Sel.Name == "Func" && len(args) == 3:
			name, _ := str(args[0])
			usage, _ := str(args[1])
			flags = append(flags, mainFlag{name, "", usage})
		case strings.HasSuffix(sel.Sel.Name, "Var") && len(args) == 4:
			args = args[1:]
			fallthrough
		case len(args) == 3 && sel.Sel.Name != "Func":
			name, _ := str(args[0])
			usage, _ := str(args[2])
			def := text(args[1])
			if v, ok := contractConsts[def]; ok {
				def = strconv.Quote(v)
			}
			flags = append(flags, mainFlag{name, def, usage})
		}
		return true
	})
	return f.Doc.Text(), flags, nil
}

// synopsisFlag is "[--name VALUE]" in a synopsis; VALUE may hold one level
// of brackets ([USER@]HOST[:PORT]).
var synopsisFlag = regexp.MustCompile(`\[--([\w-]+)(?: ([^\[\]]*(?:\[[^\[\]]*\][^\[\]]*)*))?\]`)

// knownDefaults are the values of defaults main.go names by identifier.
var knownDefaults = map[string]string{"server.DefaultCallRate": strconv.FormatFloat(server.DefaultCallRate, 'g', -1, 64)}

// flagMan is the man page of chadthrottle or chadthrottle-helper, from its
// main.go.
func flagMan(root, name string, section int) ([]byte, error) {
	doc, flags, err := mainFlags(filepath.Join(root, "cmd", name, "main.go"))
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	summary := map[string]string{
		"chadthrottle":        "see and limit the network bandwidth of each application (window and tray icon)",
		"chadthrottle-helper": "ChadThrottle's root helper: monitor and throttle backends served on D-Bus",
	}[name]
	manHeader(&b, name, section, summary)
	var synopsis, desc []string
	for _, l := range strings.Split(strings.TrimSpace(doc), "\n") {
		if strings.HasPrefix(l, "\t") {
			synopsis = append(synopsis, strings.TrimSpace(l))
		} else {
			desc = append(desc, l)
		}
	}
	// Value names as the synopsis gives them ([--monitor NAME]).
	argNames := map[string]string{}
	for _, m := range synopsisFlag.FindAllStringSubmatch(strings.Join(synopsis, " "), -1) {
		argNames[m[1]] = m[2]
	}
	if len(desc) > 0 {
		desc[0] = strings.TrimPrefix(desc[0], "Command ")
	}
	fmt.Fprintf(&b, ".SH SYNOPSIS\n.nf\n%s\n.fi\n", roff(strings.Join(synopsis, "\n")))
	paras := strings.Split(strings.TrimSpace(strings.Join(desc, "\n")), "\n\n")
	b.WriteString(".SH DESCRIPTION\n")
	for i, p := range paras {
		if i > 0 {
			b.WriteString(".PP\n")
		}
		b.WriteString(roff(strings.Join(strings.Fields(p), " ")) + "\n")
	}
	b.WriteString(".SH OPTIONS\n")
	for _, f := range flags {
		arg := ""
		if f.def != "false" {
			n := argNames[f.name]
			if i := strings.IndexByte(n, '|'); i > 0 && f.name == "bus" {
				n = "BUS"
			}
			if n == "" {
				n = "VALUE"
			}
			arg = " \\fI" + roff(n) + "\\fR"
		}
		if v, ok := knownDefaults[f.def]; ok {
			f.def = v
		}
		fmt.Fprintf(&b, ".TP\n\\fB\\-\\-%s\\fR%s\n%s", f.name, arg, roff(f.usage))
		if f.def != "" && f.def != "false" && f.def != `""` && f.def != "0" {
			fmt.Fprintf(&b, " (default: %s)", roff(strings.Trim(f.def, `"`)))
		}
		b.WriteString("\n")
	}
	if name == "chadthrottle-helper" {
		b.WriteString(".SH FILES\n.TP\n.I /var/lib/chadthrottle/rules.json\n" + roff("the rules that persist (root's, mode 0600)") +
			"\n.TP\n.I /run/chadthrottle\n" + roff("the instance lock and crash-recovery records") + "\n")
	}
	b.WriteString(".SH SEE ALSO\n")
	var see []string
	for _, s := range []string{"chadthrottle(1)", "chadthrottlectl(1)", "chadthrottle-helper(8)", "polkit(8)"} {
		if !strings.HasPrefix(s, name+"(") {
			n, sec, _ := strings.Cut(strings.TrimSuffix(s, ")"), "(")
			see = append(see, fmt.Sprintf(".BR %s (%s)", roff(n), sec))
		}
	}
	b.WriteString(strings.Join(see, ",\n") + "\n")
	return b.Bytes(), nil
}
