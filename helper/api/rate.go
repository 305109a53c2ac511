package api

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// MaxRate is the highest rate a limit may have, in bytes per second: 100
// Gbit/s. It equals backends.MaxRate (a test checks).
const MaxRate uint64 = 100_000_000_000 / 8

// ErrRate is wrapped by every ParseRate error.
var ErrRate = errors.New("invalid rate")

// rateUnits maps a unit (without "/s") to bytes per unit. The byte units
// need a capital B ("KB", "kB", "MiB"); a lowercase b after a prefix is
// ambiguous (megabits or megabytes?) and refused.
var rateUnits = map[string]float64{
	"B":    1,
	"KB":   1e3,
	"MB":   1e6,
	"GB":   1e9,
	"KIB":  1 << 10,
	"MIB":  1 << 20,
	"GIB":  1 << 30,
	"BIT":  1.0 / 8,
	"KBIT": 1e3 / 8,
	"MBIT": 1e6 / 8,
	"GBIT": 1e9 / 8,
}

// ParseRate parses a rate as the CLI contract writes it and returns bytes
// per second; 0 means unlimited. Accepted: a bare number (bytes/s), 500KB/s
// or 500kB/s (×1000), 1.5MB/s, 1MiB/s (×1024), 8Mbit/s, 100kbit/s, 1Gbit/s;
// "/s" is optional; "0", "none" and "unlimited" mean unlimited. Rates above
// MaxRate and non-zero rates below 1 B/s are refused.
func ParseRate(s string) (uint64, error) {
	in := strings.TrimSpace(s)
	switch strings.ToLower(in) {
	case "":
		return 0, fmt.Errorf("%w: empty (write e.g. 500KB/s, 8Mbit/s, or none)", ErrRate)
	case "none", "unlimited":
		return 0, nil
	}
	v, unit, err := splitNumber(in)
	if err != nil {
		return 0, fmt.Errorf("%w %q: %v (write e.g. 500KB/s, 1.5MB/s, 8Mbit/s)", ErrRate, s, err)
	}
	unit = strings.TrimSuffix(unit, "/s")
	mult := 1.0
	if unit != "" {
		// Prefix letters in any case (kB, KB, KiB, Mbit, mbit), but bytes
		// need a capital B.
		key := strings.ToUpper(unit)
		if !strings.HasSuffix(key, "BIT") && strings.HasSuffix(unit, "b") {
			p := strings.TrimSuffix(unit, "b")
			return 0, fmt.Errorf("%w %q: unit %q is ambiguous (write %sB/s for bytes or %sbit/s for bits)", ErrRate, s, unit, p, p)
		}
		m, ok := rateUnits[key]
		if !ok {
			return 0, fmt.Errorf("%w %q: unknown unit %q (use B, KB, MB, GB, KiB, MiB, GiB, bit, kbit, Mbit, Gbit, each optionally /s)", ErrRate, s, unit)
		}
		mult = m
	}
	bps := v * mult
	if bps == 0 {
		return 0, nil
	}
	if bps > float64(MaxRate) {
		return 0, fmt.Errorf("%w %q: above the maximum of %s (100 Gbit/s)", ErrRate, s, FormatRate(MaxRate))
	}
	r := uint64(math.Round(bps))
	if r == 0 {
		return 0, fmt.Errorf("%w %q: below 1 B/s (write 0 or none for unlimited)", ErrRate, s)
	}
	return r, nil
}

// FormatRate formats bytes per second for people: "unlimited" for 0,
// otherwise decimal units with up to three significant digits ("1.5 MB/s").
func FormatRate(bps uint64) string {
	if bps == 0 {
		return "unlimited"
	}
	return FormatBytes(bps) + "/s"
}

// FormatBytes formats a byte count with decimal units ("12.3 MB").
func FormatBytes(n uint64) string {
	if n < 1000 {
		return strconv.FormatUint(n, 10) + " B"
	}
	units := []string{"KB", "MB", "GB", "TB", "PB", "EB"}
	v := float64(n)
	u := -1
	for v >= 999.5 && u < len(units)-1 {
		v /= 1000
		u++
	}
	var num string
	switch {
	case v >= 99.95:
		num = strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 9.995:
		num = strconv.FormatFloat(v, 'f', 1, 64)
	default:
		num = strconv.FormatFloat(v, 'f', 2, 64)
	}
	if strings.Contains(num, ".") {
		num = strings.TrimRight(strings.TrimRight(num, "0"), ".")
	}
	return num + " " + units[u]
}

// splitNumber splits "1.5 MB" into 1.5 and "MB".
func splitNumber(in string) (float64, string, error) {
	i, dots := 0, 0
	for i < len(in) && (in[i] >= '0' && in[i] <= '9' || in[i] == '.') {
		if in[i] == '.' {
			dots++
		}
		i++
	}
	num, unit := in[:i], strings.TrimSpace(in[i:])
	if num == "" || num == "." || dots > 1 {
		return 0, "", errors.New("it must start with a number")
	}
	if len(num) > 32 {
		return 0, "", errors.New("number too long")
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0, "", errors.New("bad number")
	}
	return v, unit, nil
}
