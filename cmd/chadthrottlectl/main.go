// Command chadthrottlectl is ChadThrottle's command-line client for
// scripts, headless machines and tests: it lists backends and traffic and
// sets or removes limits through chadthrottle-helper on D-Bus.
package main

// The man pages and shell completions in packaging/ are generated from the
// command table (and the other commands' flags); TestGeneratedFiles keeps
// them current.
//go:generate go test -count=1 -run ^TestGeneratedFiles$ . -args -update

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, connect)
	stop()
	os.Exit(code)
}
