package main

import (
	"bytes"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// watchTop refreshes the table of top every interval until q, Ctrl-C or
// the end of the context. On a terminal it draws on the alternate screen,
// keeps the table within the window (rows and columns) and restores the
// terminal on the way out; elsewhere it prints one table per interval.
func watchTop(c *call) error {
	quit := make(chan struct{})
	if sys.stdinTTY() {
		if restore, err := sys.rawStdin(); err == nil {
			defer restore()
		}
	}
	go func() {
		b := make([]byte, 64)
		for {
			n, err := sys.stdin.Read(b)
			if bytes.ContainsAny(b[:n], "qQ") {
				close(quit)
				return
			}
			if err != nil {
				return // no keyboard: Ctrl-C or the end of the context stops
			}
		}
	}()
	_, _, tty := sys.termSize(c.w)
	if tty {
		fmt.Fprint(c.w, "\x1b[?1049h\x1b[?25l") // alternate screen, no cursor
		defer fmt.Fprint(c.w, "\x1b[?25h\x1b[?1049l")
	}
	tick := time.NewTicker(c.o.interval)
	defer tick.Stop()
	for {
		snap, err := c.h.Apps(c.ctx)
		if err != nil {
			if c.ctx.Err() != nil {
				return nil
			}
			return err
		}
		var buf bytes.Buffer
		if tty {
			cols, rows, _ := sys.termSize(c.w)
			writeTop(&buf, snap, sortApps(snap), max(rows-4, 1))
			fmt.Fprintf(&buf, "every %s · q quits", c.o.interval)
			var screen bytes.Buffer
			screen.WriteString("\x1b[H\x1b[2J")
			lines := strings.Split(buf.String(), "\n")
			if len(lines) > rows {
				lines = lines[:rows]
			}
			for i, l := range lines {
				if i > 0 {
					screen.WriteString("\n")
				}
				screen.WriteString(cut(l, cols))
			}
			buf = screen
		} else {
			writeTop(&buf, snap, sortApps(snap), -1)
			buf.WriteString("\n")
		}
		if _, err := c.w.Write(buf.Bytes()); err != nil {
			return err
		}
		select {
		case <-c.ctx.Done():
			return nil
		case <-quit:
			return nil
		case <-tick.C:
		}
	}
}

// cut shortens s to n runes.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n])
}
