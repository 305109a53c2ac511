//go:build !linux

package main

import (
	"errors"
	"io"
)

func isTerminal(int) bool                          { return false }
func termSize(io.Writer) (cols, rows int, ok bool) { return 0, 0, false }
func rawStdin() (restore func(), err error)        { return nil, errors.New("no terminal support") }
