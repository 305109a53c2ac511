// Command chadthrottlectl is ChadThrottle's command-line client for
// scripts, headless machines and tests: it lists backends and traffic and
// sets or removes limits through chadthrottle-helper on D-Bus.
package main

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
