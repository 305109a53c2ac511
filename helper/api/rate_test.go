package api

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRate(t *testing.T) {
	for _, c := range []struct {
		in   string
		want uint64
	}{
		{"0", 0},
		{"none", 0},
		{"None", 0},
		{"unlimited", 0},
		{"500", 500},
		{" 500 ", 500},
		{"500B/s", 500},
		{"500B", 500},
		{"500KB/s", 500_000},
		{"500kB/s", 500_000},
		{"500 KB/s", 500_000},
		{"1.5MB/s", 1_500_000},
		{"1MiB/s", 1 << 20},
		{"1.5KiB/s", 1536},
		{"2GiB/s", 2 << 30},
		{"8Mbit/s", 1_000_000},
		{"8mbit/s", 1_000_000},
		{"100kbit/s", 12_500},
		{"1Gbit/s", 125_000_000},
		{"100Gbit/s", MaxRate},
		{"12.5GB/s", MaxRate},
		{"8bit/s", 1},
		{"0KB/s", 0},
		{"0.0", 0},
	} {
		got, err := ParseRate(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}

func TestParseRateErrors(t *testing.T) {
	for _, c := range []struct{ in, msg string }{
		{"", "empty"},
		{"fast", "must start with a number"},
		{"-5KB/s", "must start with a number"},
		{"1.2.3MB/s", "must start with a number"},
		{".", "must start with a number"},
		{"5Mb/s", "ambiguous"},
		{"5kb", "ambiguous"},
		{"5b/s", "ambiguous"},
		{"5 parsecs", "unknown unit"},
		{"5MB/h", "unknown unit"},
		{"101Gbit/s", "above the maximum"},
		{"99999999999999999999999", "above the maximum"},
		{"1bit/s", "below 1 B/s"},
		{"0.1", "below 1 B/s"},
		{"1e6", "unknown unit"},
		{"NaN", "must start with a number"},
		{"Inf", "must start with a number"},
		{"0x10", "unknown unit"},
		{strings.Repeat("1", 40), "too long"},
	} {
		got, err := ParseRate(c.in)
		if err == nil {
			t.Errorf("ParseRate(%q) = %d, want an error containing %q", c.in, got, c.msg)
			continue
		}
		if !errors.Is(err, ErrRate) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("ParseRate(%q) error %q; want ErrRate containing %q", c.in, err, c.msg)
		}
	}
}

func TestFormatRate(t *testing.T) {
	for _, c := range []struct {
		in   uint64
		want string
	}{
		{0, "unlimited"},
		{1, "1 B/s"},
		{999, "999 B/s"},
		{1000, "1 KB/s"},
		{1500, "1.5 KB/s"},
		{12_345, "12.3 KB/s"},
		{500_000, "500 KB/s"},
		{999_600, "1 MB/s"},
		{1_500_000, "1.5 MB/s"},
		{MaxRate, "12.5 GB/s"},
	} {
		if got := FormatRate(c.in); got != c.want {
			t.Errorf("FormatRate(%d) = %q, want %q", c.in, got, c.want)
		}
	}
}

// FormatRate's output parses back to within 0.5 % (three significant
// digits), so tables can be pasted back into commands.
func TestFormatRateRoundTrip(t *testing.T) {
	for _, r := range []uint64{1, 7, 999, 1000, 1234, 99_999, 123_456_789, MaxRate} {
		s := strings.ReplaceAll(FormatRate(r), " ", "")
		got, err := ParseRate(s)
		if err != nil {
			t.Fatalf("ParseRate(FormatRate(%d) = %q): %v", r, s, err)
		}
		if d := float64(got) - float64(r); d > 0.005*float64(r) || -d > 0.005*float64(r) {
			t.Errorf("%d → %q → %d", r, s, got)
		}
	}
}

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"0", "none", "500KB/s", "1.5MB/s", "1MiB/s", "8Mbit/s", "5Mb/s", "", "1e9", "100Gbit/s", "0.0001GB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err != nil {
			if !errors.Is(err, ErrRate) {
				t.Fatalf("ParseRate(%q): error %v does not wrap ErrRate", s, err)
			}
			if r != 0 {
				t.Fatalf("ParseRate(%q) returned %d with an error", s, r)
			}
			return
		}
		if r > MaxRate {
			t.Fatalf("ParseRate(%q) = %d above MaxRate", s, r)
		}
		_ = FormatRate(r)
	})
}

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"Firefox":                      "Firefox",
		"Grüße 日本":                     "Grüße 日本",
		"\x1b]0;pwned\x07evil":         `\x1b]0;pwned\x07evil`,
		"a\nb\tc\r":                    `a\x0ab\x09c\x0d`,
		"\u202etxt.exe":                `\u202etxt.exe`,
		"bad\xffutf8":                  `bad\xffutf8`,
		"\xc2\x9b31m c1 csi":           `\u009b31m c1 csi`,
		"mysql -psecret\x1b[2K\x1b[1A": `mysql -psecret\x1b[2K\x1b[1A`,
	} {
		if got := Printable(in); got != want {
			t.Errorf("Printable(%q) = %q, want %q", in, got, want)
		}
	}
}
