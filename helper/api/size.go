package api

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// ErrSize is wrapped by every ParseSize error.
var ErrSize = errors.New("invalid size")

// MaxQuotaBytes is the largest quota cap: 1 EB.
const MaxQuotaBytes uint64 = 1e18

// sizeUnits maps a size unit to bytes; as for rates, bytes need a capital B.
var sizeUnits = map[string]float64{
	"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
	"KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "TIB": 1 << 40,
}

// ParseSize parses a data size as the CLI contract writes it: a bare
// number (bytes), 500MB or 1.5GB (×1000), 2GiB (×1024). It refuses 0 and
// sizes above MaxQuotaBytes.
func ParseSize(s string) (uint64, error) {
	in := strings.TrimSpace(s)
	v, unit, err := splitNumber(in)
	if err != nil {
		return 0, fmt.Errorf("%w %q: %v (write e.g. 500MB, 1.5GB, 2GiB)", ErrSize, s, err)
	}
	mult := 1.0
	if unit != "" {
		if !strings.HasSuffix(unit, "B") {
			return 0, fmt.Errorf("%w %q: unit %q is not a byte unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)", ErrSize, s, unit)
		}
		m, ok := sizeUnits[strings.ToUpper(unit)]
		if !ok {
			return 0, fmt.Errorf("%w %q: unknown unit %q (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)", ErrSize, s, unit)
		}
		mult = m
	}
	b := math.Round(v * mult)
	switch {
	case b < 1:
		return 0, fmt.Errorf("%w %q: a quota needs at least 1 byte", ErrSize, s)
	case b > float64(MaxQuotaBytes):
		return 0, fmt.Errorf("%w %q: above the maximum of 1 EB", ErrSize, s)
	}
	return uint64(b), nil
}
