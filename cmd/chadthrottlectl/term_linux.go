package main

import (
	"io"
	"os"
	"syscall"
	"unsafe"
)

func ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), req, uintptr(arg)); e != 0 {
		return e
	}
	return nil
}

func isTerminal(fd int) bool {
	var t syscall.Termios
	return ioctl(fd, syscall.TCGETS, unsafe.Pointer(&t)) == nil
}

// termSize is the size of the terminal w writes to.
func termSize(w io.Writer) (cols, rows int, ok bool) {
	f, isFile := w.(*os.File)
	if !isFile {
		return 0, 0, false
	}
	var ws struct{ Row, Col, X, Y uint16 }
	if ioctl(int(f.Fd()), syscall.TIOCGWINSZ, unsafe.Pointer(&ws)) != nil || ws.Row == 0 || ws.Col == 0 {
		return 0, 0, false
	}
	return int(ws.Col), int(ws.Row), true
}

// rawStdin turns off line buffering and echo of the terminal on stdin, so
// a key press reaches the program at once; restore puts the old mode back.
// Signals (Ctrl-C) still work.
func rawStdin() (restore func(), err error) {
	var old syscall.Termios
	if err := ioctl(0, syscall.TCGETS, unsafe.Pointer(&old)); err != nil {
		return nil, err
	}
	t := old
	t.Lflag &^= syscall.ICANON | syscall.ECHO
	t.Cc[syscall.VMIN], t.Cc[syscall.VTIME] = 1, 0
	if err := ioctl(0, syscall.TCSETS, unsafe.Pointer(&t)); err != nil {
		return nil, err
	}
	return func() { _ = ioctl(0, syscall.TCSETS, unsafe.Pointer(&old)) }, nil
}
