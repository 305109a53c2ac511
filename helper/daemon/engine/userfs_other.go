//go:build !linux

package engine

import (
	"errors"
	"io"
	"os"
	"time"
)

// asUser runs fn directly: only Linux can drop file-system credentials for
// one thread, and the helper runs on Linux only.
func asUser(uid, gid uint32, timeout time.Duration, fn func()) error {
	fn()
	return nil
}

func readRegular(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	return io.ReadAll(io.LimitReader(f, limit))
}

func readDirNames(dir string, max int) ([]os.DirEntry, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.ReadDir(max)
}

func pidfdOpen(pid int) (int, error) { return -1, nil }
func pidfdAlive(fd int) bool         { return true }
func pidfdClose(fd int)              {}
