//go:build !linux

package engine

import "errors"

func watchExecs(func(pid int), <-chan struct{}) error {
	return errors.New("the proc connector is Linux-only")
}
