package main

import (
	"fmt"
	"io"
	"strings"
)

// Shell completion scripts, generated from the command table (the packages
// install the output of these; a test keeps the committed copies current).

func cmdCompletion(c *call) error {
	switch c.o.args[0] {
	case "bash":
		return bashCompletion(c.w)
	case "zsh":
		return zshCompletion(c.w)
	default:
		return fishCompletion(c.w)
	}
}

const generatedBy = "generated from chadthrottlectl's command table by 'chadthrottlectl completion %s'; do not edit"

func flagWords(flags []*flagDef) []string {
	var w []string
	for _, f := range flags {
		w = append(w, "--"+f.name)
		if f.short != 0 {
			w = append(w, "-"+string(f.short))
		}
	}
	return w
}

func allFlags(c *command) []*flagDef { return append(append([]*flagDef{}, c.flags...), globalFlags...) }

func bashCompletion(w io.Writer) error {
	var valueFlags []string
	seen := map[string]bool{}
	var cases strings.Builder
	for _, c := range commands {
		for _, f := range allFlags(c) {
			if f.arg == "" || seen[f.name] {
				continue
			}
			seen[f.name] = true
			words := flagWords([]*flagDef{f})
			valueFlags = append(valueFlags, words...)
			fmt.Fprintf(&cases, "\t%s)\n\t\t", strings.Join(words, "|"))
			switch f.complete {
			case "file", "command":
				cases.WriteString(`if [[ $cur == */* ]]; then COMPREPLY=($(compgen -f -- "$cur")); else COMPREPLY=($(compgen -c -- "$cur")); fi`)
			case "host":
				cases.WriteString(`COMPREPLY=($(compgen -A hostname -- "$cur"))`)
			case "pid":
				cases.WriteString(`COMPREPLY=($(compgen -W "$(ps -u "$UID" -o pid= 2>/dev/null)" -- "$cur"))`)
			default:
				fmt.Fprintf(&cases, `COMPREPLY=($(compgen -W %q -- "$cur"))`, strings.Join(f.values, " "))
			}
			cases.WriteString("\n\t\treturn ;;\n")
		}
	}
	var cmdCases strings.Builder
	var names []string
	for _, c := range commands {
		names = append(names, c.name)
		words := flagWords(allFlags(c))
		fmt.Fprintf(&cmdCases, "\t%s)\n\t\twords=%q", c.name, strings.Join(words, " "))
		if len(c.argValues) > 0 {
			fmt.Fprintf(&cmdCases, "\n\t\t[[ $cur == -* || $nargs -ge 1 ]] || words=%q", strings.Join(c.argValues, " "))
		}
		cmdCases.WriteString(" ;;\n")
	}
	_, err := fmt.Fprintf(w, `# bash completion for chadthrottlectl
# %s

_chadthrottlectl() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
	local cmd="" nargs=0 i words
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		%s) ((i++)) ;;
		-*) ;;
		*) if [[ -z $cmd ]]; then cmd=${COMP_WORDS[i]}; else ((nargs++)); fi ;;
		esac
	done
	case $prev in
%s	esac
	case $cmd in
	"")
		words=%q ;;
%s	*) words="" ;;
	esac
	COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _chadthrottlectl chadthrottlectl
`, fmt.Sprintf(generatedBy, "bash"), strings.Join(valueFlags, "|"), cases.String(),
		strings.Join(append(names, flagWords(globalFlags)...), " "), cmdCases.String())
	return err
}

// zshQuote escapes a description for _arguments' [...] and _describe.
func zshQuote(s string) string {
	return strings.NewReplacer("'", `'\''`, "[", "(", "]", ")", ":", " -", "\\", "").Replace(s)
}

// short is the first clause of a help text.
func short(s string) string {
	for _, sep := range []string{"; ", " ("} {
		if i := strings.Index(s, sep); i > 0 {
			s = s[:i]
		}
	}
	return s
}

