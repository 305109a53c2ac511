package main

import (
	"fmt"
	"io"
	"strings"
)

func flagLabel(f *flagDef) string {
	s := "--" + f.name
	if f.short != 0 {
		s = "-" + string(f.short) + ", " + s
	}
	if f.arg != "" {
		s += " " + f.arg
	}
	return s
}

const rateHelp = "RATE: 500KB/s, 1.5MB/s (x1000), 1MiB/s (x1024), 8Mbit/s, kbit, Gbit; a bare number is bytes/s; 0 or none is unlimited."

func writeHelp(w io.Writer, c *command) {
	if c == nil {
		fmt.Fprint(w, "usage: chadthrottlectl [--bus BUS] [-H|--host [USER@]HOST[:PORT]] COMMAND [FLAGS]\n\n"+
			"See and limit the network bandwidth of each application through chadthrottle-helper.\n\ncommands:\n")
		for _, c := range commands {
			fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
		}
		fmt.Fprint(w, "\nglobal flags (before or after the command):\n")
		writeFlags(w, globalFlags)
		fmt.Fprintf(w, "\n%s\n\nexit status:\n", wrap(rateHelp, 100, ""))
		for _, e := range exitCodes {
			fmt.Fprintf(w, "  %d  %s\n", e.code, e.what)
		}
		fmt.Fprint(w, "\nrun 'chadthrottlectl COMMAND --help' for a command's flags; man chadthrottlectl for more.\n")
		return
	}
	fmt.Fprintf(w, "usage: chadthrottlectl %s\n\n%s\n", strings.TrimSpace(c.name+" "+c.synopsis), wrap(c.help, 100, ""))
	if len(c.flags) > 0 {
		fmt.Fprint(w, "\nflags:\n")
		writeFlags(w, c.flags)
	}
	fmt.Fprint(w, "\nglobal flags:\n")
	writeFlags(w, globalFlags)
	if c.name == "limit" {
		fmt.Fprintf(w, "\n%s\n", wrap(rateHelp, 100, ""))
	}
	if len(c.examples) > 0 {
		fmt.Fprint(w, "\nexamples:\n")
		for _, e := range c.examples {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
}

func writeFlags(w io.Writer, flags []*flagDef) {
	for _, f := range flags {
		fmt.Fprintf(w, "  %s\n%s\n", flagLabel(f), wrap(f.help, 100, "        "))
	}
}

// wrap breaks s into lines of at most width, each starting with indent.
func wrap(s string, width int, indent string) string {
	var b strings.Builder
	line := indent
	for _, word := range strings.Fields(s) {
		if len(line) > len(indent) && len(line)+1+len(word) > width {
			b.WriteString(line + "\n")
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += word
	}
	b.WriteString(line)
	return b.String()
}
