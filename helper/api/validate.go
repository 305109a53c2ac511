package api

import (
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// The one place where a limit, an executable path and a pid from a caller
// (or from the rules file) are checked. The engine calls these once per
// call; the rules store calls them for what it reads from disk.

// MaxExeLen is the longest executable path accepted (PATH_MAX).
const MaxExeLen = 4096

// ValidateExe checks that exe is an absolute, clean path of at most
// MaxExeLen bytes of valid UTF-8 without control characters.
func ValidateExe(exe string) error {
	switch {
	case exe == "":
		return Errorf(ErrInvalid, "executable path is empty")
	case len(exe) > MaxExeLen:
		return Errorf(ErrInvalid, "executable path is %d bytes long (at most %d)", len(exe), MaxExeLen)
	case !utf8.ValidString(exe):
		return Errorf(ErrInvalid, "executable path %q is not valid UTF-8", exe)
	case !strings.HasPrefix(exe, "/"):
		return Errorf(ErrInvalid, "executable path %q is not absolute", exe)
	case filepath.Clean(exe) != exe:
		return Errorf(ErrInvalid, "executable path %q is not clean (want %q)", exe, filepath.Clean(exe))
	case exe == "/":
		return Errorf(ErrInvalid, "executable path %q names a directory", exe)
	}
	for _, r := range exe {
		if r < 0x20 || r == 0x7f {
			return Errorf(ErrInvalid, "executable path %q contains a control character", exe)
		}
	}
	return nil
}

// NormalTraffic returns a limit's traffic type spelled out ("" is all).
func NormalTraffic(t string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(t)) {
	case "", TrafficAll:
		return TrafficAll, nil
	case TrafficInternet:
		return TrafficInternet, nil
	case TrafficLocal:
		return TrafficLocal, nil
	}
	return "", Errorf(ErrInvalid, "unknown traffic type %q (want all, internet or local)", t)
}

// ValidateLimit checks a limit's rates, traffic types (a "DOWN/UP" Traffic
// included), block and schedules and returns it with the traffic types
// spelled out in their canonical form (validateZones). Both rates 0 is valid
// (no limit).
func ValidateLimit(l Limit) (Limit, error) {
	l, err := validateZones(l) // zones.go
	if err != nil {
		return l, err
	}
	if l.Down > MaxRate {
		return l, Errorf(ErrInvalid, "download limit %d B/s is above the maximum of %d B/s (100 Gbit/s)", l.Down, MaxRate)
	}
	if l.Up > MaxRate {
		return l, Errorf(ErrInvalid, "upload limit %d B/s is above the maximum of %d B/s (100 Gbit/s)", l.Up, MaxRate)
	}
	return validateBlock(l) // block.go
}

// MaxPID is the kernel's highest pid (PID_MAX_LIMIT on 64-bit).
const MaxPID = 1 << 22

// ValidatePID checks that pid is within the kernel's pid range.
func ValidatePID(pid int64) error {
	if pid <= 0 || pid > MaxPID {
		return Errorf(ErrInvalid, "pid %d is not a process id", pid)
	}
	return nil
}
