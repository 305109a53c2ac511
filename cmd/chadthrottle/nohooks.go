//go:build !testhooks

package main

import "github.com/chadthrottle/chadthrottle/gui"

// Production builds have no test hooks (testhooks.go has them).

func testBackend() (b gui.Backend, closeB func(), ok bool, err error) { return nil, nil, false, nil }

func startProfile() (stop func()) { return func() {} }

func openStatsHook() string { return "" }
