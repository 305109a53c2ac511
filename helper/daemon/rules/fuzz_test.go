package rules

import (
	"slices"
	"testing"
)

// FuzzDecode feeds the rules file decoder arbitrary bytes: it never panics,
// whatever it returns is valid, and the valid rules survive a round trip
// through Encode. The seed corpus is in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"version":1,"rules":[{"exe":"/usr/bin/firefox","uid":1000,"limit":{"down":1000,"up":0,"traffic":"all"}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rules, err := Decode(data)
		for _, r := range rules {
			if _, nerr := Normalize(r); nerr != nil {
				t.Fatalf("Decode returned an invalid rule %+v: %v", r, nerr)
			}
		}
		if err != nil && len(rules) == 0 {
			return
		}
		b, eerr := Encode(rules)
		if eerr != nil {
			t.Fatalf("Encode: %v", eerr)
		}
		again, derr := Decode(b)
		if derr != nil {
			t.Fatalf("re-decode of %q: %v", b, derr)
		}
		if !slices.Equal(again, rules) {
			t.Fatalf("round trip changed %+v into %+v", rules, again)
		}
	})
}