func zshSpec(f *flagDef) string {
	desc := zshQuote(short(f.help))
	action := ""
	if f.arg != "" {
		switch f.complete {
		case "file", "command":
			action = ":" + strings.ToLower(f.arg) + ":_files"
		case "host":
			action = ":host:_hosts"
		case "pid":
			action = ":pid:_pids"
		default:
			action = ":" + strings.ToLower(f.arg) + ":(" + strings.Join(f.values, " ") + ")"
		}
	}
	eq := ""
	if f.arg != "" {
		eq = "="
	}
	if f.short != 0 {
		sh := ""
		if f.arg != "" {
			sh = "+"
		}
		return fmt.Sprintf("'(-%c --%s)'{-%c%s,--%s%s}'[%s]%s'", f.short, f.name, f.short, sh, f.name, eq, desc, action)
	}
	return fmt.Sprintf("'--%s%s[%s]%s'", f.name, eq, desc, action)
}

func zshCompletion(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "#compdef chadthrottlectl\n# zsh completion for chadthrottlectl\n# %s\n\n", fmt.Sprintf(generatedBy, "zsh"))
	b.WriteString("_chadthrottlectl() {\n\tlocal curcontext=$curcontext state line ret=1\n\tlocal -a globals commands\n\tglobals=(\n")
	for _, f := range globalFlags {
		fmt.Fprintf(&b, "\t\t%s\n", zshSpec(f))
	}
	b.WriteString("\t)\n\tcommands=(\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "\t\t'%s:%s'\n", c.name, zshQuote(c.summary))
	}
	b.WriteString("\t)\n\t_arguments -C $globals '1:command:->command' '*::argument:->argument' && ret=0\n")
	b.WriteString("\tcase $state in\n\tcommand)\n\t\t_describe -t commands command commands && ret=0 ;;\n\targument)\n\t\tcase $line[1] in\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "\t\t%s)\n\t\t\t_arguments $globals", c.name)
		for _, f := range c.flags {
			fmt.Fprintf(&b, " \\\n\t\t\t\t%s", zshSpec(f))
		}
		if c.maxArgs > 0 {
			action := " "
			if len(c.argValues) > 0 {
				action = "(" + strings.Join(c.argValues, " ") + ")"
			}
			fmt.Fprintf(&b, " \\\n\t\t\t\t'1:%s:%s'", strings.ToLower(c.argName), action)
		}
		b.WriteString(" && ret=0 ;;\n")
	}
	b.WriteString("\t\tesac ;;\n\tesac\n\treturn ret\n}\n\n_chadthrottlectl \"$@\"\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func fishQuote(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", `\'`) + "'"
}

func fishFlag(b *strings.Builder, cond string, f *flagDef) {
	fmt.Fprintf(b, "complete -c chadthrottlectl")
	if cond != "" {
		fmt.Fprintf(b, " -n %s", fishQuote(cond))
	}
	if f.short != 0 {
		fmt.Fprintf(b, " -s %c", f.short)
	}
	fmt.Fprintf(b, " -l %s", f.name)
	if f.arg != "" {
		switch f.complete {
		case "file", "command":
			b.WriteString(" -r -F")
		case "host":
			b.WriteString(" -x -a '(__fish_print_hostnames)'")
		case "pid":
			b.WriteString(" -x -a '(__fish_complete_pids)'")
		default:
			fmt.Fprintf(b, " -x -a %s", fishQuote(strings.Join(f.values, " ")))
		}
	}
	fmt.Fprintf(b, " -d %s\n", fishQuote(short(f.help)))
}

func fishCompletion(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# fish completion for chadthrottlectl\n# %s\n\ncomplete -c chadthrottlectl -f\n", fmt.Sprintf(generatedBy, "fish"))
	for _, f := range globalFlags {
		fishFlag(&b, "", f)
	}
	var names []string
	for _, c := range commands {
		names = append(names, c.name)
	}
	none := "not __fish_seen_subcommand_from " + strings.Join(names, " ")
	for _, c := range commands {
		fmt.Fprintf(&b, "complete -c chadthrottlectl -n %s -a %s -d %s\n", fishQuote(none), c.name, fishQuote(c.summary))
	}
	for _, c := range commands {
		cond := "__fish_seen_subcommand_from " + c.name
		for _, f := range c.flags {
			fishFlag(&b, cond, f)
		}
		if len(c.argValues) > 0 {
			fmt.Fprintf(&b, "complete -c chadthrottlectl -n %s -a %s\n", fishQuote(cond), fishQuote(strings.Join(c.argValues, " ")))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
