package api

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Printable returns s safe to show to a person: control characters
// (C0, DEL, C1: terminal escape sequences such as "\x1b]0;…\a"), Unicode
// bidirectional overrides (which make text read differently from what it
// is) and invalid UTF-8 are written as visible escapes (\x1b, \u202e).
// Names, executables and command lines come from other users' processes
// and .desktop files: the CLI's text output and the window's labels show
// them through Printable; JSON output stays exact.
func Printable(s string) string {
	clean := true
	for _, r := range s {
		if unprintable(r) {
			clean = false
			break
		}
	}
	if clean && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x80 && unprintable(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unprintable(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func unprintable(r rune) bool {
	switch {
	case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
		return true
	case r == 0x200e || r == 0x200f || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069):
		return true
	}
	return false
}
