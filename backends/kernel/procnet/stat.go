package procnet

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// Stat is what the helper reads of /proc/PID/stat.
type Stat struct {
	Comm      string
	PPID      int
	Flags     uint64 // PF_* flags (field 9)
	StartTime uint64 // clock ticks since boot (field 22): with the pid, a process's identity
}

// PFKthread is PF_KTHREAD.
const PFKthread = 0x00200000

// Kthread reports whether the process is a kernel thread.
func (s Stat) Kthread() bool { return s.Flags&PFKthread != 0 }

// ParseStat parses the contents of /proc/PID/stat (comm may hold spaces
// and parentheses: it runs from the first '(' to the last ')').
func ParseStat(b []byte) (Stat, error) {
	var st Stat
	open := bytes.IndexByte(b, '(')
	close := bytes.LastIndexByte(b, ')')
	if open < 0 || close < open {
		return Stat{}, errors.New("malformed stat: no comm")
	}
	st.Comm = string(b[open+1 : close])
	// Fields after the comm: f[0] is field 3 (state); field N is f[N-3].
	// We need 4 (ppid), 9 (flags) and 22 (starttime).
	var f [20][]byte
	n := 0
	rest := b[close+1:]
	for n < len(f) {
		i := 0
		for i < len(rest) && (rest[i] == ' ' || rest[i] == '\n') {
			i++
		}
		rest = rest[i:]
		if len(rest) == 0 {
			break
		}
		j := 0
		for j < len(rest) && rest[j] != ' ' && rest[j] != '\n' {
			j++
		}
		f[n] = rest[:j]
		n++
		rest = rest[j:]
	}
	if n < 20 {
		return Stat{}, fmt.Errorf("malformed stat: %d fields", n+2)
	}
	ppid, err := strconv.Atoi(string(f[1]))
	if err != nil {
		return Stat{}, fmt.Errorf("malformed stat ppid: %w", err)
	}
	flags, err := strconv.ParseUint(string(f[6]), 10, 64)
	if err != nil {
		return Stat{}, fmt.Errorf("malformed stat flags: %w", err)
	}
	start, err := strconv.ParseUint(string(f[19]), 10, 64)
	if err != nil {
		return Stat{}, fmt.Errorf("malformed stat starttime: %w", err)
	}
	st.PPID, st.Flags, st.StartTime = ppid, flags, start
	return st, nil
}
