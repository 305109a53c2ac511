package api

import "testing"

func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{"500MB": 500e6, "1.5GB": 1.5e9, "2GiB": 2 << 30, "1234": 1234, "10 kB": 10e3, "1TiB": 1 << 40} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "GB", "5Mb", "1.2.3GB", "-1", "2EB", "5 parsecs", "1e30"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
}
