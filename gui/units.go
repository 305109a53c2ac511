package gui

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// Unit is how rates are shown (a setting).
type Unit string

// Units offered in the settings.
const (
	UnitAuto  Unit = "auto"   // B/s, KB/s, MB/s, GB/s as fits
	UnitKBps  Unit = "KB/s"   // always kilobytes per second (×1000)
	UnitMBps  Unit = "MB/s"   // always megabytes per second (×1000²)
	UnitMbits Unit = "Mbit/s" // always megabits per second
)

// Units lists the settings choices in menu order.
var Units = []Unit{UnitAuto, UnitKBps, UnitMBps, UnitMbits}

// Label is the settings' text for u.
func (u Unit) Label() string {
	if u == UnitAuto {
		return "Automatic (KB/s, MB/s…)"
	}
	return string(u)
}

// unitByLabel maps a Label back to its Unit.
func unitByLabel(label string) Unit {
	for _, u := range Units {
		if u.Label() == label {
			return u
		}
	}
	return UnitAuto
}

// num formats v with 3 significant digits at most, no trailing zeros.
func num(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	case v >= 10:
		return strings.TrimSuffix(strconv.FormatFloat(v, 'f', 1, 64), ".0")
	default:
		s := strconv.FormatFloat(v, 'f', 2, 64)
		s = strings.TrimRight(s, "0")
		return strings.TrimSuffix(s, ".")
	}
}

// FormatRate formats a rate in bytes per second in unit u.
func FormatRate(bps uint64, u Unit) string {
	v := float64(bps)
	switch u {
	case UnitKBps:
		return num(v/1e3) + " KB/s"
	case UnitMBps:
		return num(v/1e6) + " MB/s"
	case UnitMbits:
		return num(v*8/1e6) + " Mbit/s"
	}
	return decimal(bps, "GMK", "B/s")
}

// FormatLimit formats a limit rate; 0 is "unlimited".
func FormatLimit(bps uint64, u Unit) string {
	if bps == 0 {
		return "unlimited"
	}
	return FormatRate(bps, u)
}

// FormatTotal formats a byte count (totals) in the family of unit u: bits
// for Mbit/s (kbit, Mbit, Gbit, Tbit as fits), bytes otherwise.
func FormatTotal(n uint64, u Unit) string {
	if u == UnitMbits {
		if n > math.MaxUint64/8 {
			n = math.MaxUint64 / 8
		}
		return decimal(n*8, "TGMk", "bit")
	}
	return FormatBytes(n)
}

// FormatBytes formats a byte count (totals).
func FormatBytes(n uint64) string {
	return decimal(n, "TGMK", "B")
}

// decimal formats n with the SI prefix (from prefixes, largest first) that
// keeps the shown number under 1000 after rounding, the largest one for
// anything bigger: 999 B, 1.00 KB, 999 KB, 1.00 MB, ….
func decimal(n uint64, prefixes, suffix string) string {
	if n < 1000 {
		return strconv.FormatUint(n, 10) + " " + suffix
	}
	v := float64(n)
	for i := range prefixes {
		scale := math.Pow(1000, float64(len(prefixes)-i))
		if i == len(prefixes)-1 || v >= 999.5*scale/1000 {
			return num(v/scale) + " " + prefixes[i:i+1] + suffix
		}
	}
	return "" // not reached: the last prefix always formats
}

// ParseLimit parses what a person types into a limit entry: a bare number
// is in the display unit (KB/s when the unit is automatic); anything else
// is a rate as the CLI writes it (api.ParseRate: 500KB/s, 1.5 MB/s,
// 1MiB/s, 8Mbit/s). "", "0", "none", "unlimited" and "∞" mean unlimited (0).
func ParseLimit(s string, display Unit) (uint64, error) {
	t := strings.TrimSpace(s)
	switch strings.ToLower(t) {
	case "", "0", "none", "unlimited", "∞", "off":
		return 0, nil
	}
	if v, err := strconv.ParseFloat(strings.ReplaceAll(t, ",", "."), 64); err == nil {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return 0, fmt.Errorf("rate %q: %w", s, api.ErrRate)
		}
		mult := map[Unit]float64{UnitMBps: 1e6, UnitMbits: 1e6 / 8}[display]
		if mult == 0 {
			mult = 1e3
		}
		r := math.Round(v * mult)
		if r > float64(api.MaxRate) {
			return 0, fmt.Errorf("rate %q is above the largest limit, %s: %w", s, FormatRate(api.MaxRate, UnitAuto), api.ErrRate)
		}
		return max(uint64(r), 1), nil
	}
	r, err := api.ParseRate(strings.ReplaceAll(t, " ", ""))
	if err != nil {
		return 0, err
	}
	return r, nil
}

// The limit sliders use a log scale: position 0..sliderLogMax covers
// sliderMinRate..sliderMaxRate; the last stretch, up to sliderMax, is the
// "unlimited" end.
const (
	sliderMax     = 1000.0
	sliderLogMax  = 960.0
	sliderMinRate = 10_000.0      // 10 KB/s
	sliderMaxRate = 100_000_000.0 // 100 MB/s
)

// SliderToLimit maps a slider position to a limit (0 = unlimited), rounded
// to two significant digits so the chosen value reads well.
func SliderToLimit(pos float64) uint64 {
	if pos > sliderLogMax {
		return 0
	}
	if pos < 0 {
		pos = 0
	}
	decades := math.Log10(sliderMaxRate / sliderMinRate)
	r := sliderMinRate * math.Pow(10, decades*pos/sliderLogMax)
	return roundSignificant(r, 2)
}

// LimitToSlider maps a limit to a slider position.
func LimitToSlider(limit uint64) float64 {
	if limit == 0 {
		return sliderMax
	}
	r := float64(limit)
	if r <= sliderMinRate {
		return 0
	}
	if r >= sliderMaxRate {
		return sliderLogMax
	}
	decades := math.Log10(sliderMaxRate / sliderMinRate)
	return math.Round(sliderLogMax * math.Log10(r/sliderMinRate) / decades)
}

func roundSignificant(v float64, digits int) uint64 {
	if v <= 0 {
		return 0
	}
	p := math.Pow(10, math.Floor(math.Log10(v))-float64(digits-1))
	return uint64(math.Round(v/p) * p)
}
